from __future__ import annotations

import os
from pathlib import Path

import pytest

from nevertrust.errors import ConfigError
from nevertrust.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read NEVERTRUST_* variables: start every test without any."""
    for name in list(os.environ):
        if name.upper().startswith("NEVERTRUST_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nevertrust.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file_environment_or_overrides() -> None:
    settings = load_settings()
    assert settings.port == 8080
    assert settings.bind == "127.0.0.1"
    assert settings.base_domain == "localhost"
    assert settings.gateway.assertion_ttl_seconds == 60
    assert settings.portal_url == "http://auth.localhost:8080"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "NEVERTRUST_PORT",
            "abc",
            "config: bad port 'abc': Input should be a valid integer",
        ),
        (
            "NEVERTRUST_PORT",
            "70000",
            "config: bad port '70000': Input should be less than or equal to 65535",
        ),
        (
            "NEVERTRUST_DATABASE_URL",
            "mysql://db/nt",
            "config: bad database_url 'mysql://db/nt': scheme must be sqlite or postgresql",
        ),
        (
            "NEVERTRUST_REDIS_URL",
            "http://cache",
            "config: bad redis_url 'http://cache': scheme must be redis, rediss or unix",
        ),
        (
            "NEVERTRUST_BASE_DOMAIN",
            "a b",
            "config: bad base_domain 'a b': must be a DNS name",
        ),
        (
            "NEVERTRUST_PUBLIC_SCHEME",
            "ftp",
            "config: bad public_scheme 'ftp': Input should be 'http' or 'https'",
        ),
        (
            "NEVERTRUST_GATEWAY__ASSERTION_TTL_SECONDS",
            "5",
            "config: bad gateway.assertion_ttl_seconds '5': "
            "Input should be greater than or equal to 10",
        ),
        (
            "NEVERTRUST_AUDIT__FLUSH_INTERVAL_MS",
            "fast",
            "config: bad audit.flush_interval_ms 'fast': Input should be a valid integer",
        ),
    ],
)
def test_bad_environment_value_names_key_and_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.message.startswith(message)
    assert info.value.exit_code == 78


def test_bad_url_error_does_not_print_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEVERTRUST_DATABASE_URL", "mysql://nt:s3cret@db:3306/nt")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "s3cret" not in info.value.message
    assert info.value.message.startswith("config: bad database_url 'mysql://nt:***@db:3306/nt'")


def test_config_file_values_are_used(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "port: 9000\nbase_domain: Example.COM.\ngateway:\n  assertion_ttl_seconds: 120\n",
    )
    settings = load_settings(config_file=path)
    assert settings.port == 9000
    assert settings.base_domain == "example.com"
    assert settings.gateway.assertion_ttl_seconds == 120
    assert settings.gateway.session_cache_size == 100_000
    assert settings.app_url("whoami") == "http://whoami.example.com:9000"


def test_environment_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEVERTRUST_PORT", "9100")
    settings = load_settings(config_file=write(tmp_path, "port: 9000\nbind: 127.0.0.2\n"))
    assert settings.port == 9100
    assert settings.bind == "127.0.0.2"


def test_environment_and_file_combine_within_a_nested_area(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEVERTRUST_GATEWAY__SESSION_CACHE_SIZE", "500")
    path = write(tmp_path, "gateway:\n  assertion_ttl_seconds: 100\n  session_cache_size: 200\n")
    settings = load_settings(config_file=path)
    assert settings.gateway.session_cache_size == 500  # environment wins that key
    assert settings.gateway.assertion_ttl_seconds == 100  # the file still sets the other


def test_overrides_win_over_environment_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEVERTRUST_PORT", "9100")
    settings = load_settings(config_file=write(tmp_path, "port: 9000\n"), overrides={"port": 9200})
    assert settings.port == 9200


def test_none_overrides_are_ignored(tmp_path: Path) -> None:
    settings = load_settings(config_file=write(tmp_path, "port: 9000\n"), overrides={"port": None})
    assert settings.port == 9000


def test_bad_override_names_key_and_value() -> None:
    with pytest.raises(ConfigError, match=r"^config: bad port 0: Input should be greater"):
        load_settings(overrides={"port": 0})


def test_bad_file_value_names_nested_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "identity:\n  min_password_length: 4\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=path)
    assert info.value.message == (
        "config: bad identity.min_password_length 4: Input should be greater than or equal to 8"
    )


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: bad prot 8080: Extra inputs are not"):
        load_settings(config_file=write(tmp_path, "prot: 8080\n"))


def test_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "- port\n")
    with pytest.raises(ConfigError, match="must hold a mapping of settings"):
        load_settings(config_file=path)


def test_file_with_broken_yaml_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "port: [\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_settings(config_file=path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: cannot read .*missing\.yaml"):
        load_settings(config_file=tmp_path / "missing.yaml")


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(config_file=write(tmp_path, "")).port == 8080


def test_derived_paths_and_urls(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, public_scheme="https", public_port=443, port=8443)
    assert settings.effective_secret_key_file == tmp_path / "secret.key"
    assert settings.control_socket == tmp_path / "run" / "control.sock"
    assert settings.effective_database_url == f"sqlite:///{(tmp_path / 'nevertrust.db').resolve()}"
    assert settings.portal_url == "https://auth.localhost"
    assert settings.app_url("whoami") == "https://whoami.localhost"
