"""Interfaces over HTTP: the portal, the console and the REST API."""

from __future__ import annotations

__all__: list[str] = []
