"""The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677), as MongoDB runs it through its
saslStart / saslContinue commands: the sandbox MongoDB server checks a password the way a
real deployment does, so a MONGO_URI with credentials is exercised end to end.

    exchange = ScramExchange({"analyst": ScramCredential.from_password(password)})
    server_first = exchange.first(client_first)     # "r=<nonce>,s=<salt>,i=<iterations>"
    server_final = exchange.final(client_final)     # "v=<signature>"; ScramError if wrong
    exchange.user                                    # who authenticated
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from pymongo.saslprep import saslprep

MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 15_000  # MongoDB's default for SCRAM-SHA-256


class ScramError(ValueError):
    """The client's messages are malformed, or its proof does not match the password."""


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class ScramCredential:
    """What a server stores for a user: never the password, only keys derived from it."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(cls, password: str, *, iterations: int = ITERATIONS) -> ScramCredential:
        salt = secrets.token_bytes(16)
        salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode(), salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        return cls(
            salt, iterations, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key")
        )


def _fields(message: str) -> dict[str, str]:
    try:
        return dict(part.split("=", 1) for part in message.split(","))
    except ValueError:
        raise ScramError(f"malformed SCRAM message {message!r}") from None


class ScramExchange:
    """One authentication conversation on one connection."""

    def __init__(self, credentials: Mapping[str, ScramCredential]) -> None:
        self._credentials = credentials
        self._client_first_bare = ""
        self._server_first = ""
        self._credential: ScramCredential | None = None
        self._candidate: str | None = None
        self.user: str | None = None  # set once the proof checked out

    def first(self, client_first: bytes) -> bytes:
        """Answer `n,,n=<user>,r=<client nonce>` with the full nonce, salt and iterations."""
        text = client_first.decode()
        if not text.startswith("n,,"):
            raise ScramError("only the 'n,,' GS2 header (no channel binding) is supported")
        self._client_first_bare = text[3:]
        fields = _fields(self._client_first_bare)
        name = fields.get("n", "").replace("=2C", ",").replace("=3D", "=")
        self._candidate, self._credential = name, self._credentials.get(name)
        # An unknown user gets a made-up salt: the answer must not tell which users exist.
        credential = self._credential or ScramCredential.from_password(secrets.token_hex(8))
        nonce = fields.get("r", "") + secrets.token_urlsafe(18)
        salt = base64.b64encode(credential.salt).decode()
        self._server_first = f"r={nonce},s={salt},i={credential.iterations}"
        return self._server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        """Check `c=biws,r=<nonce>,p=<proof>`; answer `v=<server signature>`."""
        text = client_final.decode()
        without_proof, _, proof_field = text.rpartition(",p=")
        fields = _fields(without_proof)
        if fields.get("r") != _fields(self._server_first)["r"]:
            raise ScramError("the client's final message does not carry the server's nonce")
        credential = self._credential
        if credential is None:
            raise ScramError(f"no such user {self._candidate!r}")
        message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        signature = _hmac(credential.stored_key, message)
        proof = base64.b64decode(proof_field)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=False))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), credential.stored_key):
            raise ScramError("the password does not match")
        self.user = self._candidate
        server_signature = base64.b64encode(_hmac(credential.server_key, message)).decode()
        return f"v={server_signature}".encode()
