"""The one XML entry point: defusedxml, with DTDs, entities and external references refused."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException


class XmlRejected(ValueError):
    """The document is not well-formed XML, or it uses DTDs/entities/external references."""


def parse_xml(text: str | bytes) -> Element:
    try:
        return safe_et.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmlRejected(f"XML refused: {type(exc).__name__}") from exc
    except safe_et.ParseError as exc:
        raise XmlRejected(f"XML is not well-formed: {exc}") from exc


MAX_DEPTH = 32  # provider documents nest a few levels; deeper is hostile or broken


def to_plain(element: Element, _depth: int = 0) -> Any:
    """An element as plain data in the JSON API's shape: text leaves become strings, repeated children
    become lists (so XML and JSON responses can share one normalizer)."""
    if _depth > MAX_DEPTH:
        raise XmlRejected(f"XML nested deeper than {MAX_DEPTH} levels")
    children = list(element)
    if not children:
        return (element.text or "").strip()
    result: dict[str, Any] = {}
    for child in children:
        value = to_plain(child, _depth + 1)
        if child.tag in result:
            existing = result[child.tag]
            if not isinstance(existing, list):
                result[child.tag] = existing = [existing]
            existing.append(value)
        else:
            result[child.tag] = value
    return result


def as_list(value: Any) -> list:
    """The JSON API's quirk: one item comes as an object, several as a list. Always a list."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]
