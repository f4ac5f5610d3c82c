"""The digest's inline SVG charts: well-formed, self-contained, values escaped, geometry that follows the data."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from kauto.pages.charts import (
    PREVIOUS_COLOR,
    Series,
    bar_chart,
    format_number,
    line_chart,
    nice_ticks,
    ranking_chart,
)

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOSTILE = '<script>alert("x")</script> & "quotes" \'single\''


def figure(chart: str) -> ET.Element:
    return ET.fromstring(chart)  # noqa: S314 - our own output


def parse(chart: str) -> ET.Element:
    """The chart's SVG element (inside its figure)."""
    svg = figure(chart).find("svg")
    assert svg is not None
    return svg


def test_line_chart_is_well_formed_svg_with_a_title_and_no_external_reference() -> None:
    svg = line_chart("Plays per day", DAYS, [Series("This week", (1, 2, 3, 4, 5, 6, 7))])

    root = parse(svg)

    assert figure(svg).tag == "figure"
    assert figure(svg).findtext("figcaption") == "Plays per day"  # shown as text, not only to screen readers
    assert root.tag == "svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Plays per day"
    assert root.find("title") is not None and root.find("title").text == "Plays per day"  # type: ignore[union-attr]
    assert "http" not in svg
    assert "href" not in svg


def test_line_chart_points_rise_with_the_values() -> None:
    svg = line_chart("Plays", DAYS, [Series("This week", (0, 10, 20, 30, 40, 50, 60))])

    circles = parse(svg).findall("circle")
    ys = [float(circle.get("cy", "0")) for circle in circles]

    assert len(circles) == 7
    assert ys == sorted(ys, reverse=True)  # SVG y grows downwards: larger values sit higher
    assert [circle.find("title").text for circle in circles][3] == "This week, Thu: 30"  # type: ignore[union-attr]


def test_line_chart_leaves_a_gap_for_missing_days() -> None:
    svg = line_chart("Plays", DAYS, [Series("This week", (1, 2, None, 4, 5, None, 7))])

    root = parse(svg)

    assert len(root.findall("circle")) == 5
    # Runs [Mon, Tue] and [Thu, Fri]; the lone Sun point is a dot without a line.
    assert len(root.findall("polyline")) == 2


def test_previous_week_is_drawn_dashed_in_its_own_color() -> None:
    svg = line_chart(
        "Plays",
        DAYS,
        [
            Series("This week", (1, 2, 3, 4, 5, 6, 7)),
            Series("Previous week", (7, 6, 5, 4, 3, 2, 1), color=PREVIOUS_COLOR, dashed=True),
        ],
    )

    dashed = [line for line in parse(svg).findall("polyline") if line.get("stroke-dasharray")]

    assert len(dashed) == 1
    assert dashed[0].get("stroke") == PREVIOUS_COLOR


def test_bar_chart_draws_one_bar_per_value_and_series_with_heights_in_proportion() -> None:
    svg = bar_chart(
        "Room sessions per day",
        DAYS,
        [Series("This week", (1, 2, 3, 4, 0, 0, 8)), Series("Previous week", (2, 2, 2, 2, 2, 2, 2), dashed=True)],
        integer=True,
    )

    bars = parse(svg).findall("rect")
    this_week = [float(bar.get("height", "0")) for bar in bars[:7]]

    assert len(bars) == 14
    assert this_week[6] == pytest.approx(2 * this_week[3])
    assert this_week[4] == 0


def test_labels_and_names_are_escaped_everywhere() -> None:
    svg = "".join(
        (
            line_chart(HOSTILE, (HOSTILE, "b"), [Series(HOSTILE, (1, 2))]),
            bar_chart(HOSTILE, (HOSTILE, "b"), [Series(HOSTILE, (1, 2))]),
            ranking_chart(HOSTILE, [(HOSTILE, 3.0)]),
        )
    )

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    for chart in re.findall(r"<figure.*?</figure>", svg):
        parse(chart)  # still well-formed: no attribute broken by a quote


def test_ranking_chart_cuts_long_labels_but_keeps_the_full_name_in_the_tooltip() -> None:
    name = "A very long entry name that goes on and on well past forty characters"

    root = parse(ranking_chart("Top entries", [(name, 120.0), ("Short", 60.0)]))

    label = root.findall("text")[0]  # the title is the figure's caption, not SVG text
    widths = [float(bar.get("width", "0")) for bar in root.findall("rect")]

    assert label.text is not None and label.text.endswith("\u2026") and len(label.text) <= 36
    assert label.find("title").text == name  # type: ignore[union-attr]
    assert widths[0] == pytest.approx(2 * widths[1])


def test_series_must_match_the_labels() -> None:
    with pytest.raises(ValueError, match="3 values for 7 labels"):
        line_chart("Plays", DAYS, [Series("This week", (1, 2, 3))])


@pytest.mark.parametrize(
    ("maximum", "integer", "expected"),
    [
        (0, False, [0, 1]),
        (3, True, [0, 1, 2, 3]),
        (7, False, [0, 2, 4, 6, 8]),
        (95, False, [0, 25, 50, 75, 100]),
        (1234, False, [0, 500, 1000, 1500]),
        (0.42, False, [0, 0.2, 0.4, 0.6]),
    ],
)
def test_nice_ticks_cover_the_maximum_with_round_steps(maximum: float, integer: bool, expected: list[float]) -> None:
    assert nice_ticks(maximum, integer=integer) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "compact", "text"),
    [(1234, False, "1,234"), (12.345, False, "12.3"), (0.25, False, "0.25"), (1500, True, "1.5k"), (2e6, True, "2M")],
)
def test_format_number(value: float, compact: bool, text: str) -> None:
    assert format_number(value, compact=compact) == text


@pytest.mark.parametrize(
    ("values", "message"),
    [((None,) * 7, "No data this week"), ((0,) * 7, "0 on every day"), ((0, None, 0, 0, None, 0, 0), "0 on every day")],
)
@pytest.mark.parametrize("draw", [line_chart, bar_chart])
def test_a_chart_with_nothing_to_draw_says_so_instead_of_an_empty_axis(draw, values, message) -> None:  # type: ignore[no-untyped-def]
    chart = draw("Caption orders per day (orders)", DAYS, [Series("This week", values)])

    root = figure(chart)

    assert root.findtext("figcaption") == "Caption orders per day (orders)"
    assert root.find("svg") is None
    assert root.findtext("p") == message


def test_an_empty_ranking_says_no_data() -> None:
    root = figure(ranking_chart("Plays by device (plays)", []))

    assert (root.findtext("figcaption"), root.findtext("p"), root.find("svg")) == (
        "Plays by device (plays)",
        "No data this week",
        None,
    )
