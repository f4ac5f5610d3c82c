"""Validate a configuration document against msgspec Structs and report every problem at once.

A valid document costs one ``msgspec.convert`` plus the checks below. But msgspec stops at the first error and its
messages may quote the offending value (``Invalid enum value 'x'``), which for a secret document would leak a
secret; so a document with a problem is walked again by :class:`kauto.collector.Collector` along the Struct's type
information (``msgspec.structs.fields`` and ``msgspec.inspect``, loaded only then): every key of every nested object
is checked, each leaf value is converted with ``msgspec.convert`` against the field's annotated type
(``msgspec.Meta`` bounds and patterns), and each failure becomes a :class:`Problem` holding the setting's path and
what was expected, never the value. Unknown keys get the closest known key ("did you mean `captions`?"). A Struct
may define ``cross_check()`` returning ``(relative path, expected)`` pairs for rules spanning fields (min <= max); it
runs once its own fields are valid, and its findings join the same list.

A field can replace the generated wording of what it expects with ``Meta(extra={"expected": "..."})``, and add a
check that needs no other field (a time zone that exists) with ``Meta(extra={"check": fn})``, ``fn(value)`` returning
what was expected or ``None``: unlike ``cross_check`` it runs even when a sibling is invalid.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import msgspec

from kauto.errors import ConfigError

T = TypeVar("T")

PERCENT_HINT = "this looks like a percentage: ratios are written 0..1, e.g. 0.3 for 30%"


class Problem(msgspec.Struct, frozen=True):
    """One invalid setting: where (``partners.1234567.captions.min_duration_seconds``) and what was expected.

    A Struct rather than a NamedTuple: creating a NamedTuple class compiles code, half a millisecond of the webhook's
    cold start."""

    path: str
    expected: str

    def __str__(self) -> str:
        return f"{self.path}: {self.expected}"


class ConfigErrors(ConfigError):
    """Every problem of one document (or one partner's entry); ``problems`` lists them in document order, and
    ``setting`` / ``problem`` are the first one's."""

    def __init__(self, document: str, problems: Sequence[Problem]) -> None:
        super().__init__(problems[0].path, problems[0].expected)
        listed = "; ".join(str(problem) for problem in problems)
        self.args = (f"invalid {document} ({len(problems)} problem(s)): {listed}",)
        self.document = document
        self.problems = tuple(problems)


def join(path: str, key: str) -> str:
    """``path.key`` (or ``key`` at the root)."""
    return f"{path}.{key}" if path else key


def validate(document: Any, cls: type[T], path: str = "") -> tuple[T | None, list[Problem]]:
    """Validate ``document`` (parsed JSON) as ``cls``: the built Struct, or ``None`` with every problem found.

    A valid document takes msgspec's fast path (one ``msgspec.convert``, then the field and cross-field checks); only
    a document with a problem is walked again by :class:`kauto.collector.Collector` to list every problem.
    """
    try:
        value = msgspec.convert(document, cls, strict=True)
    except (msgspec.ValidationError, TypeError, ValueError):
        value = None
    if value is not None and not _has_problem(value):
        return value, []
    from kauto.collector import INVALID, Collector

    collector = Collector()
    built = collector.value(document, cls, path)
    if collector.problems or built is INVALID:
        return None, collector.problems
    return built, []


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


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    return msgspec.structs.fields(cls)


def _has_problem(value: Any) -> bool:
    """Whether a converted value fails a field check or a ``cross_check`` anywhere inside it."""
    if isinstance(value, msgspec.Struct):
        for field in _fields(type(value)):
            child = getattr(value, field.name)
            if check_value(field.type, child) is not None or _has_problem(child):
                return True
        check = getattr(value, "cross_check", None)
        return bool(check is not None and check())
    if isinstance(value, dict):
        return any(_has_problem(child) for child in value.values())
    if isinstance(value, list | tuple):
        return any(_has_problem(child) for child in value)
    return False
