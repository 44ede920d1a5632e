"""Load a YAML document into a pydantic model, reporting errors at file, line and column.

Shared by the access file (``apps``) and the policy language (``pdp``): users fix a file
faster when the message points at the place, and a duplicate key (which YAML loaders
silently resolve to the last value) is an error here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["load_model", "mark_of", "node_position"]

M = TypeVar("M", bound=BaseModel)
ErrorFactory = Callable[[str, int, int], Exception]  # (message, line, column) -> error


def _node_at(root: yaml.Node, loc: tuple[int | str, ...], *, key: bool = False) -> yaml.Node:
    """The deepest node along ``loc``; with ``key``, the last step's key node."""
    node = root
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    node = key_node if (key and last) else value_node
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def mark_of(text: str, loc: tuple[int | str, ...]) -> tuple[int, int]:
    """Line and column (1-based) of ``loc`` in ``text``, for errors found after parsing."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return 1, 1
    mark = _node_at(root, loc).start_mark
    return mark.line + 1, mark.column + 1


def _check_duplicate_keys(node: yaml.Node, error: ErrorFactory) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                mark = key_node.start_mark
                raise error(f"key {key_node.value!r} appears twice", mark.line + 1, mark.column + 1)
            seen.add(key_node.value)
            _check_duplicate_keys(value_node, error)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, error)


def load_model(text: str, *, model: type[M], error: ErrorFactory, what: str) -> tuple[M, yaml.Node]:
    """Parse ``text`` as YAML and validate it as ``model``; errors carry line and column.

    Returns the model and the YAML node tree (for later errors that need a position).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise error(f"not valid YAML: {exc.problem}", line, column) from exc
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML: {exc}", 1, 1) from exc
    if root is None or data is None:
        raise error(f"the file is empty: expected {what}", 1, 1)
    if not isinstance(data, dict):
        raise error(f"expected a mapping with {what} at the top, got {type(data).__name__}", 1, 1)
    _check_duplicate_keys(root, error)
    try:
        return model.model_validate(data), root
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        # An unknown key is reported at the key itself, not at its value.
        node = _node_at(root, loc, key=first["type"] == "extra_forbidden")
        where = ".".join(str(p) for p in loc) or "document"
        message = first["msg"].removeprefix("Value error, ")
        mark = node.start_mark
        raise error(f"{where}: {message}", mark.line + 1, mark.column + 1) from exc


def node_position(root: yaml.Node, loc: tuple[int | str, ...]) -> tuple[int, int]:
    mark = _node_at(root, loc).start_mark
    return mark.line + 1, mark.column + 1
