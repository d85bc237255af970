"""Small server-side SVG charts: bars (stacked or grouped), lines and horizontal meters.

No JavaScript and no CDN: each function returns one ``<svg>`` element as :class:`markupsafe.Markup`,
ready to drop into a Jinja2 template. Every piece of text (titles, labels, legend, tooltips) goes
through :func:`markupsafe.escape`, since labels can come from telemetry (feature names, titles).
Numbers are formatted here, never taken as text from a caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 34, 44
MAX_BAR = 48
PALETTE = ("#3b6fb6", "#d9822b", "#3f9a5a", "#b8434e", "#7e5aa8", "#8c6d46", "#5b8f99", "#a0a0a0")
NAMED = {
    "hallucination": "#3b6fb6", "prompt_injection": "#b8434e", "drift": "#7e5aa8", "runaway_cost": "#d9822b",
    "escalation_overload": "#3f9a5a", "scope_creep": "#8c6d46",
    "detect": "#3b6fb6", "contain": "#d9822b", "resolve": "#3f9a5a",
    "on_time": "#3f9a5a", "late": "#d9822b", "overdue": "#b8434e", "pending": "#a0a0a0",
    "eval_cases": "#3b6fb6", "monitors": "#d9822b",
}


def _color(name: str, i: int) -> str:
    return NAMED.get(name, PALETTE[i % len(PALETTE)])


def _num(x: float) -> str:
    """A coordinate: short, and never anything but a number."""
    return f"{float(x):.1f}"


def fmt(value: float, unit: str = "") -> str:
    """A value for a person: ``3``, ``2.5``, ``1.2k``; durations in s / min / h / d."""
    if unit == "s":
        for size, suffix in ((86400, "d"), (3600, "h"), (60, "min")):
            if abs(value) >= size:
                return f"{value / size:.1f} {suffix}"
        return f"{value:.0f} s"
    if unit == "%":
        return f"{value * 100:.0f}%"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def ticks_for(top: float, unit: str = "") -> list[float]:
    """Ticks that read well in ``unit``: durations tick in whole minutes, hours or days."""
    if unit != "s" or top <= 0:
        return nice_ticks(top)
    scale = next((size for size in (86400, 3600, 60) if top >= size), 1)
    return [t * scale for t in nice_ticks(top / scale)]


def _open(title: str, kind: str, *, height: int = HEIGHT) -> list[str]:
    t = escape(title)
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" viewBox="0 0 {WIDTH} {height}" '
            f'width="{WIDTH}" height="{height}" role="img" aria-label="{t}">',
            f"<title>{t}</title>",
            f'<text class="chart-title" x="{LEFT}" y="16" font-size="13" font-weight="600">{t}</text>']


def _legend(names: Sequence[str], labels: Mapping[str, str] | None) -> list[str]:
    out, x = [], LEFT
    for i, name in enumerate(names):
        text = (labels or {}).get(name, name.replace("_", " "))
        out.append(f'<rect x="{_num(x)}" y="22" width="10" height="10" fill="{_color(name, i)}"/>'
                   f'<text x="{_num(x + 14)}" y="31" font-size="11">{escape(text)}</text>')
        x += 24 + 6.5 * len(text)
    return out


def _axes(ticks: list[float], unit: str, labels: Sequence[str]) -> tuple[list[str], float, float]:
    """Y grid with tick labels and the x labels (thinned to fit); returns parts, plot width, bottom y."""
    plot_w, bottom = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM
    plot_h = bottom - TOP - 10
    out = []
    for t in ticks:
        y = bottom - plot_h * (t / ticks[-1] if ticks[-1] else 0)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y)}" y2="{_num(y)}" stroke="#ddd"/>'
                   f'<text x="{LEFT - 6}" y="{_num(y + 4)}" font-size="10" text-anchor="end">'
                   f"{escape(fmt(t, unit))}</text>")
    every = max(1, math.ceil(len(labels) / 12))
    slot = plot_w / max(1, len(labels))
    for i, label in enumerate(labels):
        if i % every == 0:
            x = LEFT + slot * (i + 0.5)
            out.append(f'<text x="{_num(x)}" y="{bottom + 16}" font-size="10" text-anchor="middle">'
                       f"{escape(label)}</text>")
    out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#888"/>')
    return out, plot_w, bottom


def _empty(parts: list[str], message: str = "no data yet") -> Markup:
    parts.append(f'<text class="chart-empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" font-size="12" text-anchor="middle" '
                 f'fill="#777">{escape(message)}</text></svg>')
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()


def bar_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
              stacked: bool = True, unit: str = "", legend: Mapping[str, str] | None = None) -> Markup:
    """One bar (stacked) or one group of bars per label; ``series`` maps a name to one value per label."""
    names = list(series)
    parts = _open(title, "bar")
    values = {n: [float(v or 0) for v in series[n]] for n in names}
    if not labels or not names:
        return _empty(parts)
    top = (max(sum(values[n][i] for n in names) for i in range(len(labels))) if stacked
           else max(max(v) for v in values.values()))
    if top <= 0:
        return _empty(parts + _legend(names, legend), "none yet")
    ticks = ticks_for(top, unit)
    axes, plot_w, bottom = _axes(ticks, unit, labels)
    parts += _legend(names, legend) + axes
    plot_h = bottom - TOP - 10
    slot = plot_w / len(labels)
    # Bars stay bar-shaped when there are few labels: at most MAX_BAR wide, centred in their slot.
    bar_w = min(slot * 0.7 if stacked else slot * 0.8 / len(names), MAX_BAR)
    group_w = bar_w if stacked else bar_w * len(names)
    for i, label in enumerate(labels):
        base = bottom
        for k, name in enumerate(names):
            v = values[name][i]
            if v <= 0:
                continue
            h = plot_h * v / ticks[-1]
            x = LEFT + slot * i + (slot - group_w) / 2 + (0 if stacked else bar_w * k)
            y = base - h if stacked else bottom - h
            tip = f"{label} · {(legend or {}).get(name, name.replace('_', ' '))}: {fmt(v, unit)}"
            parts.append(f'<rect class="bar" data-series="{escape(name)}" data-value="{_num(v)}" x="{_num(x)}" '
                         f'y="{_num(y)}" width="{_num(bar_w)}" height="{_num(h)}" fill="{_color(name, k)}">'
                         f"<title>{escape(tip)}</title></rect>")
            if stacked:
                base -= h
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()


def line_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
               unit: str = "", legend: Mapping[str, str] | None = None) -> Markup:
    """One line per series over the labels; missing values (None) break the line."""
    names = list(series)
    parts = _open(title, "line")
    present = [float(v) for n in names for v in series[n] if v is not None]
    if not labels or not present:
        return _empty(parts)
    ticks = ticks_for(max(present), unit)
    axes, plot_w, bottom = _axes(ticks, unit, labels)
    parts += _legend(names, legend) + axes
    plot_h = bottom - TOP - 10
    slot = plot_w / len(labels)
    for k, name in enumerate(names):
        color = _color(name, k)
        path: list[str] = []
        for i, v in enumerate(series[name]):
            if v is None:
                path.append("")
                continue
            x, y = LEFT + slot * (i + 0.5), bottom - plot_h * float(v) / (ticks[-1] or 1)
            path.append(f"{_num(x)},{_num(y)}")
            tip = f"{labels[i]} · {(legend or {}).get(name, name.replace('_', ' '))}: {fmt(float(v), unit)}"
            parts.append(f'<circle class="point" data-series="{escape(name)}" data-value="{_num(float(v))}" '
                         f'cx="{_num(x)}" cy="{_num(y)}" r="3" fill="{color}"><title>{escape(tip)}</title></circle>')
        for run in " ".join(path).split("  "):
            if run.strip():
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{run.strip()}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()


def meter_chart(title: str, rows: Sequence[tuple[str, float, float]], *, unit: str = "") -> Markup:
    """Horizontal bars, one per row ``(label, value, out_of)``: e.g. reads of each postmortem."""
    height = max(80, TOP + 24 * len(rows) + 16)
    parts = _open(title, "meter", height=height)
    if not rows:
        parts.append(f'<text class="chart-empty" x="{WIDTH / 2}" y="{height / 2 + 8}" font-size="12" '
                     'text-anchor="middle" fill="#777">no data yet</text></svg>')
        return Markup("".join(parts))  # noqa: S704 - escaped above
    label_w, bar_x = 220, 230
    bar_w = WIDTH - bar_x - 70
    for i, (label, value, out_of) in enumerate(rows):
        y = TOP + 24 * i
        share = value / out_of if out_of else 0.0
        text = label if len(label) <= 34 else label[:33] + "…"
        shown = f"{fmt(value, unit)} / {fmt(out_of, unit)}"
        parts.append(f'<text x="{label_w}" y="{y + 13}" font-size="11" text-anchor="end">{escape(text)}'
                     f"<title>{escape(label)}</title></text>"
                     f'<rect x="{bar_x}" y="{y + 3}" width="{bar_w}" height="12" fill="#eee"/>'
                     f'<rect class="meter" data-value="{_num(value)}" data-of="{_num(out_of)}" x="{bar_x}" '
                     f'y="{y + 3}" width="{_num(bar_w * min(1.0, share))}" height="12" fill="#3f9a5a"/>'
                     f'<text x="{bar_x + bar_w + 6}" y="{y + 13}" font-size="11">{escape(shown)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above went through escape()


def charts_for(data: Mapping[str, object]) -> dict[str, Markup]:
    """The insights page's charts, from :func:`hotwash.insights.metrics.compute`'s result."""
    inc: dict = data["incidents"]  # type: ignore[assignment]
    resp: dict = data["response"]  # type: ignore[assignment]
    recur: dict = data["recurrences"]  # type: ignore[assignment]
    growth: dict = data["growth"]  # type: ignore[assignment]
    pms: dict = data["postmortems"]  # type: ignore[assignment]
    acts: dict = data["actions"]  # type: ignore[assignment]
    reads: dict = data["reads"]  # type: ignore[assignment]

    weeks = [w["week"] for w in inc["weekly"]]
    cats = [c for c, n in inc["by_category"].items() if n] or list(inc["by_category"])
    months = [m["month"] for m in resp["monthly"]]
    pm_months = [m["month"] for m in pms["monthly"]]
    states = ("on_time", "late", "overdue", "pending")
    return {
        "incidents": bar_chart("Incidents per category, weekly", [w[5:] for w in weeks],
                               {c: [w["counts"][c] for w in inc["weekly"]] for c in cats}),
        "response": bar_chart("Median time to detect / contain / resolve, monthly", months,
                              {p: [m[p]["median_s"] for m in resp["monthly"]]
                               for p in ("detect", "contain", "resolve")}, stacked=False, unit="s"),
        "recurrences": bar_chart(f"Recurrences (same feature + category within {recur['window_days']} days)",
                                 [m["month"] for m in recur["monthly"]],
                                 {"recurrences": [m["count"] for m in recur["monthly"]]}),
        "growth": line_chart("Regression cases and monitors, cumulative", [w["week"][5:] for w in growth["weekly"]],
                             {"eval_cases": [w["eval_cases"] for w in growth["weekly"]],
                              "monitors": [w["monitors"] for w in growth["weekly"]]},
                             legend={"eval_cases": "regression cases", "monitors": "monitors"}),
        "postmortems": bar_chart("Postmortems on time vs late, by due month", pm_months,
                                 {s: [m[s] for m in pms["monthly"]] for s in states}),
        "actions": meter_chart("Overdue actions by owner",
                               [(owner, n, acts["open"]) for owner, n in acts["overdue_by_owner"].items()]),
        "reads": meter_chart("Read coverage of published postmortems",
                             [(f"{p['incident']} {p['title']}", p["reads"], p["audience"])
                              for p in reads["per_postmortem"]]),
    }
