"""Kaltura webhook signature verification (docs/kaltura.md#signature).

``X-KALTURA-SIGNATURE`` = lowercase hex(HASH(admin secret + exact raw body)), a plain hash (not HMAC) with HASH the
template's algorithm, announced since 2024 in ``X-KALTURA-HASH-ALGO``. The partner's configuration pins which
algorithms are acceptable, so the header can only select among them, never downgrade to another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from typing import Any

from kauto.config import PartnerConfig
from kauto.intake.errors import SignatureError

SIGNATURE_HEADER = "x-kaltura-signature"
HASH_ALGORITHM_HEADER = "x-kaltura-hash-algo"

_HASHES: dict[str, Callable[..., Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
_HEX_LENGTH = {"sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")


def verify_signature(body: bytes, headers: Mapping[str, str], partner: PartnerConfig) -> str:
    """Check the delivery's signature against the partner's current and previous admin secrets.

    ``headers`` must have lower-case names. Returns the algorithm that verified. Raises :class:`SignatureError`
    with reason ``missing_signature``, ``algorithm_not_allowed`` or ``bad_signature``.
    """
    signature = headers.get(SIGNATURE_HEADER, "").strip().lower()
    if not signature:
        raise SignatureError("missing_signature", "missing X-KALTURA-SIGNATURE")
    algorithm = _algorithm(signature, headers.get(HASH_ALGORITHM_HEADER), partner.webhook_hash_algorithms)
    if len(signature) != _HEX_LENGTH[algorithm] or not _HEX.fullmatch(signature):
        raise SignatureError("bad_signature", "signature verification failed")
    expected = signature.encode("ascii")
    matched = False
    # Both secrets are always tried so that the time taken does not tell which one matched.
    for secret in partner.webhook_secrets:
        digest = _HASHES[algorithm](secret.encode("utf-8") + body).hexdigest().encode("ascii")
        matched |= hmac.compare_digest(digest, expected)
    if not matched:
        raise SignatureError("bad_signature", "signature verification failed")
    return algorithm


def _algorithm(signature: str, declared: str | None, allowed: tuple[str, ...]) -> str:
    if declared is not None:
        algorithm = declared.strip().lower()
        if algorithm not in allowed:
            raise SignatureError("algorithm_not_allowed", "hash algorithm not allowed for this partner")
        return algorithm
    # Servers before July 2024 send no algorithm header (docs/kaltura.md#signature); the digest length identifies it,
    # and only among the partner's allowed algorithms.
    for algorithm in allowed:
        if _HEX_LENGTH[algorithm] == len(signature):
            return algorithm
    raise SignatureError("bad_signature", "signature verification failed")
