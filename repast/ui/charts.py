"""Charts as static SVG drawn on the server (no script, no CDN: the UI runs in air-gapped clusters).

`distribution_svg` draws two binned distributions side by side per bin (the reference and now, as
shares of their rows); `series_svg` draws a value over days as a line with its points, with an
optional threshold line. Every mark carries a <title> (the browser's tooltip) and a data- attribute
with its value, so tests and screen readers read what is drawn.
"""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 420, 160, 44, 34, 10
REFERENCE_COLOR, CURRENT_COLOR, LINE_COLOR, THRESHOLD_COLOR = "#9aa5b1", "#2f6fdf", "#2f6fdf", "#d64545"


def _number(value: float) -> str:
    return f"{value:.3g}"


def _frame(label: str, body: list[str], y_max: float, y_label: str) -> str:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    axis = [f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{PAD_TOP + plot_h}" stroke="#555"/>',
            f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH}" y2="{PAD_TOP + plot_h}" stroke="#555"/>',
            f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end" font-size="10">{_number(y_max)}</text>',
            f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + plot_h}" text-anchor="end" font-size="10">0</text>',
            f'<text x="4" y="{PAD_TOP + plot_h / 2}" font-size="10" transform="rotate(-90 10 {PAD_TOP + plot_h / 2})">'
            f'{escape(y_label)}</text>']
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(label)}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">{"".join(axis + body)}</svg>')


def distribution_svg(label: str, bins: list[str], reference: list[float], current: list[float]) -> str:
    """Grouped bars per bin: the reference's share of rows (grey) and the current one's (blue)."""
    ref_total, cur_total = sum(reference) or 1.0, sum(current) or 1.0
    shares = [(r / ref_total, c / cur_total) for r, c in zip(reference, current, strict=True)]
    y_max = max([s for pair in shares for s in pair] + [0.01])
    plot_w, plot_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(1, len(bins))
    body = []
    for i, (name, (ref, cur)) in enumerate(zip(bins, shares, strict=True)):
        for j, (series, share, color) in enumerate((("reference", ref, REFERENCE_COLOR),
                                                    ("current", cur, CURRENT_COLOR))):
            h = plot_h * share / y_max
            x = PAD_LEFT + 2 + i * slot + j * slot * 0.45
            body.append(f'<rect class="bar {series}" data-bin="{escape(name)}" data-share="{share:.6f}" x="{x:.1f}" '
                        f'y="{PAD_TOP + plot_h - h:.1f}" width="{slot * 0.42:.1f}" height="{h:.1f}" fill="{color}">'
                        f'<title>{escape(name)}: {series} {share:.1%}</title></rect>')
        if len(bins) <= 12 or i % max(1, len(bins) // 6) == 0:
            body.append(f'<text x="{PAD_LEFT + 2 + (i + 0.45) * slot:.1f}" y="{HEIGHT - PAD_BOTTOM + 14}" '
                        f'text-anchor="middle" font-size="9">{escape(name[:10])}</text>')
    legend = f'<tspan fill="{REFERENCE_COLOR}">■ reference</tspan> <tspan fill="{CURRENT_COLOR}">■ now</tspan>'
    body.append(f'<text x="{WIDTH - 4}" y="{HEIGHT - 4}" text-anchor="end" font-size="10">{legend}</text>')
    return _frame(label, body, y_max, "share of rows")


def series_svg(label: str, points: list[tuple[str, float]], y_label: str, threshold: float | None = None) -> str:
    """A value per day as a line with its points (and the threshold as a dashed red line)."""
    values = [v for _, v in points]
    y_max = (max(values + ([threshold] if threshold is not None else [])) or 1.0) * 1.1 if values else 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - 12, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return PAD_LEFT + 6 + (i * step if len(points) > 1 else plot_w / 2), PAD_TOP + plot_h - plot_h * v / y_max

    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    body = []
    if threshold is not None:
        y = xy(0, threshold)[1]
        body.append(f'<line class="threshold" data-value="{threshold}" x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH}" '
                    f'y2="{y:.1f}" stroke="{THRESHOLD_COLOR}" stroke-dasharray="4 3"><title>threshold '
                    f'{_number(threshold)}</title></line>')
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline points="{path}" fill="none" stroke="{LINE_COLOR}" stroke-width="2"/>')
    for (day, v), (x, y) in zip(points, coords, strict=True):
        body.append(f'<circle class="point" data-day="{escape(day)}" data-value="{v:.6g}" cx="{x:.1f}" cy="{y:.1f}" '
                    f'r="3.5" fill="{LINE_COLOR}"><title>{escape(day)}: {_number(v)}</title></circle>')
    for i in sorted({0, len(points) - 1}) if points else []:
        anchor = "start" if i == 0 and len(points) > 1 else "end" if i else "middle"
        body.append(f'<text x="{coords[i][0]:.1f}" y="{HEIGHT - PAD_BOTTOM + 14}" text-anchor="{anchor}" '
                    f'font-size="9">{escape(points[i][0])}</text>')
    return _frame(label, body, y_max, y_label)
