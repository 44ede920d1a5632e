"""An immutable, compiled view of apps and rules, rebuilt whole on every change.

Lookups on the hot path are one dict access by app name; cost does not grow with rules
for other apps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from nevertrust.domain import AccessRule, App

__all__ = ["CompiledApp", "PolicySnapshot", "compile_snapshot"]


@dataclass(frozen=True, slots=True)
class CompiledApp:
    app: App
    # group name -> rule id; the first rule listed for a group wins the id.
    allowed_groups: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PolicySnapshot:
    version: int
    apps: Mapping[str, CompiledApp]

    def app(self, name: str) -> CompiledApp | None:
        return self.apps.get(name)


def compile_snapshot(
    *, version: int, apps: Iterable[App], rules: Iterable[AccessRule]
) -> PolicySnapshot:
    """Index rules by app. Rules naming an app that does not exist are ignored."""
    by_app: dict[str, dict[str, str]] = {}
    app_list = list(apps)
    for app in app_list:
        by_app[app.name] = {}
    for rule in rules:
        groups = by_app.get(rule.app)
        if groups is not None:
            groups.setdefault(rule.group, rule.rule_id)
    compiled = {
        app.name: CompiledApp(app=app, allowed_groups=MappingProxyType(by_app[app.name]))
        for app in app_list
    }
    return PolicySnapshot(version=version, apps=MappingProxyType(compiled))
