"""The headless-browser helper sees what a person sees: hidden text is not visible, wide content overflows, and an
external asset shows up as a request (blocked, never fetched)."""

from __future__ import annotations

from pathlib import Path

from browser import Chromium, save_screenshot

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>.gone{display:none}.ghost{visibility:hidden}
.clear{opacity:0}</style></head><body>
<p class="t">shown</p><p class="t gone">display none</p><p class="t ghost">hidden</p><p class="t clear">transparent</p>
<svg width="200" height="40"><title>tooltip only</title><text class="t" x="0" y="20">svg text</text></svg>
<div style="width:%dpx">wide</div><img src="https://example.com/pixel.png" alt="">
<div class="box" style="width:50px;overflow-x:auto"><div style="width:80px">scrolls</div></div></body></html>"""


def _page(tmp_path: Path, width: int) -> Path:
    path = tmp_path / f"page-{width}.html"
    path.write_text(PAGE % width, encoding="utf-8")
    return path


def test_visible_texts_follow_computed_style(chromium: Chromium, tmp_path: Path) -> None:
    page = chromium.open(_page(tmp_path, 100), width=400)

    assert page.visible_texts(".t") == ["shown", "svg text"]
    assert page.visible_texts("svg title") == []


def test_overflow_and_external_requests_are_reported(chromium: Chromium, tmp_path: Path) -> None:
    narrow = chromium.open(_page(tmp_path, 100), width=400)
    wide = chromium.open(_page(tmp_path, 700), width=400)

    assert narrow.overflow_px == 0
    assert narrow.clipped == ["div.box"]  # inside the page, but a person must scroll it to see all
    assert wide.overflow_px == 700 + 8 - 400  # the body's default 8 px margin on the left
    assert wide.external_requests == ["https://example.com/pixel.png"]
    assert wide.requests[0].startswith("file://")


def test_screenshot_is_a_png_of_the_whole_page(chromium: Chromium, tmp_path: Path) -> None:
    page = chromium.open(_page(tmp_path, 100), width=400, height=100)

    shot = save_screenshot(page, tmp_path, "browser-helper")

    assert shot.read_bytes().startswith(b"\x89PNG")
    assert int.from_bytes(shot.read_bytes()[20:24], "big") > 100  # taller than the viewport: the full page
