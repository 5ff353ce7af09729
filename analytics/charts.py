"""Small inline SVG charts for the monthly report (no JavaScript: they print to PDF as they are)."""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5")
FONT = 'font-family="Noto Sans CJK SC, WenQuanYi Zen Hei, Microsoft YaHei, sans-serif" font-size="11"'


def _nice_max(value: float) -> float:
    """A round axis maximum at or above value."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= value:
            return m * step
    return 10.0 * step


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        out.append(f'<rect x="{x + i * 110}" y="{y - 9}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
                   f'<text x="{x + i * 110 + 14}" y="{y}">{escape(name)}</text>')
    return out


def stacked_bars(labels: Sequence[str], series: dict[str, Sequence[float]], title: str,
                 width: int = 900, height: int = 260) -> str:
    """Bars per label, one stacked segment per series (e.g. daily sessions by channel)."""
    left, right, top, bottom = 48, 10, 34, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(vals[i] for vals in series.values()) for i in range(len(labels))]
    peak = _nice_max(max(totals, default=0))
    slot = plot_w / max(1, len(labels))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" {FONT}><text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    parts += _legend(list(series), width - 110 * len(series), 16)
    for k in range(5):
        v = peak * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    for i, label in enumerate(labels):
        base = top + plot_h
        for j, vals in enumerate(series.values()):
            h = plot_h * vals[i] / peak
            base -= h
            parts.append(f'<rect x="{left + i * slot + slot * 0.15:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" '
                         f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}"/>')
        if len(labels) <= 12 or i % max(1, len(labels) // 10) == 0:
            parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - bottom + 14}" text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def rate_lines(labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str,
               width: int = 900, height: int = 260) -> str:
    """Lines of rates (0..1) over the labels, drawn as percentages; a None breaks the line."""
    left, right, top, bottom = 48, 10, 34, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(1, len(labels))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" {FONT}><text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    parts += _legend(list(series), width - 110 * len(series), 16)
    for k in range(6):
        y = top + plot_h - plot_h * k / 5
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{k * 20}%</text>')
    for i, label in enumerate(labels):
        parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - bottom + 14}" text-anchor="middle">{escape(label)}</text>')
    for j, vals in enumerate(series.values()):
        color = PALETTE[j % len(PALETTE)]
        points: list[str] = []
        for i, v in enumerate([*vals, None]):
            if v is None:
                if len(points) > 1:
                    parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(points)}"/>')
                points = []
                continue
            x, y = left + (i + 0.5) * slot, top + plot_h - plot_h * v
            points.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
    parts.append("</svg>")
    return "".join(parts)
