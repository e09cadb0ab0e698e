"""Provider API keys at rest: AES-256-GCM in the application, the key only in the environment.

The platform database has no pgcrypto, and a key passed through SQL would end up in server
logs, so encryption happens here and `user_tokens` stores only ciphertext, nonce and key id.
Each ciphertext is bound to its user and provider (GCM associated data): copied onto another
row, it no longer decrypts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_VAR = "PLATFORM_TOKEN_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12
PROVIDERS = frozenset({"github", "openai", "anthropic", "gemini"})


class TokenCryptoError(RuntimeError):
    """A token cannot be encrypted or decrypted; the message says why and never shows a secret."""


@dataclass(frozen=True)
class EncryptedToken:
    """What `user_tokens` stores for one API key."""

    ciphertext: bytes
    nonce: bytes
    key_id: str


def generate_key() -> str:
    """A fresh key in the form PLATFORM_TOKEN_KEY expects (base64 of 32 random bytes)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def token_context(user_id: UUID | str, provider: str) -> bytes:
    """The associated data that ties a ciphertext to one user's key for one provider."""
    if provider not in PROVIDERS:
        raise TokenCryptoError(
            f"unknown provider {provider!r}: expected one of {', '.join(sorted(PROVIDERS))}"
        )
    return f"user_tokens:{UUID(str(user_id))}:{provider}".encode()


class TokenCipher:
    """AES-256-GCM with one key; `key_id` is a fingerprint that reveals nothing of the key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise TokenCryptoError(f"the token key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = "k-" + hashlib.sha256(b"costudy-token-key-id:" + key).hexdigest()[:16]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TokenCipher:
        """The cipher for the key in PLATFORM_TOKEN_KEY (base64 of 32 bytes)."""
        raw = environ.get(KEY_VAR, "").strip()
        if not raw:
            raise TokenCryptoError(
                f"{KEY_VAR} is not set: it must hold base64 of {KEY_BYTES} random bytes "
                "(python -c 'from costudy_pipelines.lib.token_crypto import generate_key; "
                "print(generate_key())')"
            )
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise TokenCryptoError(f"{KEY_VAR} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise TokenCryptoError(
                f"{KEY_VAR} decodes to {len(key)} bytes; AES-256 needs {KEY_BYTES}"
            )
        return cls(key)

    def encrypt(self, plaintext: str, *, context: bytes) -> EncryptedToken:
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, plaintext.encode(), context)
        return EncryptedToken(ciphertext=ciphertext, nonce=nonce, key_id=self.key_id)

    def decrypt(self, token: EncryptedToken, *, context: bytes) -> str:
        if token.key_id != self.key_id:
            raise TokenCryptoError(
                f"the token was encrypted under key {token.key_id}, but {KEY_VAR} holds key "
                f"{self.key_id}: set the key it was written with, or re-encrypt it"
            )
        try:
            plaintext = self._aead.decrypt(token.nonce, token.ciphertext, context)
        except InvalidTag:
            raise TokenCryptoError(
                "the token does not decrypt: its ciphertext was altered or it belongs to "
                "another user or provider"
            ) from None
        return plaintext.decode()


def store_token(
    conn: psycopg.Connection, cipher: TokenCipher, user_id: UUID | str, provider: str, api_key: str
) -> None:
    """Encrypt `api_key` and upsert it as the user's key for `provider`."""
    sealed = cipher.encrypt(api_key, context=token_context(user_id, provider))
    conn.execute(
        """
        insert into user_tokens (user_id, provider, ciphertext, nonce, key_id)
        values (%s, %s, %s, %s, %s)
        on conflict (user_id, provider) do update
            set ciphertext = excluded.ciphertext, nonce = excluded.nonce, key_id = excluded.key_id
        """,
        (user_id, provider, sealed.ciphertext, sealed.nonce, sealed.key_id),
    )


def load_token(
    conn: psycopg.Connection, cipher: TokenCipher, user_id: UUID | str, provider: str
) -> str | None:
    """The user's decrypted key for `provider`, or None when none is stored."""
    context = token_context(user_id, provider)
    row = conn.execute(
        "select ciphertext, nonce, key_id from user_tokens where user_id = %s and provider = %s",
        (user_id, provider),
    ).fetchone()
    if row is None:
        return None
    ciphertext, nonce, key_id = row
    return cipher.decrypt(
        EncryptedToken(ciphertext=bytes(ciphertext), nonce=bytes(nonce), key_id=key_id),
        context=context,
    )
