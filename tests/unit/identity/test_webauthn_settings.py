"""The relying party id: the portal host unless set, and only ever a domain that covers it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nevertrust.errors import ConfigError
from nevertrust.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("NEVERTRUST_"):
            monkeypatch.delenv(name)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nevertrust.yaml"
    path.write_text(text)
    return path


def test_the_rp_id_defaults_to_the_portal_host() -> None:
    settings = load_settings(overrides={"base_domain": "corp.example"})
    assert settings.webauthn_rp_id == "auth.corp.example"
    assert settings.identity.webauthn_rp_name == "NeverTrust"


@pytest.mark.parametrize("rp_id", ["corp.example", "AUTH.corp.example", " corp.example "])
def test_the_rp_id_may_be_the_portal_host_or_a_parent_domain(tmp_path: Path, rp_id: str) -> None:
    path = config(tmp_path, f"base_domain: corp.example\nidentity:\n  webauthn_rp_id: '{rp_id}'\n")
    settings = load_settings(config_file=path)
    assert settings.webauthn_rp_id == rp_id.strip().lower()


@pytest.mark.parametrize("rp_id", ["evil.example", "example", "p.corp.example", "rp.example"])
def test_an_rp_id_that_does_not_cover_the_portal_fails_at_start_up(
    tmp_path: Path, rp_id: str
) -> None:
    path = config(tmp_path, f"base_domain: corp.example\nidentity:\n  webauthn_rp_id: {rp_id}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=path)
    assert info.value.message == (
        f"config: bad identity.webauthn_rp_id {rp_id!r}: must be auth.corp.example "
        "or a parent domain of it (not a top-level domain)"
    )


def test_an_rp_id_with_a_scheme_or_port_is_refused_naming_key_and_value(tmp_path: Path) -> None:
    path = config(tmp_path, "identity:\n  webauthn_rp_id: https://auth.localhost:8080\n")
    with pytest.raises(ConfigError, match=r"^config: bad identity.webauthn_rp_id 'https://"):
        load_settings(config_file=path)
