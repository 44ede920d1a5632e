"""Read a policy document from YAML text; errors name file, line and column."""

from __future__ import annotations

import json
from typing import Any

from nevertrust.pdp.errors import PolicyError
from nevertrust.pdp.language import PolicyDocument
from nevertrust.yamldoc import load_model

__all__ = ["json_schema", "parse_policy_document"]


def parse_policy_document(text: str, *, file: str) -> PolicyDocument:
    def error(message: str, line: int, column: int) -> PolicyError:
        return PolicyError(message, file=file, line=line, column=column)

    document, _root = load_model(text, model=PolicyDocument, error=error, what="'policies:'")
    return document


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of the policy document, for editor completion and checks."""
    schema = PolicyDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "NeverTrust policy document"
    return json.loads(json.dumps(schema))  # type: ignore[no-any-return]
