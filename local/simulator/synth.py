"""Deterministic synthetic data: every value is a pure function of (seed, index), so nothing has to be stored.

The name pools deliberately contain the awkward cases real Kaltura data has: commas and semicolons (which the
report writers replace with spaces), spreadsheet-formula prefixes (``=``, ``+``, ``-``, ``@``) and non-ASCII text.
"""

from __future__ import annotations

import hashlib

_MASK = (1 << 64) - 1
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def mix64(value: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def seed_of(*parts: object) -> int:
    """A 64-bit seed from arbitrary parts (stable across runs and Python versions, unlike ``hash``)."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def object_id(seed: int, index: int) -> str:
    """A Kaltura-looking id (``1_xxxxxxxx``) for synthetic row ``index``."""
    value = mix64(seed ^ (index * 0x2545F4914F6CDD1D & _MASK))
    chars = []
    for _ in range(8):
        value, digit = divmod(value, 36)
        chars.append(_ALPHABET[digit])
    return "1_" + "".join(chars)


_FIRST = ("Jane", "Omar", "Li", "Sofía", "Noa", "Pat", "Ahmed", "Zoë", "Kenji", "Olga", "Mary-Ann", "Björn")
_LAST = ("Doe", "Haddad", "Wei", "Núñez", "Levi", "O'Brien", "Khan", "Müller", "Sato", "Ivanova", "Smith", "Lund")
# Values a CSV consumer must not evaluate as formulas, or must survive a delimiter replacement.
AWKWARD_NAMES = (
    '=HYPERLINK("http://x.example")',
    "+1 555 0100",
    "-Minus Person",
    "@handle",
    "Doe, Jane",
    "Semi;Colon",
    "Pipe | Person",
    "李小龍",
    'Quote "Q" Doe',
    "Ünïcödé Ñame",
)

_TOPICS = ("Quarterly all-hands", "Onboarding", "Security training", "Product demo", "Town hall", "Lecture")
_AWKWARD_TITLES = (
    "Onboarding, part {n}",
    "Q&A | session {n}",
    "Budget; review {n}",
    "Réunion générale {n}",
    "=cmd|' /C calc'!A{n}",
)


def person_name(seed: int, index: int) -> str:
    """A display name; roughly one in eight is one of :data:`AWKWARD_NAMES`."""
    value = mix64(seed ^ index)
    if value % 8 == 0:
        return AWKWARD_NAMES[(value >> 8) % len(AWKWARD_NAMES)]
    return f"{_FIRST[(value >> 16) % len(_FIRST)]} {_LAST[(value >> 24) % len(_LAST)]}"


def entry_title(seed: int, index: int) -> str:
    """An entry name; roughly one in six contains a comma, pipe, semicolon, non-ASCII or formula prefix."""
    value = mix64(seed ^ (index + 0x51))
    if value % 6 == 0:
        return _AWKWARD_TITLES[(value >> 8) % len(_AWKWARD_TITLES)].format(n=index)
    return f"{_TOPICS[(value >> 16) % len(_TOPICS)]} {index + 1}"


def unit(value: int, shift: int, scale: int) -> int:
    """``scale`` buckets drawn from bits of ``value`` starting at ``shift``."""
    return (value >> shift) % scale
