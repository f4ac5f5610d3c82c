"""KS (Kaltura Session) encoding and decoding, written from docs/kaltura.md#ks-v2 independently of the product client.

The decoder follows docs/kaltura.md#ks-v2 step 6 literally (reverse the URL-safe base64, split on the first two ``|``,
AES-128-CBC decrypt with each admin secret of the partner, strip the zero padding, check the SHA1 prefix) so that a
contract test "the client's KS is accepted by the simulator" compares two independent implementations.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SESSION_TYPE_USER = 0
SESSION_TYPE_ADMIN = 2

_ZERO_IV = bytes(16)
_SHA1_LEN = 20
_RAND_LEN = 16
_RESERVED_FIELDS = ("_e", "_t", "_u", "_m", "_d")


class KsDecodeError(ValueError):
    """The string is not a KS this partner could have issued (bad encoding, unknown partner, wrong secret, tampered)."""


@dataclass(frozen=True, slots=True)
class KsInfo:
    """What a valid KS says: who, until when, with which privileges."""

    version: int
    partner_id: int
    expiry: int
    session_type: int
    user_id: str
    privileges: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    master_partner_id: int | None = None
    additional_data: str | None = None

    @property
    def is_admin(self) -> bool:
        """True for an ADMIN (type 2) session."""
        return self.session_type == SESSION_TYPE_ADMIN

    def privilege(self, name: str) -> str | None:
        """Value of privilege ``name`` (``""`` for a bare privilege), or None when absent."""
        for key, value in self.privileges:
            if key == name:
                return value
        return None

    def privilege_values(self, name: str) -> list[str]:
        """All values of a privilege that may repeat, e.g. ``download``."""
        return [value for key, value in self.privileges if key == name]


def parse_privileges(privileges: str) -> list[tuple[str, str]]:
    """Split ``"a,b:c,*"`` into ordered fields as docs/kaltura.md#ks-v2 step 1 does: bare -> ``a=``, ``*`` ->
    ``all=*``."""
    fields: list[tuple[str, str]] = []
    for raw in privileges.split(","):
        item = raw.strip()
        if not item:
            continue
        if item == "*":
            fields.append(("all", "*"))
        elif ":" in item:
            name, value = item.split(":", 1)
            fields.append((name, value))
        else:
            fields.append((item, ""))
    return fields


def _aes_key(admin_secret: str) -> bytes:
    return hashlib.sha1(admin_secret.encode()).digest()[:16]  # noqa: S324 - fixed by the KS v2 format


def encode_ks_v2(
    partner_id: int,
    admin_secret: str,
    *,
    session_type: int,
    user_id: str,
    expiry: int,
    privileges: str = "",
    rand: bytes,
    master_partner_id: int | None = None,
    additional_data: str | None = None,
) -> str:
    """Build a v2 KS (docs/kaltura.md#ks-v2 steps 1-5). ``expiry`` is absolute unix time; ``rand`` is the 16-byte random
    block."""
    if len(rand) != _RAND_LEN:
        raise ValueError("rand must be 16 bytes")
    fields = parse_privileges(privileges)
    fields += [("_e", str(expiry)), ("_t", str(session_type)), ("_u", user_id)]
    if master_partner_id is not None:
        fields.append(("_m", str(master_partner_id)))
    if additional_data is not None:
        fields.append(("_d", additional_data))
    encoded = urlencode(fields).encode()
    plain = hashlib.sha1(rand + encoded).digest() + rand + encoded  # noqa: S324 - fixed by the KS v2 format
    plain += b"\0" * (-len(plain) % 16)
    encryptor = Cipher(algorithms.AES(_aes_key(admin_secret)), modes.CBC(_ZERO_IV)).encryptor()
    cipher_text = encryptor.update(plain) + encryptor.finalize()
    raw = f"v2|{partner_id}|".encode() + cipher_text
    return base64.b64encode(raw).decode().replace("+", "-").replace("/", "_")


def encode_ks_v1(
    partner_id: int,
    admin_secret: str,
    *,
    session_type: int,
    user_id: str,
    expiry: int,
    privileges: str = "",
    rand: int,
) -> str:
    """Build a v1 KS: base64(sha1hex(secret + info) + "|" + info) with standard base64
    (docs/kaltura.md#ks-v2 "KS v1")."""
    info = f"{partner_id};{partner_id};{expiry};{session_type};{rand};{user_id};{privileges}"
    digest = hashlib.sha1((admin_secret + info).encode()).hexdigest()  # noqa: S324 - fixed by the KS v1 format
    return base64.b64encode(f"{digest}|{info}".encode()).decode()


def _b64decode_lenient(text: str) -> bytes:
    """PHP ``base64_decode`` accepts missing padding; so do we."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KsDecodeError("not base64") from exc


def decode_ks(ks: str, secrets_for_partner: Callable[[int], Sequence[str]]) -> KsInfo:
    """Decode and authenticate ``ks`` with the admin secrets ``secrets_for_partner(pid)`` returns.

    Raises :class:`KsDecodeError` when the KS is malformed, names a partner without secrets, or no secret
    authenticates it. Expiry is *not* checked here (the caller compares ``expiry`` with its own clock).
    """
    raw = _b64decode_lenient(ks.replace("-", "+").replace("_", "/"))
    if raw.startswith(b"v2|"):
        return _decode_v2(raw, secrets_for_partner)
    return _decode_v1(raw, secrets_for_partner)


def _decode_v2(raw: bytes, secrets_for_partner: Callable[[int], Sequence[str]]) -> KsInfo:
    parts = raw.split(b"|", 2)
    if len(parts) != 3:
        raise KsDecodeError("v2 KS without partner id")
    try:
        partner_id = int(parts[1])
    except ValueError as exc:
        raise KsDecodeError("v2 KS with a non-numeric partner id") from exc
    cipher_text = parts[2]
    if not cipher_text or len(cipher_text) % 16:
        raise KsDecodeError("v2 KS body is not whole AES blocks")
    for secret in secrets_for_partner(partner_id):
        decryptor = Cipher(algorithms.AES(_aes_key(secret)), modes.CBC(_ZERO_IV)).decryptor()
        plain = (decryptor.update(cipher_text) + decryptor.finalize()).rstrip(b"\0")
        digest, rest = plain[:_SHA1_LEN], plain[_SHA1_LEN:]
        if len(rest) >= _RAND_LEN and hmac.compare_digest(digest, hashlib.sha1(rest).digest()):  # noqa: S324
            return _info_from_fields(2, partner_id, rest[_RAND_LEN:])
    raise KsDecodeError("no admin secret of the partner authenticates this KS")


def _info_from_fields(version: int, partner_id: int, encoded: bytes) -> KsInfo:
    try:
        pairs = parse_qsl(encoded.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise KsDecodeError("KS fields are not text") from exc
    reserved = {key: value for key, value in pairs if key in _RESERVED_FIELDS}
    try:
        expiry = int(reserved.get("_e", ""))
        session_type = int(reserved.get("_t", ""))
    except ValueError as exc:
        raise KsDecodeError("KS without a numeric _e or _t") from exc
    master = reserved.get("_m")
    return KsInfo(
        version=version,
        partner_id=partner_id,
        expiry=expiry,
        session_type=session_type,
        user_id=reserved.get("_u", ""),
        privileges=tuple((key, value) for key, value in pairs if key not in _RESERVED_FIELDS),
        master_partner_id=int(master) if master and master.isdigit() else None,
        additional_data=reserved.get("_d"),
    )


def _decode_v1(raw: bytes, secrets_for_partner: Callable[[int], Sequence[str]]) -> KsInfo:
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise KsDecodeError("v1 KS is not text") from exc
    digest, sep, info = text.partition("|")
    fields = info.split(";")
    if not sep or len(fields) < 7:
        raise KsDecodeError("v1 KS has too few fields")
    try:
        partner_id, expiry, session_type = int(fields[0]), int(fields[2]), int(fields[3])
    except ValueError as exc:
        raise KsDecodeError("v1 KS with non-numeric fields") from exc
    for secret in secrets_for_partner(partner_id):
        expected = hashlib.sha1((secret + info).encode()).hexdigest()  # noqa: S324 - fixed by the KS v1 format
        if hmac.compare_digest(expected, digest):
            master = fields[7] if len(fields) > 7 else ""
            return KsInfo(
                version=1,
                partner_id=partner_id,
                expiry=expiry,
                session_type=session_type,
                user_id=fields[5],
                privileges=tuple(parse_privileges(fields[6])),
                master_partner_id=int(master) if master.isdigit() else None,
                additional_data=fields[8] if len(fields) > 8 and fields[8] else None,
            )
    raise KsDecodeError("no admin secret of the partner authenticates this KS")
