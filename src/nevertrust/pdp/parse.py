"""Read a policy document from YAML text; errors name file, line and column."""

from __future__ import annotations

import json
from typing import Any

import yaml

from nevertrust.pdp.errors import PolicyError
from nevertrust.pdp.language import PolicyDocument
from nevertrust.yamldoc import load_model

__all__ = ["json_schema", "parse_policy_document"]


def _second_policy_name(text: str) -> tuple[int, str, yaml.Node] | None:
    """Index, name and name node of the first policy that reuses an earlier name.

    The model rejects duplicates too, but for the document as a whole, whose only position
    is 1:1; this finds the place in the YAML instead.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None  # load_model reports it, with its position
    if not isinstance(root, yaml.MappingNode):
        return None
    seen: set[str] = set()
    for key, value in root.value:
        if key.value != "policies" or not isinstance(value, yaml.SequenceNode):
            continue
        for index, policy in enumerate(value.value):
            if not isinstance(policy, yaml.MappingNode):
                continue
            for field, name in policy.value:
                if field.value == "name" and name.tag == "tag:yaml.org,2002:str":
                    if name.value in seen:
                        return index, name.value, name
                    seen.add(name.value)
    return None


def parse_policy_document(text: str, *, file: str) -> PolicyDocument:
    def error(message: str, line: int, column: int) -> PolicyError:
        return PolicyError(message, file=file, line=line, column=column)

    twice = _second_policy_name(text)
    if twice is not None:
        index, name, node = twice
        mark = node.start_mark
        raise error(
            f"policies.{index}.name: policy {name!r} appears twice", mark.line + 1, mark.column + 1
        )
    document, _root = load_model(text, model=PolicyDocument, error=error, what="'policies:'")
    return document


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of the policy document, for editor completion and checks."""
    schema = PolicyDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "NeverTrust policy document"
    return json.loads(json.dumps(schema))  # type: ignore[no-any-return]
