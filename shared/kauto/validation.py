"""Validate a configuration document against msgspec Structs and report every problem at once.

msgspec stops at the first error and its messages may quote the offending value (``Invalid enum value 'x'``), which
for a secret document would leak a secret. :func:`validate` walks the Struct's type information instead
(``msgspec.structs.fields`` and ``msgspec.inspect``): every key of every nested object is checked, each leaf value is
converted with ``msgspec.convert`` against the field's annotated type (``msgspec.Meta`` bounds and patterns), and each
failure becomes a :class:`Problem` holding the setting's path and what was expected, never the value. Unknown keys
get the closest known key ("did you mean `captions`?"). A Struct may define ``cross_check()`` yielding
``(relative path, expected)`` pairs for rules spanning fields (min <= max, a time zone that exists); it runs once its
own fields are valid, and its findings join the same list.

A field can replace the generated wording of what it expects with ``Meta(extra={"expected": "..."})``, and add a
check that needs no other field (a time zone that exists) with ``Meta(extra={"check": fn})``, ``fn(value)`` returning
what was expected or ``None``: unlike ``cross_check`` it runs even when a sibling is invalid.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import msgspec
from msgspec import inspect as mi

from kauto.errors import ConfigError

T = TypeVar("T")

PERCENT_HINT = "this looks like a percentage: ratios are written 0..1, e.g. 0.3 for 30%"


class Problem(NamedTuple):
    """One invalid setting: where (``partners.1234567.captions.min_duration_seconds``) and what was expected."""

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


class _Invalid:
    """Marker for a value that failed validation (its problems are already recorded)."""


INVALID: Any = _Invalid()


def join(path: str, key: str) -> str:
    """``path.key`` (or ``key`` at the root)."""
    return f"{path}.{key}" if path else key


def validate(document: Any, cls: type[T], path: str = "") -> tuple[T | None, list[Problem]]:
    """Validate ``document`` (parsed JSON) as ``cls``: the built Struct, or ``None`` with every problem found."""
    collector = Collector()
    value = collector.value(document, cls, path)
    if collector.problems or value is INVALID:
        return None, collector.problems
    return value, []


class Collector:
    """Walks a document along a type, recording problems instead of stopping at the first one."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, expected: str) -> None:
        """Record a problem."""
        self.problems.append(Problem(path or "(document)", expected))

    def value(self, raw: Any, annotation: Any, path: str) -> Any:
        """``raw`` converted to ``annotation``, or :data:`INVALID` after recording why not."""
        info = _unwrap(_type_info(annotation))
        if isinstance(info, mi.StructType):
            return self.struct(raw, info.cls, path)
        if isinstance(info, mi.UnionType) and _struct_member(info) is not None:
            if raw is None and any(isinstance(member, mi.NoneType) for member in info.types):
                return None
            member = _struct_member(info)
            assert member is not None  # noqa: S101 - checked above
            return self.struct(raw, member.cls, path)
        if isinstance(info, mi.DictType) and isinstance(_unwrap(info.value_type), mi.StructType):
            return self._dict_of_structs(raw, info, path)
        if isinstance(info, (mi.ListType, mi.VarTupleType)) and isinstance(_unwrap(info.item_type), mi.StructType):
            return self._list_of_structs(raw, info, path)
        try:
            converted = msgspec.convert(raw, annotation, strict=True)
        except msgspec.ValidationError as error:
            where = _where(str(error))
            self.add(path + where, _expected_of(annotation, raw, where))
            return INVALID
        for check in _checks(_type_info(annotation)):
            expected = check(converted)
            if expected is not None:
                self.add(path, expected)
                return INVALID
        return converted

    def struct(self, raw: Any, cls: type[Any], path: str) -> Any:
        """Validate an object as Struct ``cls``: unknown keys, missing required keys, each field, then cross-checks."""
        if not isinstance(raw, dict):
            self.add(path, "an object")
            return INVALID
        before = len(self.problems)
        fields = {field.encode_name: field for field in msgspec.structs.fields(cls)}
        for key in raw:
            if key not in fields:
                self.add(join(path, str(key)), unknown_key(str(key), fields))
        values: dict[str, Any] = {}
        for name, field in fields.items():
            if name not in raw:
                if field.required:
                    self.add(join(path, name), f"required: {_expected_of(field.type, None)}")
                continue
            values[field.name] = self.value(raw[name], field.type, join(path, name))
        if len(self.problems) > before:
            return INVALID
        try:
            built = cls(**values)
        except (TypeError, ValueError) as error:  # a __post_init__ refusing the combination
            self.add(path, str(error))
            return INVALID
        self.cross_check(built, path)
        return INVALID if len(self.problems) > before else built

    def cross_check(self, built: Any, path: str) -> None:
        """Record the findings of ``built.cross_check()`` (rules spanning fields), if it has one."""
        check = getattr(built, "cross_check", None)
        if check is not None:
            for relative, expected in check():
                self.add(join(path, relative), expected)

    def _dict_of_structs(self, raw: Any, info: mi.DictType, path: str) -> Any:
        if not isinstance(raw, dict):
            self.add(path, "an object")
            return INVALID
        value_type = _unwrap(info.value_type)
        assert isinstance(value_type, mi.StructType)  # noqa: S101 - checked by the caller
        built = {key: self.struct(item, value_type.cls, join(path, str(key))) for key, item in raw.items()}
        return INVALID if any(item is INVALID for item in built.values()) else built

    def _list_of_structs(self, raw: Any, info: mi.ListType | mi.VarTupleType, path: str) -> Any:
        item_type = _unwrap(info.item_type)
        assert isinstance(item_type, mi.StructType)  # noqa: S101 - checked by the caller
        if not isinstance(raw, list):
            self.add(path, "a list of objects")
            return INVALID
        if info.min_length is not None and len(raw) < info.min_length:
            self.add(path, f"a list of at least {info.min_length} object(s)")
        if info.max_length is not None and len(raw) > info.max_length:
            self.add(path, f"a list of at most {info.max_length} objects")
        built = [self.struct(item, item_type.cls, f"{path}[{index}]") for index, item in enumerate(raw)]
        if any(item is INVALID for item in built):
            return INVALID
        return tuple(built) if isinstance(info, mi.VarTupleType) else built


