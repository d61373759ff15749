"""The report's plots, drawn with matplotlib (the Agg backend through ``Figure``, no pyplot
state, safe in threads) and saved as SVG with text kept as text.

Each function takes plain numbers and returns the SVG document as a string, or None when
there is nothing to draw. :func:`available` says whether matplotlib is installed (the
``report`` extra); without it the report has its tables and no images.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from swescale.report.stats import CurvePoint

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
ORACLE = "#555555"
MARKERS = ("s-", "^:", "D-.", "v-", "P:")
# Points of the cost plot labelled with their k (and the last one).
LABELLED_K = (1, 2, 4, 8, 16, 32, 64, 128)


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 6.4, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _svg(fig: Any) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "swescale"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _percent_axis(ax: Any) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(True, alpha=0.3)


def _curve(ax: Any, curve: Sequence[CurvePoint], label: str, color: str, style: str) -> None:
    ks = [p.k for p in curve]
    size = 4 if len(curve) <= 24 else 0  # a long curve reads better as a line
    ax.plot(ks, [p.value for p in curve], style, color=color, label=label, markersize=size)
    if all(p.low is not None and p.high is not None for p in curve) and len(curve) > 1:
        ax.fill_between(
            ks,
            [p.low for p in curve],  # type: ignore[misc]
            [p.high for p in curve],  # type: ignore[misc]
            color=color,
            alpha=0.15,
            linewidth=0,
        )


def samples_plot(
    oracle: Sequence[CurvePoint], selectors: Mapping[str, Sequence[CurvePoint]]
) -> str | None:
    """Resolve rate against the number of samples per task: pass@k (the oracle: any of k
    samples resolves) and each selector's pick, with 95% bootstrap bands over tasks."""
    if not oracle:
        return None
    fig, ax = _figure()
    _curve(ax, oracle, "pass@k (oracle)", ORACLE, "o--")
    for i, (name, curve) in enumerate(selectors.items()):
        if curve:
            # Distinct markers and dashes: selectors often agree, and a line drawn over
            # another must not hide it.
            _curve(ax, curve, name, COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)])
    ax.set_xlabel("samples per task (k)")
    ax.set_ylabel("tasks resolved")
    ax.set_xticks([p.k for p in oracle] if len(oracle) <= 16 else ax.get_xticks())
    ax.set_xlim(0.8, max(p.k for p in oracle) + 0.2)
    _percent_axis(ax)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(f"Resolve rate vs samples ({oracle[0].tasks} labelled tasks)", fontsize=10)
    return _svg(fig)


def selectors_plot(
    rows: Sequence[Mapping[str, Any]], pass_at_1: float | None, pass_at_n: float | None, n: int
) -> str | None:
    """Each selector's resolve rate on the labelled tasks (bars, 95% Wilson intervals)
    between pass@1 (a random pick) and pass@n (an oracle that always picks right)."""
    rows = [r for r in rows if r.get("accuracy") is not None]
    if not rows:
        return None
    fig, ax = _figure(6.4, 0.5 + 0.45 * len(rows) + 0.8)
    names = [str(r["selector"]) for r in rows]
    values = [float(r["accuracy"]) for r in rows]
    lows = [
        v if r.get("low") is None else float(r["low"]) for r, v in zip(rows, values, strict=True)
    ]
    highs = [
        v if r.get("high") is None else float(r["high"]) for r, v in zip(rows, values, strict=True)
    ]
    ys = list(range(len(rows)))[::-1]
    ax.barh(ys, values, color=[COLORS[i % len(COLORS)] for i in range(len(rows))], alpha=0.8)
    ax.errorbar(
        values,
        ys,
        xerr=[
            # Clamped: an interval computed in floating point may end a hair inside
            # its own estimate (0/n gives a low of 1e-17), and matplotlib refuses that.
            [max(v - lo, 0.0) for v, lo in zip(values, lows, strict=True)],
            [max(hi - v, 0.0) for v, hi in zip(values, highs, strict=True)],
        ],
        fmt="none",
        ecolor="black",
        capsize=3,
        linewidth=1,
    )
    for y, v in zip(ys, values, strict=True):
        inside = v > 0.2
        ax.text(
            v - 0.02 if inside else v + 0.02,
            y + 0.28,
            f"{v:.0%}",
            va="center",
            ha="right" if inside else "left",
            fontsize=8,
            color="white" if inside else "black",
        )
    if pass_at_1 is not None:
        ax.axvline(pass_at_1, color=ORACLE, linestyle=":", label=f"pass@1 {pass_at_1:.0%}")
    if pass_at_n is not None:
        ax.axvline(pass_at_n, color=ORACLE, linestyle="--", label=f"pass@{n} {pass_at_n:.0%}")
    ax.set_yticks(ys, names)
    from matplotlib.ticker import PercentFormatter

    ax.set_xlim(0, 1.05)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("tasks resolved by the pick")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncols=2, fontsize=8, frameon=False)
    ax.set_title("Selectors vs the oracle", fontsize=10)
    return _svg(fig)


def cost_plot(
    points: Mapping[str, Sequence[tuple[float, float, int]]], cost_label: str
) -> str | None:
    """Resolve rate against cost per task, one line per series of (cost, rate, k) points
    (k samples per task), each point labelled with its k."""
    series = {name: pts for name, pts in points.items() if pts}
    if not series:
        return None
    fig, ax = _figure()
    for i, (name, pts) in enumerate(series.items()):
        color = ORACLE if name.startswith("pass@") else COLORS[(i - 1) % len(COLORS)]
        style = "o--" if name.startswith("pass@") else MARKERS[(i - 1) % len(MARKERS)]
        size = 4 if len(pts) <= 24 else 0
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, label=name, ms=size)
        if i == 0:
            last = pts[-1][2]
            for cost, rate, k in pts:
                if k == last or (k in LABELLED_K and last - k > last / 8):
                    ax.annotate(
                        f"k={k}",
                        (cost, rate),
                        textcoords="offset points",
                        xytext=(3, -10),
                        fontsize=7,
                    )
    from matplotlib.ticker import EngFormatter

    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel(cost_label)
    ax.set_ylabel("tasks resolved")
    _percent_axis(ax)
    ax.set_xlim(left=0)
    ax.margins(x=0.08)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title("Resolve rate vs cost per task", fontsize=10)
    return _svg(fig)
