"""Tables and numbers on the terminal: tables that fit the terminal's width (rich's
``Console.width``: the terminal's, else ``COLUMNS``, else 80) without wrapping an id
over two lines or cutting a header, and numbers written for people.

A table is drawn without vertical rules and with one space between columns. When its
widest row does not fit, the columns marked ``optional`` are left out, least important
first, and the caption says which; the first column (the ids) is never wrapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    """A column: its header, alignment, and ``optional`` (0: always shown; larger:
    left out earlier when the table is too wide)."""

    header: str
    justify: str = "left"
    optional: int = 0


def human(value: Any, digits: int = 1) -> str:
    """A number as a person reads it: ``6,661`` (not ``6660.600``), ``12.5``, ``0.25``;
    ``-`` for None. Integers and floats of 100 or more get thousands separators and no
    decimals; smaller floats ``digits`` decimals (two below 1)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{round(value):,}"
        if abs(value) < 1 and value:
            return f"{value:.2f}"
        return f"{value:,.{digits}f}"
    return str(value)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _width(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], keep: list[int], gap: int = 1
) -> int:
    widths = [max([len(columns[i].header), *(len(str(row[i])) for row in rows)]) for i in keep]
    # Each gap is the box's one-space separator plus the padding; the last column is
    # padded too.
    return sum(widths) + gap * max(len(keep) - 1, 0) + (gap - 1)


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    width: int,
    title: str | None = None,
    caption: str | None = None,
) -> Any:
    """A rich Table of ``rows`` for ``width`` columns (see the module); its
    ``min_width`` is what it needs when even the columns that stay do not fit."""
    from rich import box
    from rich.table import Table

    text_rows = [[str(cell) for cell in row] for row in rows]
    keep = list(range(len(columns)))
    dropped: list[str] = []
    for index in sorted(
        (i for i, c in enumerate(columns) if c.optional), key=lambda i: -columns[i].optional
    ):
        if _width(columns, text_rows, keep) <= width:
            break
        keep.remove(index)
        dropped.append(columns[index].header)
    # Two spaces between columns when they fit, else one.
    gap = 2 if _width(columns, text_rows, keep, 2) <= width else 1
    notes = [caption] if caption else []
    if dropped:
        notes.append(f"left out to fit {width} columns: {', '.join(dropped)}")
    table = Table(
        title=title,
        caption="; ".join(notes) or None,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, gap - 1, 0, 0),
        show_edge=False,
        caption_justify="left",
        title_justify="left",
        min_width=_width(columns, text_rows, keep, gap),
    )
    for index in keep:
        column = columns[index]
        width_of = max([len(column.header), *(len(row[index]) for row in text_rows)])
        table.add_column(
            column.header,
            justify=column.justify,  # type: ignore[arg-type]
            no_wrap=True,
            min_width=width_of,
        )
    for row in text_rows:
        table.add_row(*[row[i] for i in keep])
    return table


def print_table(console: Any, table: Any) -> None:
    """Print a :func:`fit_table` table: at the console's width, or wider when its
    columns need more (the terminal then wraps the lines; no cell is cut or folded)."""
    needed = table.min_width or 0
    if needed > console.width:
        console.print(table, width=needed, crop=False)
    else:
        console.print(table)


EXIT_PHRASES = {
    "submitted": "submitted a patch",
    "submitted_empty": "submitted an empty patch",
    "step_limit": "hit the step limit",
    "budget": "hit the budget",
    "format_error": "ended on a malformed turn",
    "model_error": "ended on a model error",
    "sandbox_error": "ended on a sandbox error",
    "unfinished": "did not finish",
}


def trajectory_outcomes(counts: dict[str, int]) -> str:
    """ "58 of 60 trajectories submitted a patch; 2 trajectories hit the step limit"."""
    total = sum(counts.values())
    if not total:
        return "no trajectories"
    parts = []
    submitted = counts.get("submitted", 0)
    if submitted:
        parts.append(f"{submitted} of {total} trajectories submitted a patch")
    for status, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if status == "submitted" or not count:
            continue
        noun = "trajectory" if count == 1 else "trajectories"
        phrase = EXIT_PHRASES.get(status, f"ended as {status}")
        parts.append(f"{count} {noun} {phrase}")
    return "; ".join(parts)
