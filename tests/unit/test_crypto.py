from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nevertrust.crypto import (
    DecryptionFailed,
    MasterKey,
    constant_time_equal,
    hash_token,
    load_or_create_master_key,
    new_token,
)
from nevertrust.errors import ConfigError

KEY = MasterKey(b"\x01" * 32)


@given(st.binary(max_size=512), st.text(min_size=1, max_size=30))
def test_encrypt_then_decrypt_returns_the_plaintext(plaintext: bytes, purpose: str) -> None:
    assert KEY.decrypt(KEY.encrypt(plaintext, purpose=purpose), purpose=purpose) == plaintext


def test_ciphertext_hides_plaintext_and_is_fresh_each_time() -> None:
    plaintext = b"private key material"
    first = KEY.encrypt(plaintext, purpose="p")
    second = KEY.encrypt(plaintext, purpose="p")
    assert first != second  # a new nonce every time
    assert plaintext not in first
    assert len(first) == 12 + len(plaintext) + 16  # nonce + ciphertext + GCM tag


def test_decrypt_with_wrong_purpose_fails() -> None:
    sealed = KEY.encrypt(b"secret", purpose="assertion-signing-key")
    with pytest.raises(DecryptionFailed, match="cannot decrypt totp-secret"):
        KEY.decrypt(sealed, purpose="totp-secret")


def test_decrypt_with_another_master_key_fails() -> None:
    sealed = KEY.encrypt(b"secret", purpose="p")
    with pytest.raises(DecryptionFailed, match="wrong master key or damaged data"):
        MasterKey(b"\x02" * 32).decrypt(sealed, purpose="p")


@pytest.mark.parametrize("index", [0, 11, 12, -1])
def test_decrypt_of_damaged_data_fails(index: int) -> None:
    sealed = bytearray(KEY.encrypt(b"secret", purpose="p"))
    sealed[index] ^= 0x01
    with pytest.raises(DecryptionFailed):
        KEY.decrypt(bytes(sealed), purpose="p")


@pytest.mark.parametrize("sealed", [b"", b"short", b"\x00" * 12, b"\x00" * 27])
def test_decrypt_of_truncated_data_fails(sealed: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        KEY.decrypt(sealed, purpose="p")


def test_decryption_error_message_contains_no_key_material() -> None:
    with pytest.raises(DecryptionFailed) as info:
        KEY.decrypt(b"x" * 40, purpose="p")
    assert "\x01" not in info.value.message
    assert info.value.code == "decryption-failed"


def test_derived_keys_differ_per_purpose_and_per_master_key() -> None:
    assert KEY.derive("a") != KEY.derive("b")
    assert KEY.derive("a") == KEY.derive("a")
    assert MasterKey(b"\x02" * 32).derive("a") != KEY.derive("a")
    assert len(KEY.derive("a")) == 32


def test_sign_is_deterministic_and_bound_to_purpose_and_message() -> None:
    assert KEY.sign("csrf", b"m") == KEY.sign("csrf", b"m")
    assert KEY.sign("csrf", b"m") != KEY.sign("other", b"m")
    assert KEY.sign("csrf", b"m") != KEY.sign("csrf", b"n")
    assert len(KEY.sign("csrf", b"m")) == 32


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_master_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ConfigError, match=f"master key must be 32 bytes, got {size}"):
        MasterKey(b"k" * size)


def test_creates_master_key_file_readable_only_by_owner(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secret.key"
    key = load_or_create_master_key(path)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    # The key in the file is the key in use.
    sealed = key.encrypt(b"x", purpose="p")
    assert MasterKey(path.read_bytes()).decrypt(sealed, purpose="p") == b"x"


def test_reuses_an_existing_master_key_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    first = load_or_create_master_key(path)
    content = path.read_bytes()
    second = load_or_create_master_key(path)
    assert path.read_bytes() == content
    assert second.decrypt(first.encrypt(b"data", purpose="p"), purpose="p") == b"data"


def test_two_installations_get_different_master_keys(tmp_path: Path) -> None:
    a = load_or_create_master_key(tmp_path / "a.key")
    b = load_or_create_master_key(tmp_path / "b.key")
    assert (tmp_path / "a.key").read_bytes() != (tmp_path / "b.key").read_bytes()
    with pytest.raises(DecryptionFailed):
        b.decrypt(a.encrypt(b"x", purpose="p"), purpose="p")


@pytest.mark.parametrize("size", [0, 31, 33, 100])
def test_rejects_master_key_file_of_wrong_size(tmp_path: Path, size: int) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(b"k" * size)
    with pytest.raises(ConfigError) as info:
        load_or_create_master_key(path)
    assert info.value.message == (
        f"config: bad secret_key_file '{path}': expected 32 bytes, got {size}"
    )
    assert path.read_bytes() == b"k" * size  # never silently replaced


def test_unreadable_master_key_path_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "a-directory"
    path.mkdir()
    with pytest.raises(ConfigError, match=f"config: bad secret_key_file '{path}'"):
        load_or_create_master_key(path)


def test_new_tokens_are_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) == 43
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_hash_token_is_sha256_hex() -> None:
    assert hash_token("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [("x", "x", True), ("x", "y", False), (b"x", "x", True), ("", "", True), ("x", "xx", False)],
)
def test_constant_time_equal(a: str | bytes, b: str | bytes, equal: bool) -> None:
    assert constant_time_equal(a, b) is equal
