"""The explanation as a waterfall drawn on the server as SVG: from the base value to the score.

The bars walk the log-odds from the model's ``base_value`` through each feature's contribution (largest
effect first; past ``shown`` the rest are one bar) to the row's ``log_odds``, whose calibrated
probability is the score. Each feature bar is a link (``href_of(feature)``) to what lies behind it; each
has a ``<title>`` (its value and contribution) for pointers and screen readers.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from markupsafe import Markup

ROW = 26
LABEL = 230
PLOT = 420
VALUE = 80
WIDTH = LABEL + PLOT + VALUE
UP = "#b2182b"  # raises the risk
DOWN = "#2166ac"  # lowers it
TOTAL = "#4d4d4d"


def waterfall(
    explanation: dict[str, Any],
    *,
    shown: int = 12,
    href_of: Callable[[str], str] | None = None,
    ident: str = "wf",
) -> Markup:
    """The SVG of ``explanation`` (the API's ``Explanation``: base value, contributions, log-odds, score);
    ``ident`` prefixes its element ids (two charts on one page need two)."""
    base = float(explanation.get("base_value") or 0.0)
    contributions = explanation["contributions"]
    top = contributions[:shown]
    rest = contributions[shown:]
    steps: list[tuple[str, str, float, str | None]] = [
        (_short(c.get("label_zh") or c["feature"]), c["feature"], c["contribution"], c.get("label_en")) for c in top
    ]
    if rest:
        steps.append((f"其余 {len(rest)} 项", "", sum(c["contribution"] for c in rest), f"{len(rest)} other features"))
    if explanation.get("contributions_rest") is not None:  # a run that stored its top reasons only
        steps.append(("其余特征(未存)", "", float(explanation["contributions_rest"]), "the other features, not stored"))
    end = explanation.get("log_odds")
    end = float(end) if end is not None else base + sum(c["contribution"] for c in contributions)
    running = [base]
    for _, _, amount, _ in steps:
        running.append(running[-1] + amount)
    low = min([0.0, *running, end])
    high = max([0.0, *running, end])
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return LABEL + (value - low) / span * PLOT

    rows = len(steps) + 2
    height = rows * ROW + 30
    score = explanation.get("score")
    title = "解释瀑布图 Explanation waterfall"
    desc = (
        f"从基准值 {base:.3f} 经 {len(contributions)} 个特征贡献到对数几率 {end:.3f}"
        + (f"（评分 {float(score):.3f}）" if score is not None else "")
        + f" · from the base value {base:.3f} through {len(contributions)} feature contributions to log-odds {end:.3f}"
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="waterfall" viewBox="0 0 {WIDTH} {height}" '
        f'role="group" aria-labelledby="{ident}-title {ident}-desc" preserveAspectRatio="xMinYMin meet">',
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(desc)}</desc>',
        f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{rows * ROW}" stroke="#999" stroke-dasharray="3,3"/>',
    ]

    def bar(i: int, label: str, start: float, stop: float, colour: str, tip: str, href: str | None) -> None:
        y = i * ROW + 4
        left, right = sorted((x(start), x(stop)))
        width = max(right - left, 1.5)
        amount = stop - start
        shape = (
            f'<text x="{LABEL - 6}" y="{y + 14}" text-anchor="end" class="wf-label">{escape(label)}</text>'
            f'<rect x="{left:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 8}" fill="{colour}">'
            f"<title>{escape(tip)}</title></rect>"
            f'<text x="{LABEL + PLOT + 6}" y="{y + 14}" class="wf-value">{amount:+.3f}</text>'
        )
        if href:
            shape = f'<a href="{escape(href)}">{shape}</a>'
        out.append(f"<g>{shape}</g>")

    bar(0, "基准值 base", 0.0, base, TOTAL, f"base value {base:.3f}", None)
    for i, (label, feature, amount, english) in enumerate(steps, start=1):
        start = running[i - 1]
        value = next((c.get("value") for c in top if c["feature"] == feature), None) if feature else None
        full = next((c.get("label_zh") for c in top if c["feature"] == feature), None) or label
        tip = f"{full} {english or ''}: {amount:+.3f}" + (f" (value {value})" if value is not None else "")
        href = href_of(feature) if (href_of and feature) else None
        bar(i, label, start, start + amount, UP if amount > 0 else DOWN, tip, href)
    bar(rows - 1, "对数几率 log-odds", 0.0, end, TOTAL, f"log-odds {end:.3f}", None)
    axis_y = rows * ROW + 16
    for tick in _ticks(low, high):
        out.append(f'<text x="{x(tick):.1f}" y="{axis_y}" text-anchor="middle" class="wf-axis">{tick:g}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _short(text: str, width: int = 16) -> str:
    """A bar's label cut to fit beside it (the whole label is in the bar's title)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _ticks(low: float, high: float) -> list[float]:
    span = high - low
    step = next(s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if span / s <= 6)
    first = step * round(low / step)
    ticks = []
    value = first
    while value <= high + 1e-9:
        if value >= low - 1e-9:
            ticks.append(round(value, 6))
        value += step
    return ticks
