"""Server-rendered SVG charts: no script, no external library, readable without colour.

Every bar carries its value as text, series differ by pattern as well as by colour, and each chart
has a title and a description for screen readers; the page also offers the figures as a table.
Styling comes from console.css (the content security policy forbids inline styles).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

ROW = 26
LABEL_WIDTH = 110
BAR_WIDTH = 300
VALUE_WIDTH = 170
_ids = count(1)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the value as people read it: "82 %", "3 h 10 min", "4.2 of 5"
    mark: str = ""  # optional extra word shown after the value ("limit reached")


def _frame(title: str, description: str, height: int, body: str, width: int) -> SafeString:
    uid = next(_ids)
    return mark_safe(  # noqa: S308  (every text below is escaped)
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" aria-labelledby="chart-t{uid} chart-d{uid}">'
        f'<title id="chart-t{uid}">{escape(title)}</title><desc id="chart-d{uid}">{escape(description)}</desc>'
        f'<defs><pattern id="hatch{uid}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>'
        f"{body.replace('HATCH', f'hatch{uid}')}</svg>"
    )


def bar_chart(title: str, bars: list[Bar], *, maximum: float | None = None, thresholds=(),
              description: str = "") -> SafeString:
    """Horizontal bars, one per row, each with its label on the left and its value on the right.

    `thresholds` draws dashed reference lines (e.g. 75, 90 and 100 % of a cap), labelled in text.
    """
    top = max([b.value for b in bars] + [maximum or 0, *thresholds, 1])
    scale = BAR_WIDTH / top
    height = ROW * max(len(bars), 1) + 24
    parts = []
    for index, bar in enumerate(bars):
        y = 8 + index * ROW
        width = max(bar.value * scale, 0)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" class="chart-label" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{width:.1f}" height="16" class="bar bar-{index % 2}"/>'
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 15}" class="chart-value">'
            f"{escape(bar.text)}{(' · ' + escape(bar.mark)) if bar.mark else ''}</text>"
        )
    for value in thresholds:
        x = LABEL_WIDTH + value * scale
        parts.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 14}" class="threshold"/>'
                     f'<text x="{x:.1f}" y="{height - 2}" class="chart-axis" text-anchor="middle">{value:g}</text>')
    if not bars:
        parts.append(f'<text x="{LABEL_WIDTH}" y="20" class="chart-value">No data in this period.</text>')
    return _frame(title, description or title, height, "".join(parts), LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH)


def stacked_chart(title: str, rows: list[tuple[str, list[float]]], series: list[str], *,
                  description: str = "") -> SafeString:
    """Stacked horizontal bars: two or three series per row, told apart by pattern and by a legend."""
    top = max([sum(values) for _, values in rows] + [1])
    scale = BAR_WIDTH / top
    height = ROW * max(len(rows), 1) + 40
    parts = []
    for index, (label, values) in enumerate(rows):
        y = 8 + index * ROW
        x = LABEL_WIDTH
        parts.append(f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" class="chart-label" text-anchor="end">'
                     f"{escape(label)}</text>")
        for position, value in enumerate(values):
            width = value * scale
            fill = ' fill="url(#HATCH)"' if position == 1 else ""
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="16" '
                         f'class="bar series-{position}"{fill}/>')
            x += width
        text = " + ".join(f"{value:g}" for value in values)
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}" class="chart-value">{escape(text)}</text>')
    legend_y = height - 12
    x = LABEL_WIDTH
    for position, name in enumerate(series):
        fill = ' fill="url(#HATCH)"' if position == 1 else ""
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="14" height="12" class="bar series-{position}"{fill}/>'
                     f'<text x="{x + 18}" y="{legend_y}" class="chart-axis">{escape(name)}</text>')
        x += 30 + 7 * len(name)
    if not rows:
        parts.append(f'<text x="{LABEL_WIDTH}" y="20" class="chart-value">No data in this period.</text>')
    return _frame(title, description or title, height, "".join(parts), LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH)


def duration_text(value) -> str:
    """'2 d 4 h', '3 h 10 min', '12 min' — or an em dash."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def grouped_bar_chart(title: str, groups: list[tuple[str, list[Bar]]], *, maximum: float | None = None,
                      description: str = "") -> SafeString:
    """Horizontal bars in labelled groups: each group's name on a line of its own, then its bars.

    For a figure split two ways (per moment that matters, then per resolution path). Groups without
    bars are left out; every bar carries its value as text.
    """
    groups = [(name, bars) for name, bars in groups if bars]
    values = [bar.value for _, bars in groups for bar in bars]
    top = max([*values, maximum or 0, 1])
    scale = BAR_WIDTH / top
    lines = sum(len(bars) + 1 for _, bars in groups)
    height = ROW * max(lines, 1) + 24
    parts = []
    line = 0
    for name, bars in groups:
        y = 8 + line * ROW
        parts.append(f'<text x="4" y="{y + 15}" class="chart-label chart-group">{escape(name)}</text>')
        line += 1
        for index, bar in enumerate(bars):
            y = 8 + line * ROW
            width = max(bar.value * scale, 0)
            parts.append(
                f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" class="chart-label" text-anchor="end">'
                f"{escape(bar.label)}</text>"
                f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{width:.1f}" height="16" class="bar bar-{index % 2}"/>'
                f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 15}" class="chart-value">'
                f"{escape(bar.text)}{(' · ' + escape(bar.mark)) if bar.mark else ''}</text>"
            )
            line += 1
    if not groups:
        parts.append(f'<text x="{LABEL_WIDTH}" y="20" class="chart-value">No data in this period.</text>')
    return _frame(title, description or title, height, "".join(parts), LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH)
