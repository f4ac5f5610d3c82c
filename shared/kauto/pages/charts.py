"""Inline SVG charts for the pages (weekly digest, session summary): no plotting library, no external asset,
every text escaped.

The charts are HTML fragments: a ``<figure class="chart-figure">`` whose ``<figcaption class="chart-title">`` shows
the title (with the unit, which the caller puts in it) at the page's text size, whatever the SVG is scaled to on a
phone, and an inline SVG (HTML5 puts ``<svg>`` in the SVG namespace by itself, so no ``xmlns`` URL is needed and
nothing is fetched) with a ``<title>`` and an ``aria-label`` for screen readers and a ``<title>`` tooltip with the
exact value on each point or bar. A chart with nothing to draw (every value missing, or every value 0) says so in
words (``<p class="no-data">``) instead of drawing an empty axis.

- :func:`line_chart`: values per day, one line per series (the week and, dashed, the week before).
- :func:`bar_chart`: grouped vertical bars per day, one bar per series.
- :func:`ranking_chart`: horizontal bars for a ranking (top entries); labels are cut to a readable length.

Labels and series names are user content in places (entry names): they go through :func:`html.escape` like every
other text, and numbers are formatted here, never taken as markup. Missing values (``None``) leave a gap.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

CURRENT_COLOR = "#2563eb"
PREVIOUS_COLOR = "#9ca3af"
GRID_COLOR = "#e5e7eb"
AXIS_TEXT_COLOR = "#4b5563"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
DEFAULT_WIDTH = 640
DEFAULT_HEIGHT = 240
MAX_RANKING_LABEL_CHARS = 36  # what fits the 260 px label column at 12 px
_MARGIN_LEFT = 56
_MARGIN_RIGHT = 16
_MARGIN_TOP = 28  # the legend (y 16) above the plot
_MARGIN_BOTTOM = 40
_TICK_TARGET = 4


@dataclass(frozen=True, slots=True)
class Series:
    """One line or bar group member: ``values`` align with the chart's labels (``None``: no data that day).

    ``dashed`` draws a line dashed (the previous week); ``color`` is a CSS color chosen by the caller (not user
    content).
    """

    name: str
    values: tuple[float | None, ...]
    color: str = CURRENT_COLOR
    dashed: bool = False


def nice_ticks(maximum: float, *, integer: bool = False, target: int = _TICK_TARGET) -> list[float]:
    """Axis ticks from 0 to a round value >= ``maximum``: steps of 1, 2, 2.5 or 5 x 10^n, about ``target`` of them.

    With ``integer`` the step is at least 1 (counts never get a 0.5 tick).
    """
    if not math.isfinite(maximum) or maximum <= 0:
        return [0.0, 1.0]
    raw_step = maximum / target
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    count = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def format_number(value: float, *, compact: bool = False) -> str:
    """``1234`` -> ``1,234``; ``12.345`` -> ``12.3``; with ``compact`` large numbers as ``1.2k`` / ``3.4M``."""
    if compact:
        for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= limit:
                return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}".rstrip("0").rstrip(".")


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    integer: bool = False,
    unit: str = "",
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
) -> str:
    """An SVG line chart of ``series`` over ``labels`` (e.g. the seven days of the week)."""

    def marks(frame: _Frame) -> Iterator[str]:
        for member in series:
            dash = ' stroke-dasharray="6 4"' if member.dashed else ""
            for run in _runs(member.values):
                points = " ".join(f"{frame.x_center(i):.1f},{frame.y(_value(member.values[i])):.1f}" for i in run)
                yield f'<polyline fill="none" stroke="{_attr(member.color)}" stroke-width="2"{dash} points="{points}"/>'
            for index, value in enumerate(member.values):
                if value is None:
                    continue
                tip = f"{member.name}, {labels[index]}: {format_number(value)}{unit}"
                yield (
                    f'<circle cx="{frame.x_center(index):.1f}" cy="{frame.y(value):.1f}" r="3" '
                    f'fill="{_attr(member.color)}"><title>{_text(tip)}</title></circle>'
                )

    return _framed_chart(title, labels, series, marks, integer=integer, unit=unit, width=width, height=height)


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    integer: bool = False,
    unit: str = "",
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
) -> str:
    """An SVG chart of grouped vertical bars: per label, one bar per series, side by side."""

    def marks(frame: _Frame) -> Iterator[str]:
        group = frame.slot * 0.7
        bar = group / max(1, len(series))
        for position, member in enumerate(series):
            for index, value in enumerate(member.values):
                if value is None:
                    continue
                x = frame.x_center(index) - group / 2 + position * bar
                top = frame.y(value)
                tip = f"{member.name}, {labels[index]}: {format_number(value)}{unit}"
                opacity = ' fill-opacity="0.6"' if member.dashed else ""
                yield (
                    f'<rect x="{x:.1f}" y="{top:.1f}" width="{max(bar - 1, 1):.1f}" '
                    f'height="{max(frame.baseline - top, 0):.1f}" fill="{_attr(member.color)}"{opacity}>'
                    f"<title>{_text(tip)}</title></rect>"
                )

    return _framed_chart(title, labels, series, marks, integer=integer, unit=unit, width=width, height=height)


def _framed_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    marks: Callable[[_Frame], Iterable[str]],
    *,
    integer: bool,
    unit: str,
    width: int,
    height: int,
) -> str:
    """A chart over a labelled axis frame: "no data" instead of an empty axis, else axes, ``marks``, legend."""
    empty = _nothing_to_draw(series)
    if empty is not None:
        return _empty_chart(title, empty)
    frame = _Frame(labels, series, integer=integer, width=width, height=height)
    return "".join([_open(title, width, height), *frame.axes(unit), *marks(frame), _legend(series, width), _CLOSE])


def ranking_chart(
    title: str,
    items: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    width: int = DEFAULT_WIDTH,
    bar_height: int = 22,
    color: str = CURRENT_COLOR,
) -> str:
    """Horizontal bars for a ranking such as the top entries by plays; ``items`` in display order."""
    label_width = 260
    top_margin = 4
    height = top_margin + bar_height * max(1, len(items)) + 8
    maximum = max((value for _, value in items), default=0.0)
    scale = (width - label_width - 80) / maximum if maximum > 0 else 0.0
    if not any(value > 0 for _, value in items):
        return _empty_chart(title, "No data this week" if not items else "0 for every item")
    parts = [_open(title, width, height)]
    for index, (label, value) in enumerate(items):
        y = top_margin + index * bar_height
        shown = _cut(label, MAX_RANKING_LABEL_CHARS)
        length = max(value * scale, 0.0)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + bar_height * 0.65:.1f}" font-size="12" text-anchor="end" '
            f'fill="#111827" style="{FONT}">{_text(shown)}<title>{_text(label)}</title></text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{bar_height - 6}" '
            f'fill="{_attr(color)}"><title>{_text(f"{label}: {format_number(value)}{unit}")}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + bar_height * 0.65:.1f}" font-size="12" '
            f'fill="{AXIS_TEXT_COLOR}" style="{FONT}">{_text(format_number(value) + unit)}</text>'
        )
    parts.append(_CLOSE)
    return "".join(parts)


class _Frame:
    """Plot area geometry shared by the line and bar charts."""

    def __init__(
        self, labels: Sequence[str], series: Sequence[Series], *, integer: bool, width: int, height: int
    ) -> None:
        for member in series:
            if len(member.values) != len(labels):
                raise ValueError(f"series {member.name!r} has {len(member.values)} values for {len(labels)} labels")
        self.labels = labels
        self.left = _MARGIN_LEFT
        self.right = width - _MARGIN_RIGHT
        self.top = _MARGIN_TOP
        self.baseline = height - _MARGIN_BOTTOM
        values = [v for member in series for v in member.values if v is not None and math.isfinite(v)]
        self.ticks = nice_ticks(max(values, default=0.0), integer=integer)
        self.slot = (self.right - self.left) / max(1, len(labels))

    def x_center(self, index: int) -> float:
        return self.left + self.slot * (index + 0.5)

    def y(self, value: float) -> float:
        top_value = self.ticks[-1]
        clamped = min(max(value, 0.0), top_value)
        return self.baseline - (self.baseline - self.top) * clamped / top_value

    def axes(self, unit: str) -> list[str]:
        parts = []
        for tick in self.ticks:
            y = self.y(tick)
            parts.append(
                f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" stroke="{GRID_COLOR}"/>'
                f'<text x="{self.left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                f'fill="{AXIS_TEXT_COLOR}" style="{FONT}">{_text(format_number(tick, compact=True) + unit)}</text>'
            )
        for index, label in enumerate(self.labels):
            parts.append(
                f'<text x="{self.x_center(index):.1f}" y="{self.baseline + 16}" font-size="11" text-anchor="middle" '
                f'fill="{AXIS_TEXT_COLOR}" style="{FONT}">{_text(label)}</text>'
            )
        return parts


_CLOSE = "</svg></figure>"


def _caption(title: str) -> str:
    return f'<figure class="chart-figure"><figcaption class="chart-title">{_text(title)}</figcaption>'


def _open(title: str, width: int, height: int) -> str:
    return (
        f'{_caption(title)}<svg class="chart" role="img" aria-label="{_attr(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{_text(title)}</title>'
    )


def _nothing_to_draw(series: Sequence[Series]) -> str | None:
    """Why a chart of ``series`` would be an empty axis (``None``: there is something to draw)."""
    values = [v for member in series for v in member.values if v is not None and math.isfinite(v)]
    if not values:
        return "No data this week"
    if not any(value > 0 for value in values):
        return "0 on every day"
    return None


def _empty_chart(title: str, message: str) -> str:
    """The title and, in words, why there is nothing to draw."""
    return f'{_caption(title)}<p class="no-data">{_text(message)}</p></figure>'


def _legend(series: Sequence[Series], width: int) -> str:
    parts = []
    x = float(_MARGIN_LEFT)
    for member in series:
        dash = ' stroke-dasharray="6 4"' if member.dashed else ""
        parts.append(
            f'<line x1="{x:.1f}" y1="12" x2="{x + 18:.1f}" y2="12" stroke="{_attr(member.color)}" '
            f'stroke-width="3"{dash}/><text x="{x + 24:.1f}" y="16" font-size="12" fill="#111827" '
            f'style="{FONT}">{_text(member.name)}</text>'
        )
        x += 36 + 7 * len(member.name)
        if x > width - 40:
            break
    return "".join(parts)


def _runs(values: Sequence[float | None]) -> list[list[int]]:
    """Indexes of consecutive non-missing values (a line is drawn through each run)."""
    runs: list[list[int]] = []
    current: list[int] = []
    for index, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(index)
    if current:
        runs.append(current)
    return [run for run in runs if len(run) > 1]


def _value(value: float | None) -> float:
    return 0.0 if value is None else value


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _text(value: str) -> str:
    return html.escape(value, quote=False)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)
