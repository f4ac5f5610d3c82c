"""Every reference to the project's docs resolves inside the repository, and nothing cites notes outside it.

A reference is ``docs/<page>.md`` or ``docs/<page>.md#<anchor>``, optionally followed by more anchors of the same page
(``docs/kaltura.md#ks-v2, #app-tokens``; joined by ``,``, ``/``, ``and``, ``through``). Anchors are the explicit
``<a id="..."></a>`` tags in the page (no heading-slug rules). Links inside ``docs/`` (``[x](kaltura.md#reach)``,
``[x](#flows)``) are checked too.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO_ROOT

PAGES = ("docs/architecture.md", "docs/kaltura.md")

REFERENCE = re.compile(
    r"(?<![\w./-])(?P<page>docs/[\w-]+\.md)(?P<anchors>#[\w-]+(?:(?:\s*,\s*|\s*/\s*|\s+and\s+|\s+through\s+)#[\w-]+)*)?"
)
DOC_LINK = re.compile(r"\]\((?P<page>[\w-]+\.md)?(?P<anchor>#[\w-]+)?\)")
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
# Notes that live beside the repository, never in it (built from parts so this file does not match itself).
OUTSIDE_NOTES = re.compile(r"\b(?:PROTOCOL|ARCHITECTURE|STYLE)\.md\b|\.\./shared/|\bPROTOCOL\s*\u00a7")


@dataclass(frozen=True)
class Reference:
    source: str
    line: int
    page: str
    anchor: str | None

    def __str__(self) -> str:
        target = self.page + (f"#{self.anchor}" if self.anchor else "")
        return f"{self.source}:{self.line}: {target}"


def tracked_text_files(root: Path) -> Iterator[tuple[str, str]]:
    """(path, text) of every tracked file that is UTF-8 text."""
    listing = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as every developer runs it
        cwd=root,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        path = root / name
        if not path.is_file():
            continue  # deleted in the work tree, not yet committed
        try:
            yield name, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def references(source: str, text: str) -> Iterator[Reference]:
    """Every docs reference in ``text``; links inside a page under ``docs/`` resolve relative to it."""
    for match in REFERENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        anchors = re.findall(r"#([\w-]+)", match.group("anchors") or "")
        for anchor in anchors or [None]:
            yield Reference(source, line, match.group("page"), anchor)
    if source.startswith("docs/") and source.endswith(".md"):
        for match in DOC_LINK.finditer(text):
            if not (match.group("page") or match.group("anchor")):
                continue
            line = text.count("\n", 0, match.start()) + 1
            page = f"docs/{match.group('page')}" if match.group("page") else source
            anchor = match.group("anchor")
            yield Reference(source, line, page, anchor[1:] if anchor else None)


def anchors_of(text: str) -> list[str]:
    return ANCHOR.findall(text)


def unresolved(root: Path, refs: Iterable[Reference]) -> list[str]:
    """The references whose page or anchor does not exist under ``root``."""
    cache: dict[str, set[str] | None] = {}
    problems = []
    for ref in refs:
        if ref.page not in cache:
            page = root / ref.page
            cache[ref.page] = set(anchors_of(page.read_text(encoding="utf-8"))) if page.is_file() else None
        found = cache[ref.page]
        if found is None:
            problems.append(f"{ref} (no such page)")
        elif ref.anchor is not None and ref.anchor not in found:
            problems.append(f"{ref} (no such anchor)")
    return problems


@pytest.fixture(scope="module")
def repo_files() -> list[tuple[str, str]]:
    return list(tracked_text_files(REPO_ROOT))


def test_every_docs_reference_resolves(repo_files: list[tuple[str, str]]) -> None:
    refs = [ref for name, text in repo_files for ref in references(name, text)]
    assert len(refs) > 100, "the code cites the docs in many places; finding few means the pattern broke"
    problems = unresolved(REPO_ROOT, refs)
    assert not problems, "references that do not resolve:\n" + "\n".join(problems)


def test_no_file_cites_notes_outside_the_repository(repo_files: list[tuple[str, str]]) -> None:
    citing = [
        f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)}"
        for name, text in repo_files
        for match in OUTSIDE_NOTES.finditer(text)
    ]
    assert not citing, "cite docs/kaltura.md or docs/architecture.md instead:\n" + "\n".join(citing)


@pytest.mark.parametrize("page", PAGES)
def test_pages_have_unique_anchors_and_the_readme_links_them(page: str) -> None:
    found = anchors_of((REPO_ROOT / page).read_text(encoding="utf-8"))
    assert found and len(found) == len(set(found))
    assert f"({page})" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_checker_reports_missing_pages_and_anchors(tmp_path: Path) -> None:
    docs = "docs"  # the sample references are assembled so that this file does not cite a page that doesn't exist
    (tmp_path / docs).mkdir()
    (tmp_path / docs / "page.md").write_text('<a id="known"></a>\n## Known\nSee [there](#elsewhere).\n')
    text = (
        f"# ok: {docs}/page.md#known, {docs}/page.md\n"
        f"# bad anchor: {docs}/page.md#known, #gone\n"
        f"# bad page: {docs}/other.md#known\n"
        f"# not a reference: https://example.com/{docs}/page.md#gone\n"
    )
    refs = [*references("src/mod.py", text), *references(f"{docs}/page.md", (tmp_path / docs / "page.md").read_text())]
    assert unresolved(tmp_path, refs) == [
        f"src/mod.py:2: {docs}/page.md#gone (no such anchor)",
        f"src/mod.py:3: {docs}/other.md#known (no such page)",
        f"{docs}/page.md:3: {docs}/page.md#elsewhere (no such anchor)",
    ]


def test_outside_notes_pattern_matches_the_citation_forms() -> None:
    cited = ["see " + "PROTOCOL" + ".md", "STYLE" + ".md habit 3", "../" + "shared/kaltura", "PROTOCOL \u00a76.2"]
    assert all(OUTSIDE_NOTES.search(text) for text in cited)
    assert not OUTSIDE_NOTES.search("docs/kaltura.md#ks-v2 and shared/kauto/ (the layer)")
