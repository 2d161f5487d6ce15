"""Reads template.yaml so that tests and the local run build their resources from the deployed definitions.

CloudFormation short tags become the long forms CloudFormation itself uses (`!Ref X` -> `{"Ref": "X"}`,
`!GetAtt A.B` -> `{"Fn::GetAtt": ["A", "B"]}`, `!Sub ...` -> `{"Fn::Sub": ...}`); nothing is resolved.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
TABLE_ID = "JobsTable"

# create_table takes these properties as CloudFormation spells them.
_TABLE_KWARGS = ("AttributeDefinitions", "KeySchema", "BillingMode")
_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")


class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's, where PyYAML has it: 10x faster
    """SafeLoader that also knows CloudFormation's short tags."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data (relative paths are taken from the repository root); a copy of its own."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = TEMPLATE_PATH.parent / path
    stat = path.stat()
    return copy.deepcopy(_parsed(path.resolve(), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    """Parsed once per version of the file: every test's stack is built from it."""
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass, only adds tag constructors


def resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    try:
        return template["Resources"][logical_id]
    except KeyError:
        raise KeyError(f"template has no resource {logical_id!r}") from None


def table_definition(template: dict[str, Any], logical_id: str = TABLE_ID) -> dict[str, Any]:
    """Keyword arguments for `dynamodb.create_table(TableName=..., **table_definition(template))`."""
    properties = resource(template, logical_id)["Properties"]
    definition = {key: properties[key] for key in _TABLE_KWARGS if key in properties}
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if properties.get(index_kind):
            definition[index_kind] = [
                {key: index[key] for key in _INDEX_KEYS if key in index} for index in properties[index_kind]
            ]
    if "StreamSpecification" in properties:
        definition["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": properties["StreamSpecification"]["StreamViewType"],
        }
    _require_literal(definition, f"{logical_id} Properties")
    return definition


def _require_literal(value: Any, where: str) -> None:
    """The table is created without CloudFormation, so its definition cannot depend on parameters."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" or key.startswith("Fn::"):
                raise ValueError(f"{where} must be literal, found {key}")
            _require_literal(item, where)
    elif isinstance(value, list):
        for item in value:
            _require_literal(item, where)
