"""Client-side KS (Kaltura Session) construction and the app-token hash (docs/kaltura.md#ks-v2, #app-tokens).

Reimplemented with ``cryptography`` instead of the AGPL Kaltura client (docs/kaltura.md#ks-v2).
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote_plus

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SESSION_TYPE_USER = 0
SESSION_TYPE_ADMIN = 2

_BLOCK = 16
APP_TOKEN_HASH_TYPES = frozenset({"SHA1", "MD5", "SHA256", "SHA512"})


def _php_urlencode(value: str) -> str:
    # PHP http_build_query: RFC 1738 (space -> "+"), and "~" is encoded where Python keeps it.
    return quote_plus(value, safe="").replace("~", "%7E")


def privilege_fields(privileges: str) -> list[tuple[str, str]]:
    """Split ``"a,b:c,*"`` into KS fields ``[("a", ""), ("b", "c"), ("all", "*")]`` (docs/kaltura.md#ks-v2 step 1)."""
    fields: list[tuple[str, str]] = []
    for item in privileges.split(","):
        item = item.strip()
        if not item:
            continue
        if item == "*":
            item = "all:*"
        name, _, value = item.partition(":")
        fields.append((name, value))
    return fields


def build_ks_v2(
    admin_secret: str,
    partner_id: int,
    *,
    expiry: int,
    rand16: bytes,
    user_id: str = "",
    session_type: int = SESSION_TYPE_ADMIN,
    privileges: str = "",
) -> str:
    """Build a v2 KS. ``expiry`` is absolute (unix seconds); ``rand16`` must be 16 random bytes (``os.urandom``)."""
    if len(rand16) != _BLOCK:
        raise ValueError("rand16 must be exactly 16 bytes")
    fields = [*privilege_fields(privileges), ("_e", str(expiry)), ("_t", str(session_type)), ("_u", user_id)]
    encoded = "&".join(f"{_php_urlencode(k)}={_php_urlencode(v)}" for k, v in fields).encode()
    # SHA1 is what the KS format specifies (integrity check inside the ciphertext), not our choice.
    plain = hashlib.sha1(rand16 + encoded).digest() + rand16 + encoded  # noqa: S324
    if len(plain) % _BLOCK:
        plain += b"\0" * (_BLOCK - len(plain) % _BLOCK)
    key = hashlib.sha1(admin_secret.encode()).digest()[:_BLOCK]  # noqa: S324
    # Zero IV is part of the KS v2 format; the random block inside the plaintext plays its role.
    encryptor = Cipher(algorithms.AES(key), modes.CBC(b"\0" * _BLOCK)).encryptor()
    cipher = encryptor.update(plain) + encryptor.finalize()
    raw = f"v2|{partner_id}|".encode() + cipher
    return base64.b64encode(raw).decode().replace("+", "-").replace("/", "_")


def build_ks_v1(
    admin_secret: str,
    partner_id: int,
    *,
    expiry: int,
    rand: int,
    user_id: str = "",
    session_type: int = SESSION_TYPE_ADMIN,
    privileges: str = "",
) -> str:
    """Build a legacy v1 KS: base64(sha1hex(secret + info) + "|" + info) (docs/kaltura.md#ks-v2)."""
    info = f"{partner_id};{partner_id};{expiry};{session_type};{rand};{user_id};{privileges}"
    signature = hashlib.sha1((admin_secret + info).encode()).hexdigest()  # noqa: S324
    return base64.b64encode(f"{signature}|{info}".encode()).decode()


def app_token_hash(ks: str, token: str, hash_type: str) -> str:
    """``tokenHash`` for ``appToken.startSession``: lowercase hex(HASH(ks + token)) (docs/kaltura.md#app-tokens)."""
    name = hash_type.upper()
    if name not in APP_TOKEN_HASH_TYPES:
        raise ValueError(f"unsupported app token hash type {hash_type!r}")
    # The hash algorithm is the token's configured hashType; MD5/SHA1 are Kaltura's options, not ours.
    return hashlib.new(name.lower(), (ks + token).encode()).hexdigest()
