"""The error collector behind :func:`kauto.validation.validate`: walks a document along msgspec's type information
(``msgspec.inspect``) and records every problem instead of stopping at the first.

Loaded only when a document has a problem (or by the operator tools), so the webhook's cold start pays for msgspec's
fast path alone.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from typing import Any

import msgspec
import msgspec.inspect as mi

from kauto.validation import PERCENT_HINT, Problem, check_value, join


class _Invalid:
    """Marker for a value that failed validation (its problems are already recorded)."""


INVALID: Any = _Invalid()


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
        expected = check_value(annotation, converted)
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


def _unwrap(info: mi.Type) -> mi.Type:
    while isinstance(info, mi.Metadata):
        info = info.type
    return info


def _struct_member(info: mi.UnionType) -> mi.StructType | None:
    members = [_unwrap(member) for member in info.types]
    structs = [member for member in members if isinstance(member, mi.StructType)]
    others = [member for member in members if not isinstance(member, mi.StructType | mi.NoneType)]
    return structs[0] if len(structs) == 1 and not others else None
