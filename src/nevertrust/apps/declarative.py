"""The declarative access file read by ``nevertrust apply -f FILE``.

Errors point at the place in the file (line and column, 1-based) so a user can fix it
without guessing. The whole file is validated before anything is written.

    version: 1
    groups:
      - name: engineering
        members: [alice, bob]      # optional; when given, the exact membership
    apps:
      - name: whoami
        upstream: http://127.0.0.1:9001
        allow:
          groups: [engineering]    # the exact set of groups allowed
          # optional: members also need a compliant device (docs/devices.md); true for
          # every listed group, or the list of groups that need one
          require_compliant_device: true
"""

from __future__ import annotations

from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nevertrust.apps.errors import ConfigFileError
from nevertrust.apps.upstreams import validate_upstream
from nevertrust.domain.names import validate_name
from nevertrust.errors import InvalidInput
from nevertrust.yamldoc import load_model, mark_of, node_position

__all__ = ["AccessDocument", "AppSpec", "GroupSpec", "parse_access_document"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _name(kind: str, value: str) -> str:
    try:
        return validate_name(kind, value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from exc


class GroupSpec(_Strict):
    name: str
    description: str = Field(default="", max_length=500)
    members: tuple[str, ...] | None = None
    # Members must enrol a second factor before any app gets their sign-in; absent: unchanged.
    require_mfa: bool | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _name("group", value)

    @field_validator("members")
    @classmethod
    def _valid_members(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            for member in value:
                _name("user", member)
        return value


class AllowSpec(_Strict):
    groups: tuple[str, ...] = ()
    # Members also need a compliant device: every listed group (true) or the ones named.
    require_compliant_device: bool | tuple[str, ...] = False

    @field_validator("groups")
    @classmethod
    def _valid_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for group in value:
            _name("group", group)
        return value

    @model_validator(mode="after")
    def _device_groups_are_allowed(self) -> AllowSpec:
        if not isinstance(self.require_compliant_device, bool):
            for group in self.require_compliant_device:
                if group not in self.groups:
                    raise ValueError(
                        f"require_compliant_device names group {group!r}, which is not "
                        "listed under groups"
                    )
        return self

    def needs_device(self, group: str) -> bool:
        """Whether the rule for ``group`` also requires a compliant device."""
        flag = self.require_compliant_device
        return flag if isinstance(flag, bool) else group in flag


class AppSpec(_Strict):
    name: str
    upstream: str
    description: str = Field(default="", max_length=500)
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels policies can select apps by (app_labels)."
    )
    allow: AllowSpec = Field(default_factory=AllowSpec)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _name("app", value)

    @field_validator("upstream")
    @classmethod
    def _valid_upstream(cls, value: str) -> str:
        try:
            return validate_upstream(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from exc


class AccessDocument(_Strict):
    version: Literal[1] = 1
    groups: tuple[GroupSpec, ...] = ()
    apps: tuple[AppSpec, ...] = ()


def _check_unique(doc: AccessDocument, root: yaml.Node, file: str) -> None:
    sections: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("groups", tuple(g.name for g in doc.groups)),
        ("apps", tuple(a.name for a in doc.apps)),
    )
    for section, names in sections:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                line, column = node_position(root, (section, index, "name"))
                raise ConfigFileError(
                    f"{section[:-1]} {name!r} is declared twice",
                    file=file,
                    line=line,
                    column=column,
                )
            seen.add(name)


def parse_access_document(text: str, *, file: str) -> AccessDocument:
    """Parse and validate a whole document or raise ``ConfigFileError`` naming the place."""

    def error(message: str, line: int, column: int) -> ConfigFileError:
        return ConfigFileError(message, file=file, line=line, column=column)

    doc, root = load_model(text, model=AccessDocument, error=error, what="'apps:' and/or 'groups:'")
    _check_unique(doc, root, file)
    return doc


def node_mark(text: str, loc: tuple[int | str, ...]) -> tuple[int, int]:
    """Line and column (1-based) of ``loc`` in ``text``; for errors found after parsing."""
    return mark_of(text, loc)
