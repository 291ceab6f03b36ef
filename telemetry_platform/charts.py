"""Small inline-SVG charts and human number formats for the admin pages (no JavaScript, no CDN).

Pure functions returning safe markup: every label is escaped here, so templates may output
the result as is. Inline SVG passes the Content-Security-Policy (no script, no external
image) and prints as it renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from django.utils.safestring import SafeString, mark_safe

_UNITS = ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k"))


def human_count(value: int | float) -> str:
    """1,204 below ten thousand; 12.3k, 4.5M, 1.2G above (a count, never scientific notation)."""
    number = float(value)
    if abs(number) < 10_000:
        return f"{round(number):,}"
    for size, unit in _UNITS:
        if abs(number) >= size:
            scaled = number / size
            text = f"{scaled:.1f}" if abs(scaled) < 100 else f"{scaled:.0f}"
            return f"{text.removesuffix('.0')}{unit}"
    return f"{round(number):,}"  # pragma: no cover - the loop always returns


def sparkline_svg(
    values: Sequence[int], *, width: int = 120, height: int = 24, label: str = ""
) -> SafeString:
    """A polyline of ``values`` (oldest first) scaled to the row's own maximum."""
    if not values:
        return SafeString("")
    peak = max(max(values), 1)
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{index * step:.1f},{height - 2 - (value / peak) * (height - 4):.1f}"
        for index, value in enumerate(values)
    )
    title = escape(label or f"peak {human_count(peak)} per bucket")
    return mark_safe(  # noqa: S308 - every label is escaped above
        f'<svg class="sparkline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<polyline fill="none" stroke="#ba2121" stroke-width="1.5" points="{points}"/></svg>'
    )


@dataclass(frozen=True)
class Segment:
    """One coloured part of a stacked bar."""

    name: str
    value: int
    colour: str


def stacked_bars_svg(
    rows: Sequence[tuple[str, Sequence[Segment]]], *, width: int = 1280, bar: int = 18
) -> SafeString:
    """Horizontal stacked bars, one per labelled row, all on one scale, the total at the end."""
    if not rows:
        return SafeString("")
    label_width, total_width = 380, 70
    plot = width - label_width - total_width
    peak = max(max(sum(s.value for s in segments) for _, segments in rows), 1)
    gap = 6
    height = len(rows) * (bar + gap) + gap
    parts = [
        f'<svg class="stacked-bars" width="100%" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="ingest per source and schema">'
    ]
    for index, (label, segments) in enumerate(rows):
        y = gap + index * (bar + gap)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + bar - 5}" text-anchor="end" '
            f'font-size="12">{escape(_clip(label, 56))}</text>'
        )
        x = float(label_width)
        for segment in segments:
            if segment.value <= 0:
                continue
            length = max(segment.value / peak * plot, 1.0)
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{length:.1f}" height="{bar}" '
                f'fill="{segment.colour}"><title>{escape(segment.name)}: '
                f"{segment.value:,}</title></rect>"
            )
            x += length
        total = sum(s.value for s in segments)
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + bar - 5}" font-size="12">{human_count(total)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every label is escaped above


def series_bars_svg(
    values: Sequence[int],
    starts: Sequence[datetime],
    *,
    unit: str,
    width: int = 900,
    height: int = 160,
) -> SafeString:
    """Vertical bars per bucket with a labelled y axis (0 and peak, human units) and dated
    x labels (about six, so they never collide)."""
    if not values:
        return SafeString("")
    left, bottom, top = 56, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max(max(values), 1)
    step = plot_w / len(values)
    fmt = "%d %b %H:00" if unit == "hour" else "%a %d %b"
    every = max(len(values) // 6, 1)
    parts = [
        f'<svg class="series-bars" width="100%" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="rejections per {escape(unit)}">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
        'stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="11">'
        f"{human_count(peak)}</text>",
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for index, (value, start) in enumerate(zip(values, starts, strict=True)):
        h = value / peak * plot_h
        x = left + index * step
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="#ba2121"><title>{start.strftime(fmt)} UTC: '
            f"{value:,}</title></rect>"
        )
        if index % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                f'font-size="11">{escape(start.strftime(fmt))}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every label is escaped above


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
