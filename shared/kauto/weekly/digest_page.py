"""The digest as one self-contained HTML page: inline CSS and SVG, no script, no stylesheet or image, nothing fetched.

Sections: week-over-week alerts, key totals, the week's alerts (by kind, the worst first), the daily trend, top
entries, drop-off, platforms and devices, geography, top creators, and the run's report files, each linked to its
object in the S3 console (a link a person follows; the page itself loads nothing) and described.

Every value that reaches the page goes through :func:`html.escape` (entry, creator and country names are report
content); numbers are formatted here. The page reads the same offline, attached to an e-mail or opened straight from
the bucket, and fits a phone's width (tables scroll inside their section, charts scale).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from kauto.pages.charts import PREVIOUS_COLOR, Series, bar_chart, format_number, line_chart, ranking_chart
from kauto.pages.html import STYLE
from kauto.weekly.wow import Metric, WowFinding, change_percent

if TYPE_CHECKING:
    from kauto.weekly.digest import AlertRecord, WeekDigest

S3_CONSOLE_OBJECT = "https://s3.console.aws.amazon.com/s3/object/{bucket}?region={region}&prefix={key}"
WORST_ALERTS = 5


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def render_page(
    digest: WeekDigest,
    previous: WeekDigest | None,
    findings: Sequence[WowFinding],
    *,
    generated_at: datetime,
    previous_week: str,
    bucket: str,
    region: str,
) -> str:
    """The whole page for ``digest`` compared with ``previous`` (``None``: no previous week to compare); report
    files link to their object in ``bucket`` (``region``) in the S3 console."""
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
    parts.append(_alerts(digest))
    parts.append(_trends(digest, previous))
    parts.append(_top_entries(digest))
    parts.append(_dropoff(digest))
    parts.append(_breakdown(digest, "platforms", "Platforms and devices", "Device", "Plays by device (plays)"))
    parts.append(_breakdown(digest, "geography", "Geography", "Country", "Plays by country, top 10 (plays)"))
    parts.append(_breakdown(digest, "creators", "Top creators", "Creator", "Plays by creator, top 10 (plays)"))
    parts.append(_sources(digest, bucket, region))
    parts.append(
        f"<footer>Generated {_e(generated_at.strftime('%Y-%m-%d %H:%M UTC'))}. Totals are the sums of this run's CSV "
        "files listed above and of the ledger's caption orders and REACH task errors of the week; alerts are the "
        "ones sent in the week; plays and minutes per day come from Kaltura's daily graph of the content "
        "report.</footer>"
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
        '<section><h2>Key totals</h2><div class="scroll"><table><thead><tr><th>Metric</th>'
        f'<th class="num">{_e(digest.week)}</th><th class="num">Previous week</th><th class="num">Change</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _alerts(digest: WeekDigest) -> str:
    alerts = digest.alerts
    if not alerts:
        return "<section><h2>Alerts this week</h2><p>No alerts were sent this week.</p></section>"
    kinds: dict[str, list[AlertRecord]] = {}
    for alert in alerts:  # worst first already: each kind's first alert is its worst
        kinds.setdefault(alert.rule, []).append(alert)
    kind_rows = "".join(
        f"<tr><td>{_e(_ALERT_NAMES.get(rule, rule))}<br><code>{_e(rule)}</code></td>"
        f'<td class="num">{len(items)}</td><td>{_severity(items[0].severity)}</td></tr>'
        for rule, items in sorted(kinds.items(), key=lambda kind: (-len(kind[1]), kind[0]))
    )
    worst = "".join(
        f"<li>{_severity(alert.severity)} {_e(_ALERT_NAMES.get(alert.rule, alert.rule))}: "
        f"<code>{_e(alert.subject_key)}</code> &middot; "
        f"{_e(datetime.fromtimestamp(alert.claimed_at, tz=UTC).strftime('%a %d %b %H:%M UTC'))}"
        + ("" if alert.published else " (claimed, not confirmed sent)")
        + "</li>"
        for alert in alerts[:WORST_ALERTS]
    )
    return (
        f"<section><h2>Alerts this week</h2><p>{len(alerts)} alert(s) of {len(kinds)} kind(s).</p>"
        '<div class="scroll"><table><thead><tr><th>Kind</th><th class="num">Alerts</th><th>Worst</th></tr></thead>'
        f"<tbody>{kind_rows}</tbody></table></div><h3>Worst</h3><ul>{worst}</ul></section>"
    )


def _severity(severity: str) -> str:
    return f'<span class="sev-{_e(severity)}">{_e(severity)}</span>'


# The product's alert rules in words (a rule not listed shows as its name).
_ALERT_NAMES: Mapping[str, str] = {
    "reach_task_error": "REACH task failed",
    "reach_task_rejected": "REACH task rejected",
    "reach_task_aborted": "REACH task aborted",
    "reach_task_stuck": "REACH task stuck",
    "reach_credit": "REACH credit problem",
    "reach_order_setup": "REACH order setup problem",
    "automation_failed": "Automation failed",
    "attendee_engagement_low": "Low attendee engagement",
    "session_engagement_low": "Low session engagement",
    "session_unique_users_low": "Few session participants",
    "weekly_change": "Week-over-week change",
    "weekly_report_failed": "Weekly report failed",
}


def _trends(digest: WeekDigest, previous: WeekDigest | None) -> str:
    labels = [f"{_DAY_NAMES[i]} {day.day}" for i, day in enumerate(digest.days)]
    charts = []
    for name, title, kind, integer, unit in (
        ("plays", "Plays per day (plays)", "line", True, ""),
        ("minutes_viewed", "Minutes viewed per day (minutes)", "line", False, ""),
        ("room_sessions", "Room sessions per day (sessions)", "bar", True, ""),
        ("attendees", "Room attendees per day (people)", "bar", True, ""),
        ("avg_engagement", "Average room engagement per day (% of play time)", "line", False, "%"),
        ("caption_orders", "Caption orders per day (orders)", "bar", True, ""),
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
    chart = ranking_chart("Top entries by plays (plays)", [(entry.name, entry.plays) for entry in entries])
    rows = "".join(
        f'<tr><td class="num">{rank}</td><td>{_e(entry.name)}<br><code>{_e(entry.entry_id)}</code></td>'
        f'<td class="num">{_e(_value(entry.plays))}</td><td class="num">{_e(_value(entry.minutes_viewed))}</td></tr>'
        for rank, entry in enumerate(entries, start=1)
    )
    return (
        f'<section><h2>Top entries</h2>{chart}<div class="scroll"><table><thead><tr><th class="num">#</th>'
        f'<th>Entry</th><th class="num">Plays</th><th class="num">Minutes viewed</th></tr></thead><tbody>{rows}'
        "</tbody></table></div></section>"
    )


def _dropoff(digest: WeekDigest) -> str:
    dropoff = digest.dropoff
    title = "<h2>Drop-off</h2>"
    if dropoff is None:
        return f"<section>{title}<p>The drop-off report is not in this run.</p></section>"
    if dropoff.plays <= 0:
        return f"<section>{title}<p>No plays recorded this week.</p></section>"
    points = [
        (f"Reached {point}%", reached * 100 / dropoff.plays)
        for point, reached in zip((25, 50, 75, 100), dropoff.reached, strict=True)
    ]
    chart = ranking_chart("Plays reaching each point of the entry (% of plays)", points, unit="%")
    rows = "".join(
        f"<tr><td>{_e(entry.name)}<br><code>{_e(entry.entry_id)}</code></td>"
        f'<td class="num">{_e(_value(entry.plays))}</td>'
        f'<td class="num">{_e(format_number(round(entry.play_through_percent, 1)))}%</td></tr>'
        for entry in dropoff.weakest
    )
    table = (
        "<h3>Most played entries that lose most viewers</h3>"
        '<div class="scroll"><table><thead><tr><th>Entry</th><th class="num">Plays</th>'
        f'<th class="num">Watched to the end</th></tr></thead><tbody>{rows}</tbody></table></div>'
        if rows
        else ""
    )
    return f"<section>{title}{chart}{table}</section>"


def _breakdown(digest: WeekDigest, name: str, heading: str, column: str, chart_title: str) -> str:
    lines = digest.breakdowns.get(name)
    if lines is None:
        return f"<section><h2>{_e(heading)}</h2><p>This report is not in this run.</p></section>"
    total = sum(line.plays for line in lines)
    chart = ranking_chart(chart_title, [(line.label, line.plays) for line in lines])
    if total <= 0:
        return f"<section><h2>{_e(heading)}</h2>{chart}</section>"
    rows = "".join(
        f'<tr><td class="name">{_e(line.label)}</td><td class="num">{_e(_value(line.plays))}</td>'
        f'<td class="num">{_e(format_number(round(line.plays * 100 / total, 1)))}%</td>'
        f'<td class="num">{_e(_value(line.minutes_viewed))}</td></tr>'
        for line in lines
    )
    return (
        f'<section><h2>{_e(heading)}</h2>{chart}<div class="scroll"><table><thead><tr><th>{_e(column)}</th>'
        '<th class="num">Plays</th><th class="num">Share of shown</th><th class="num">Minutes viewed</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></div></section>"
    )


def _sources(digest: WeekDigest, bucket: str, region: str) -> str:
    if not digest.sources:
        return ""
    # The key under the report name (not a column of its own): the table keeps to a phone's width.
    rows = "".join(
        f'<tr><td class="name"><strong>{_e(source.report)}</strong><br>'
        f'<a href="{_e(console_url(bucket, region, source.key))}"><code>{_e(source.key)}</code></a></td>'
        f'<td>{_e(source.used_for)}</td><td class="num">{_e(_value(source.rows))}</td></tr>'
        for source in digest.sources
    )
    return (
        "<section><h2>Report files of this run</h2><p>Each key opens the object in the S3 console.</p>"
        '<div class="scroll"><table><thead><tr><th>Report and S3 object</th><th>Used for</th>'
        f'<th class="num">Rows</th></tr></thead><tbody>{rows}</tbody></table></div></section>'
    )


def console_url(bucket: str, region: str, key: str) -> str:
    """The S3 console page of object ``key`` in ``bucket``."""
    return S3_CONSOLE_OBJECT.format(bucket=quote(bucket, safe=""), region=quote(region, safe=""), key=quote(key))


def _value(value: float | None) -> str:
    return "n/a" if value is None else format_number(value)


def _signed(change: float) -> str:
    return f"{change:+.1f}%"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