def unknown_key(key: str, known: Iterable[str]) -> str:
    """The problem text of an unknown key, with the closest known key when one is close."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"unknown setting; did you mean `{close[0]}`?" if close else "unknown setting"


def describe(info: mi.Type) -> str:
    """What a value of type ``info`` looks like, in words (never quoting a value)."""
    if isinstance(info, mi.Metadata):
        if info.extra and "expected" in info.extra:
            return str(info.extra["expected"])
        return describe(info.type)
    if isinstance(info, mi.BoolType):
        return "true or false"
    if isinstance(info, mi.NoneType):
        return "null"
    if isinstance(info, mi.IntType):
        return "a whole number" + _bounds(info)
    if isinstance(info, mi.FloatType):
        return "a number" + _bounds(info)
    if isinstance(info, mi.StrType):
        if info.pattern is not None:
            return f"a string matching {info.pattern}"
        return "a non-empty string" if info.min_length else "a string"
    if isinstance(info, mi.LiteralType):
        return "one of " + ", ".join(str(value) for value in info.values)
    if isinstance(info, mi.EnumType):
        return "one of " + ", ".join(str(member.value) for member in info.cls)
    if isinstance(info, mi.UnionType):
        return " or ".join(describe(member) for member in info.types)
    if isinstance(info, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
        size = ""
        if info.min_length:
            size = " (at least one)" if info.min_length == 1 else f" (at least {info.min_length})"
        if info.max_length is not None:
            size += f" (at most {info.max_length})"
        return f"a list{size} of items each {describe(info.item_type)}"
    if isinstance(info, mi.DictType):
        return f"an object whose values are {describe(info.value_type)}"
    return "an object"


def describe_annotation(annotation: Any) -> str:
    """What a value of the annotated type looks like, in words."""
    return describe(_type_info(annotation))


def _bounds(info: mi.IntType | mi.FloatType) -> str:
    if info.ge is not None and info.le is not None:
        return f" from {info.ge} to {info.le}"
    limits = ((">=", info.ge), (">", info.gt), ("<=", info.le), ("<", info.lt))
    parts = [f"{operator} {limit}" for operator, limit in limits if limit is not None]
    return " " + " and ".join(parts) if parts else ""


def is_ratio(info: mi.Type) -> bool:
    """A number bounded to [0, 1]."""
    return isinstance(info, mi.FloatType) and info.ge == 0 and info.le == 1


def _expected_of(annotation: Any, raw: Any, where: str = "") -> str:
    info = _inner(_type_info(annotation), where)
    expected = describe(info)
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 1 < raw <= 100:
        inner = _unwrap(info)
        members = inner.types if isinstance(inner, mi.UnionType) else (inner,)
        if any(is_ratio(_unwrap(member)) for member in members):
            expected += f" ({PERCENT_HINT})"
    return expected


def _inner(info: mi.Type, where: str) -> mi.Type:
    """The type at ``where`` (``[2]`` list items, ``.key`` object values) inside ``info``, for a precise wording."""
    for step in re.findall(r"\[\d+\]|\.[^.\[]+", where):
        inner = _unwrap(info)
        if step.startswith("[") and isinstance(inner, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
            info = inner.item_type
        elif step.startswith(".") and isinstance(inner, mi.DictType):
            info = inner.value_type
        else:
            break
    return info


_WHERE = re.compile(r" - at `\$((?:\[\d+\]|\.[^`\[]+)*)`$")


def _where(message: str) -> str:
    """The path suffix msgspec names for an error inside a value (``[2]`` of a list), else empty."""
    match = _WHERE.search(message)
    return match.group(1) if match else ""


@functools.lru_cache(maxsize=512)
def _type_info(annotation: Any) -> mi.Type:
    return mi.type_info(annotation)


def _checks(info: mi.Type) -> Iterator[Callable[[Any], str | None]]:
    """The ``Meta(extra={"check": fn})`` functions of a field: ``fn(value)`` returns what was expected, or None."""
    while isinstance(info, mi.Metadata):
        if info.extra and "check" in info.extra:
            yield info.extra["check"]
        info = info.type


def _unwrap(info: mi.Type) -> mi.Type:
    while isinstance(info, mi.Metadata):
        info = info.type
    return info


def _struct_member(info: mi.UnionType) -> mi.StructType | None:
    members = [_unwrap(member) for member in info.types]
    structs = [member for member in members if isinstance(member, mi.StructType)]
    others = [member for member in members if not isinstance(member, mi.StructType | mi.NoneType)]
    return structs[0] if len(structs) == 1 and not others else None
