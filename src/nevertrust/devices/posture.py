"""The posture document an agent sends, validated strictly before anything is stored.

Strict types (a string is not a bool, a float is not an int) and ``extra="forbid"``: a
document that is not exactly what the agent contract says is refused naming the field,
because guessing what a malformed report meant would let a device talk its way into
compliance. ``null`` is allowed where the agent may not be able to tell (disk encryption
on an unusual layout, say); compliance then treats the field as undetermined.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from nevertrust.devices.errors import InvalidPosture

__all__ = ["Posture", "parse_posture"]


class Posture(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: Literal["linux", "macos", "windows"]
    os_name: StrictStr = Field(max_length=100)
    os_version: StrictStr = Field(max_length=64)
    kernel_version: StrictStr = Field(max_length=200)
    patch_age_days: StrictInt | None = Field(ge=0, le=36_500)
    disk_encrypted: StrictBool | None
    firewall_active: StrictBool | None
    edr_running: StrictBool | None
    edr_name: StrictStr | None = Field(max_length=100)
    screen_lock_enabled: StrictBool | None
    collected_at: AwareDatetime

    @field_validator("collected_at", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        # ISO-8601 text only: a bare number would be read as a Unix time by pydantic.
        if not isinstance(value, str | datetime):
            raise ValueError("expected an ISO-8601 date and time with a zone, e.g. ...Z")
        return value

    @field_validator("collected_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values, ``collected_at`` as ISO-8601 UTC."""
        data = self.model_dump()
        collected: datetime = data["collected_at"]
        data["collected_at"] = collected.isoformat()
        return data


def _where(loc: tuple[int | str, ...], prefix: str) -> str:
    return ".".join([prefix, *(str(p) for p in loc)]) if loc else prefix


def parse_posture(data: object, *, where: str = "posture") -> Posture:
    """Validate ``data`` (already parsed JSON) or raise ``InvalidPosture`` naming the field.

    Every field must be present (``null`` where the agent could not tell): a missing key is
    a malformed document, not an undetermined value.
    """
    if not isinstance(data, dict):
        raise InvalidPosture(
            f"{where}: expected a JSON object, got {type(data).__name__}", field=where
        )
    missing = [name for name in Posture.model_fields if name not in data]
    if missing:
        raise InvalidPosture(
            f"{where}.{missing[0]}: field required (send null if the agent cannot tell)",
            field=f"{where}.{missing[0]}",
        )
    try:
        return Posture.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _where(tuple(first.get("loc", ())), where)
        raise InvalidPosture(f"{field}: {first.get('msg', 'invalid value')}", field=field) from exc
