"""The app catalog: published apps, who may use them, and declarative apply."""

from __future__ import annotations

from nevertrust.apps.apply import ApplyResult, ApplyService
from nevertrust.apps.declarative import AccessDocument, parse_access_document
from nevertrust.apps.errors import ConfigFileError, InvalidUpstream, UnknownApp
from nevertrust.apps.models import AppRecord, ConfigVersion, RuleRecord
from nevertrust.apps.service import CatalogService, CatalogView
from nevertrust.apps.upstreams import validate_upstream

__all__ = [
    "AccessDocument",
    "AppRecord",
    "ApplyResult",
    "ApplyService",
    "CatalogService",
    "CatalogView",
    "ConfigFileError",
    "ConfigVersion",
    "InvalidUpstream",
    "RuleRecord",
    "UnknownApp",
    "parse_access_document",
    "validate_upstream",
]
