"""Provider API keys: AES-256-GCM round trip, through the real user_tokens table too."""

from __future__ import annotations

import base64
from dataclasses import replace
from uuid import uuid4

import psycopg
import pytest

from costudy_pipelines.lib.token_crypto import (
    KEY_VAR,
    TokenCipher,
    TokenCryptoError,
    generate_key,
    load_token,
    store_token,
    token_context,
)
from costudy_pipelines_tests.platform_schema.support import add_user

API_KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"


def cipher_for(key: str) -> TokenCipher:
    return TokenCipher.from_env({KEY_VAR: key})


def test_round_trip_and_the_ciphertext_hides_the_key() -> None:
    cipher = cipher_for(generate_key())
    context = token_context(uuid4(), "openai")
    first = cipher.encrypt(API_KEY, context=context)
    second = cipher.encrypt(API_KEY, context=context)

    assert cipher.decrypt(first, context=context) == API_KEY
    assert API_KEY.encode() not in first.ciphertext
    assert len(first.ciphertext) == len(API_KEY) + 16  # GCM tag
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext
    assert first.key_id == second.key_id == cipher.key_id


def test_another_key_does_not_decrypt() -> None:
    context = token_context(uuid4(), "github")
    sealed = cipher_for(generate_key()).encrypt(API_KEY, context=context)
    other = cipher_for(generate_key())
    with pytest.raises(TokenCryptoError, match="encrypted under key k-"):
        other.decrypt(sealed, context=context)
    # even when the key id is forged, the tag check refuses the wrong key
    with pytest.raises(TokenCryptoError, match="does not decrypt"):
        other.decrypt(replace(sealed, key_id=other.key_id), context=context)


def test_altered_or_moved_ciphertext_does_not_decrypt() -> None:
    cipher = cipher_for(generate_key())
    owner = uuid4()
    sealed = cipher.encrypt(API_KEY, context=token_context(owner, "anthropic"))
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    for token, context in [
        (replace(sealed, ciphertext=flipped), token_context(owner, "anthropic")),
        (sealed, token_context(uuid4(), "anthropic")),
        (sealed, token_context(owner, "gemini")),
    ]:
        with pytest.raises(TokenCryptoError, match="does not decrypt"):
            cipher.decrypt(token, context=context)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is not set"),
        ("not base64!", "is not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "decodes to 16 bytes"),
    ],
)
def test_bad_keys_are_refused_without_showing_them(value: str, reason: str) -> None:
    with pytest.raises(TokenCryptoError, match=reason) as refused:
        cipher_for(value)
    assert not value or value not in str(refused.value)


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(TokenCryptoError, match="unknown provider 'aws'"):
        token_context(uuid4(), "aws")


def test_stored_tokens_are_ciphertext_and_load_back(platform: psycopg.Connection) -> None:
    cipher = cipher_for(generate_key())
    user = add_user(platform, "dev@example.com")
    store_token(platform, cipher, user, "openai", API_KEY)
    store_token(platform, cipher, user, "openai", API_KEY + "-rotated")  # upsert, one row

    rows = platform.execute(
        "select ciphertext, nonce, key_id from user_tokens where user_id = %s", (user,)
    ).fetchall()
    assert len(rows) == 1
    ciphertext, nonce, key_id = rows[0]
    assert API_KEY.encode() not in bytes(ciphertext) and len(nonce) == 12
    assert key_id == cipher.key_id
    assert load_token(platform, cipher, user, "openai") == API_KEY + "-rotated"
    assert load_token(platform, cipher, user, "github") is None

    # a ciphertext copied onto another user's row is refused, not handed out
    thief = add_user(platform, "thief@example.com")
    platform.execute(
        "insert into user_tokens (user_id, provider, ciphertext, nonce, key_id) "
        "select %s, provider, ciphertext, nonce, key_id from user_tokens where user_id = %s",
        (thief, user),
    )
    with pytest.raises(TokenCryptoError, match="does not decrypt"):
        load_token(platform, cipher, thief, "openai")
