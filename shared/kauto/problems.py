"""What a configuration problem is, and the per-field checks, shared by :mod:`kauto.validation` (the fast path)
and :mod:`kauto.collector` (the walk that lists every problem, loaded only when a document has one).

Apart from both so that neither imports the other at run time: the validator loads the collector lazily, and the
collector needs these.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

PERCENT_HINT = "this looks like a percentage: ratios are written 0..1, e.g. 0.3 for 30%"


class Problem(msgspec.Struct, frozen=True):
    """One invalid setting: where (``partners.1234567.captions.min_duration_seconds``) and what was expected.

    A Struct rather than a NamedTuple: creating a NamedTuple class compiles code, half a millisecond of the webhook's
    cold start."""

    path: str
    expected: str

    def __str__(self) -> str:
        return f"{self.path}: {self.expected}"


def join(path: str, key: str) -> str:
    """``path.key`` (or ``key`` at the root)."""
    return f"{path}.{key}" if path else key


def check_value(annotation: Any, value: Any) -> str | None:
    """What a field's ``Meta(extra={"check": fn})`` functions expected, when ``value`` fails one; else ``None``."""
    for check in _checks(annotation):
        expected = check(value)
        if expected is not None:
            return str(expected)
    return None


@functools.cache
def _checks(annotation: Any) -> tuple[Callable[[Any], str | None], ...]:
    found: list[Callable[[Any], str | None]] = []
    while typing.get_origin(annotation) is Annotated:
        found += [
            meta.extra["check"]
            for meta in annotation.__metadata__
            if isinstance(meta, msgspec.Meta) and meta.extra and "check" in meta.extra
        ]
        annotation = annotation.__origin__
    return tuple(found)
