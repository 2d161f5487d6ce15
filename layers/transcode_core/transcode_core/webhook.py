"""Webhook checks shared by every provider: token, size, body decoding. No Lambda types here."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element

from transcode_core.config import WEBHOOK_MAX_BYTES
from transcode_core.errors import BadRequest, PayloadTooLarge, Unauthorized
from transcode_core.xmlsafe import XmlRejected, parse_xml, to_plain

_NOT_UNICODE = "body is not valid Unicode text (it holds a lone surrogate)"


def authenticate(given_token: str | None, accepted_tokens: Iterable[str | None]) -> None:
    """Compares the `token` query parameter with each accepted token (the secret's `webhook_token` and,
    during a rotation, `previous_webhook_token`), every one in constant time and all of them always."""
    if isinstance(accepted_tokens, str):  # one token, not its characters
        accepted_tokens = (accepted_tokens,)
    given = (given_token or "").encode()
    matches = [hmac.compare_digest(given, token.encode()) for token in accepted_tokens if token]
    if not given_token or not any(matches):
        raise Unauthorized("missing or wrong token")


def check_size(body: str | bytes | None, limit: int = WEBHOOK_MAX_BYTES) -> None:
    """PayloadTooLarge over `limit` UTF-8 bytes; BadRequest for text that has no UTF-8 form (a lone
    surrogate), which nothing downstream (the table, the logs, the topic) could store."""
    try:
        size = len(body.encode() if isinstance(body, str) else body or b"")
    except UnicodeEncodeError:
        raise BadRequest(_NOT_UNICODE) from None
    if size > limit:
        raise PayloadTooLarge(f"body of {size} bytes is over the {limit} byte limit")


@dataclass(frozen=True)
class WebhookBody:
    """A decoded webhook body with the ways providers send one: JSON, form fields, XML."""

    text: str
    content_type: str = ""

    @property
    def is_form(self) -> bool:
        return "application/x-www-form-urlencoded" in self.content_type.lower()

    def json(self) -> Any:
        try:
            document = json.loads(self.text)
        except (ValueError, RecursionError):
            raise BadRequest("body is not valid JSON") from None
        try:  # JSON may escape a lone surrogate ("\ud800"): valid JSON, but no text to store or log
            json.dumps(document, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise BadRequest(_NOT_UNICODE) from None
        return document

    def json_object(self) -> dict[str, Any]:
        document = self.json()
        if not isinstance(document, dict):
            raise BadRequest("body is not a JSON object")
        return document

    def form(self) -> dict[str, str]:
        """Form fields (the last value of a repeated field)."""
        return dict(parse_qsl(self.text, keep_blank_values=True))

    def xml(self, text: str | None = None) -> Element:
        try:
            return parse_xml(self.text if text is None else text)
        except XmlRejected as exc:
            raise BadRequest(str(exc)) from None

    def plain_xml(self, text: str | None = None) -> Any:
        """The XML body as JSON-API-shaped data (xmlsafe.to_plain); BadRequest when unreadable."""
        try:
            return to_plain(self.xml(text))
        except XmlRejected as exc:
            raise BadRequest(str(exc)) from None
