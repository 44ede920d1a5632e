"""Change events: a topic and the key of what changed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ChangeEvent", "Topic"]


class Topic(StrEnum):
    USER = "user"  # key: user id
    GROUP = "group"  # key: group name
    APP = "app"  # key: app name
    RULE = "rule"  # key: app name
    SESSION = "session"  # key: portal session hash (children go with it)
    USER_SESSIONS = "user-sessions"  # key: user id, every session of the user
    CONFIG = "config"  # key: config version
    POLICY = "policy"  # key: policy version
    SIGNING_KEY = "signing-key"  # key: kid of the new active assertion signing key
    DEVICE = "device"  # key: device id (enrolled, new state, quarantined, removed)
    EVERYTHING = "everything"  # a watcher lost track: drop every cache


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    topic: Topic
    key: str = ""
