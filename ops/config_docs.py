"""The README's configuration tables, generated from the schemas (``make config-docs``).

Each table sits between marker comments in README.md (``<!-- kauto-config:secret -->`` ...
``<!-- /kauto-config:secret -->``) and is rewritten from the Structs of :mod:`kauto.config`,
:mod:`kauto.automation_config` and :mod:`kauto.weekly.schema`: every key, its type, whether it is required, its
default and its ``Meta(description=...)``, the same source as ``kauto-config schema``. A unit test fails when the
README and the schemas disagree.

    python -m kauto_ops.config_docs README.md           # rewrite the tables
    python -m kauto_ops.config_docs --check README.md   # exit 1 when they are stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import msgspec
import msgspec.inspect as mi
from kauto.automation_config import PartnerSettings
from kauto.collector import describe
from kauto.config import PartnerEntry
from kauto.weekly.schema import WeeklySection

TABLES: Mapping[str, tuple[type[msgspec.Struct], str]] = {
    "secret": (PartnerEntry, "partners.<id>."),
    "automation": (PartnerSettings, ""),
    "weekly": (WeeklySection, "weekly."),
}
"""Marker name -> (Struct, prefix of its keys in the document)."""
_LONG_DEFAULT = 40


def render(name: str) -> str:
    """The markdown table of marker ``name``."""
    cls, prefix = TABLES[name]
    lines = ["| key | type | required | default | meaning |", "|---|---|---|---|---|"]
    for key, kind, required, default, meaning in rows(cls, prefix):
        lines.append(f"| `{key}` | {kind} | {'yes' if required else 'no'} | {default} | {meaning} |")
    return "\n".join(lines)


def rows(cls: type[msgspec.Struct], prefix: str) -> Iterator[tuple[str, str, bool, str, str]]:
    """(key, type, required, default, meaning) for every field of ``cls``, nested Structs flattened."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)  # noqa: S101 - a Struct class
    for field in info.fields:
        key = prefix + field.encode_name
        meaning = _description(field.type)
        nested = _nested_struct(field.type)
        default = _default(field)
        if nested is not None:
            struct, many = nested
            yield key, "list of objects" if many else _kind(field.type), field.required, default, meaning
            yield from rows(struct, f"{key}[]." if many else f"{key}.")
        else:
            yield key, _kind(field.type), field.required, default, meaning


def rewrite(text: str) -> str:
    """``text`` (the README) with every marked table regenerated."""
    for name in TABLES:
        pattern = re.compile(rf"(<!-- kauto-config:{name} -->\n).*?(<!-- /kauto-config:{name} -->)", re.S)
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"README.md has no <!-- kauto-config:{name} --> ... <!-- /kauto-config:{name} --> block")
        text = text[: match.end(1)] + render(name) + "\n" + text[match.start(2) :]
    return text


def _description(annotation: mi.Type) -> str:
    while isinstance(annotation, mi.Metadata):
        if annotation.extra_json_schema and "description" in annotation.extra_json_schema:
            return _cell(str(annotation.extra_json_schema["description"]))
        annotation = annotation.type
    return ""


def _kind(annotation: mi.Type) -> str:
    return _cell(describe(annotation))


def _cell(text: str) -> str:
    """``text`` safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _nested_struct(annotation: mi.Type) -> tuple[type[msgspec.Struct], bool] | None:
    while isinstance(annotation, mi.Metadata):
        annotation = annotation.type
    if isinstance(annotation, mi.UnionType):
        structs = [member for member in annotation.types if isinstance(member, mi.StructType)]
        return (structs[0].cls, False) if len(structs) == 1 else None
    if isinstance(annotation, mi.StructType):
        return annotation.cls, False
    if isinstance(annotation, (mi.ListType, mi.VarTupleType)):
        item = annotation.item_type
        while isinstance(item, mi.Metadata):
            item = item.type
        if isinstance(item, mi.StructType):
            return item.cls, True
    return None


def _default(field: mi.Field) -> str:
    if field.required:
        return ""
    value = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
    if isinstance(value, msgspec.Struct) and value == type(value)():
        return "(below)"
    text = json.dumps(msgspec.to_builtins(value))
    if isinstance(value, msgspec.Struct):
        return f"`{text}`"  # a default that differs from its keys' own defaults is shown whole
    return "(see meaning)" if len(text) > _LONG_DEFAULT else f"`{text}`"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or with ``--check`` verify) the README's tables."""
    parser = argparse.ArgumentParser(prog="config_docs", description="Generate the README's configuration tables.")
    parser.add_argument("readme", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 when the tables are stale; change nothing")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    updated = rewrite(text)
    if args.check:
        if updated != text:
            sys.stderr.write(f"{args.readme}: the configuration tables are stale; run `make config-docs`\n")
            return 1
        return 0
    if updated != text:
        args.readme.write_text(updated, encoding="utf-8")
        sys.stdout.write(f"{args.readme}: configuration tables rewritten\n")
    else:
        sys.stdout.write(f"{args.readme}: configuration tables already current\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
