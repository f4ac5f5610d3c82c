"""The digest as one self-contained HTML page: inline CSS and SVG, no script, no link, nothing fetched.

Every value that reaches the page goes through :func:`html.escape` (entry names are user content); numbers are
formatted here. The page reads the same offline, attached to an e-mail or opened straight from the bucket.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from kauto.pages.charts import PREVIOUS_COLOR, Series, bar_chart, format_number, line_chart, ranking_chart
from kauto.pages.html import STYLE
from kauto.weekly.wow import Metric, WowFinding, change_percent

if TYPE_CHECKING:
    from kauto.weekly.digest import WeekDigest


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def render_page(
    digest: WeekDigest,
    previous: WeekDigest | None,
    findings: Sequence[WowFinding],
    *,
    generated_at: datetime,
    previous_week: str,
) -> str:
    """The whole page for ``digest`` compared with ``previous`` (``None``: no previous week to compare)."""
    title = f"Weekly digest - partner {digest.partner_id} - {digest.week}"
    first, last = digest.days[0], digest.days[-1]
    compared = f"compared with {previous_week}" if previous is not None else f"no data for {previous_week}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>Weekly digest {_e(digest.week)}</h1>",
        f'<p class="meta">Partner {_e(str(digest.partner_id))} &middot; '
        f"{_e(first.strftime('%a %d %b %Y'))} to {_e(last.strftime('%a %d %b %Y'))} "
        f"({_e(digest.time_zone)}) &middot; {_e(compared)}</p>",
    ]
    if findings:
        parts.append(_findings(findings))
    parts.append(_totals(digest, previous))
    parts.append(_trends(digest, previous))
    parts.append(_top_entries(digest))
    parts.append(_sources(digest))
    parts.append(
        f"<footer>Generated {_e(generated_at.strftime('%Y-%m-%d %H:%M UTC'))}. Totals are the sums of this run's CSV "
        "files listed above and of the ledger's caption orders and REACH task errors of the week; plays and "
        "minutes per day come from Kaltura's daily graph of the content report.</footer>"
    )
    parts.append("</main></body></html>")
    return "".join(parts)


def _findings(findings: Sequence[WowFinding]) -> str:
    items = "".join(
        f"<li><strong>{_e(f.rule.metric.label)}</strong>: {_e(_value(f.previous))} &rarr; {_e(_value(f.current))} "
        f"({_e(_signed(f.change_percent))}); rule: {_e(f.rule.description)}</li>"
        for f in findings
    )
    return f'<section class="alerts"><h2>Week-over-week alerts</h2><ul>{items}</ul></section>'


def _totals(digest: WeekDigest, previous: WeekDigest | None) -> str:
    rows = []
    for metric in Metric:
        value = digest.totals.get(metric)
        before = previous.totals.get(metric) if previous is not None else None
        change = change_percent(value, before) if value is not None and before is not None else None
        css = "flat" if change is None or change == 0 else ("up" if change > 0 else "down")
        rows.append(
            f'<tr><td>{_e(metric.label)}</td><td class="num">{_e(_value(value))}</td>'
            f'<td class="num">{_e(_value(before))}</td>'
            f'<td class="num {css}">{_e(_signed(change) if change is not None else "n/a")}</td></tr>'
        )
    return (
        "<section><h2>Key totals</h2><table><thead><tr><th>Metric</th>"
        f'<th class="num">{_e(digest.week)}</th><th class="num">Previous week</th><th class="num">Change</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _trends(digest: WeekDigest, previous: WeekDigest | None) -> str:
    labels = [f"{_DAY_NAMES[i]} {day.day}" for i, day in enumerate(digest.days)]
    charts = []
    for name, title, kind, integer, unit in (
        ("plays", "Plays per day", "line", True, ""),
        ("minutes_viewed", "Minutes viewed per day", "line", False, ""),
        ("room_sessions", "Room sessions per day", "bar", True, ""),
        ("attendees", "Room attendees per day", "bar", True, ""),
        ("avg_engagement", "Average room engagement per day", "line", False, "%"),
        ("caption_orders", "Caption orders per day", "bar", True, ""),
    ):
        values = digest.daily.get(name)
        if values is None:
            continue
        series = [Series("This week", values)]
        before = previous.daily.get(name) if previous is not None else None
        if before is not None and len(before) == len(values):
            series.append(Series("Previous week", before, color=PREVIOUS_COLOR, dashed=True))
        draw = line_chart if kind == "line" else bar_chart
        charts.append(draw(title, labels, series, integer=integer, unit=unit))
    if not charts:
        return "<section><h2>Daily trend</h2><p>No daily data in this run.</p></section>"
    return f"<section><h2>Daily trend</h2>{''.join(charts)}</section>"


def _top_entries(digest: WeekDigest) -> str:
    entries = digest.top_entries
    if not entries:
        return "<section><h2>Top entries</h2><p>No plays recorded this week.</p></section>"
    chart = ranking_chart("Top entries by plays", [(entry.name, entry.plays) for entry in entries])
    rows = "".join(
        f'<tr><td class="num">{rank}</td><td>{_e(entry.name)}<br><code>{_e(entry.entry_id)}</code></td>'
        f'<td class="num">{_e(_value(entry.plays))}</td><td class="num">{_e(_value(entry.minutes_viewed))}</td></tr>'
        for rank, entry in enumerate(entries, start=1)
    )
    return (
        f'<section><h2>Top entries</h2>{chart}<table><thead><tr><th class="num">#</th><th>Entry</th>'
        f'<th class="num">Plays</th><th class="num">Minutes viewed</th></tr></thead><tbody>{rows}</tbody>'
        "</table></section>"
    )


def _sources(digest: WeekDigest) -> str:
    if not digest.sources:
        return ""
    rows = "".join(
        f"<tr><td>{_e(source.report)}</td><td>{_e(_ROLE_NAMES.get(source.role, ''))}</td>"
        f'<td class="num">{_e(_value(source.rows))}</td><td><code>{_e(source.key)}</code></td></tr>'
        for source in digest.sources
    )
    return (
        "<section><h2>Report files of this run</h2><table><thead><tr><th>Report</th><th>Used for</th>"
        f'<th class="num">Rows</th><th>S3 key</th></tr></thead><tbody>{rows}</tbody></table></section>'
    )


_ROLE_NAMES: Mapping[str, str] = {
    "content": "plays, minutes, top entries",
    "users": "unique viewers",
    "room_data": "room sessions, engagement",
    "attendees": "attendees per day",
}


def _value(value: float | None) -> str:
    return "n/a" if value is None else format_number(value)


def _signed(change: float) -> str:
    return f"{change:+.1f}%"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
