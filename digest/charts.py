"""Plots drawn as inline SVG on the server: line charts and sparklines, no script, no CDN.

Each plot is an accessible image (role="img" with a text alternative) whose lines take their
colours from the page's CSS (classes `line0`…`line7`), so a dark scheme can recolour them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

MARKED = 40  # a line of at most this many points marks each point
# The colours of the lines when the page's CSS does not set them (an export, a mail client).
COLOURS = ("#0b57d0", "#b31b1b", "#1a7f37", "#9a6700", "#8250df", "#57606a", "#bf3989", "#0a7285")


@dataclass(frozen=True)
class Series:
    """One line of a chart: its name and one value per point."""

    name: str
    values: Sequence[float]
    colour: int | None = None  # the index of its colour (line0…line7); None: its place


def nice_ceiling(value: float) -> float:
    """Return the smallest of 1, 2, 2.5, 5 times a power of ten that is at least value (>0)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-9:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    """Return an axis label: whole numbers as such, others with one decimal."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _points(values: Sequence[float], left: float, top: float, width: float, height: float,
            ceiling: float) -> str:  # fmt: skip
    step = width / (len(values) - 1) if len(values) > 1 else 0.0
    start = left if len(values) > 1 else left + width / 2
    return " ".join(
        f"{start + i * step:.1f},{top + height - height * min(v, ceiling) / ceiling:.1f}"
        for i, v in enumerate(values)
    )


def line_chart(
    series: Sequence[Series],
    first: str,
    last: str,
    label: str,
    *,
    width: int = 360,
    height: int = 180,
    unit: str = "",
) -> Markup:
    """Return a chart of the series (all of one length) as inline SVG: a polyline each, the
    scale at the left, the first and last point's labels below; `label` says what it shows."""
    longest = max((len(s.values) for s in series), default=0)
    if any(len(s.values) != longest for s in series):
        raise ValueError("every series of a chart has one value per point")
    ceiling = nice_ceiling(max((v for s in series for v in s.values), default=0.0))
    left, top, right, bottom = 48.0, 9.0, 9.0, 24.0
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        f'<g class="grid" stroke="#d8dee4" stroke-width="1">'
        f'<line x1="{left}" y1="{top}" x2="{width - right}" y2="{top}"/>'
        f'<line x1="{left}" y1="{top + plot_h / 2}" x2="{width - right}" y2="{top + plot_h / 2}"/>'
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}"/></g>',
        f'<g class="axis" fill="#57606a" font-size="13" font-family="sans-serif">'
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{_number(ceiling)}{unit}</text>'
        f'<text x="{left - 4}" y="{top + plot_h + 4}" text-anchor="end">0</text>'
        f'<text x="{left}" y="{height - 6}">{escape(first)}</text>'
        f'<text x="{width - right}" y="{height - 6}" text-anchor="end">{escape(last)}</text></g>',
    ]
    for number, line in enumerate(series):
        if not line.values:
            continue
        colour = (number if line.colour is None else line.colour) % len(COLOURS)
        points = _points(line.values, left, top, plot_w, plot_h, ceiling)
        parts.append(
            f'<polyline class="line{colour}" data-series="{escape(line.name)}" '
            f'fill="none" stroke="{COLOURS[colour]}" stroke-width="2" stroke-linejoin="round" '
            f'points="{points}"/>'
        )
        if len(line.values) <= MARKED:  # few points: each shown, a lone one too
            parts.append(
                f'<g class="fill{colour}" fill="{COLOURS[colour]}">'
                + "".join(
                    f'<circle cx="{x}" cy="{y}" r="3"/>'
                    for x, y in (pair.split(",") for pair in points.split())
                )
                + "</g>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(values: Sequence[float], label: str, *, width: int = 96, height: int = 20) -> Markup:
    """Return a small line of values (one point each) as inline SVG, described by `label`."""
    ceiling = max(max(values, default=0.0), 1.0)
    points = _points(values, 1.0, 2.0, width - 2.0, height - 4.0, ceiling) if values else ""
    return Markup(
        f'<svg class="spark" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        f'<polyline fill="none" stroke="{COLOURS[2]}" stroke-width="1.5" '
        f'stroke-linejoin="round" points="{points}"/></svg>'
    )


BLOCKS = "▁▂▃▄▅▆▇█"


def text_sparkline(values: Sequence[float]) -> str:
    """Return values as block characters for a terminal: one character per value."""
    ceiling = max(values, default=0)
    if ceiling <= 0:
        return BLOCKS[0] * len(values)
    return "".join(BLOCKS[min(7, math.ceil(7 * v / ceiling))] for v in values)
