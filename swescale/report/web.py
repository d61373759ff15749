"""What every report page shares: page addresses, the template environment and its
filters, the writer, and the scrubbing of machine paths.

Pages name no absolute path of the machine that wrote or reports the run: every text a
template prints goes through :func:`scrub_paths` (the Jinja ``finalize`` hook), which
turns a path inside the run directory into its path inside it, and the home directory
and the working directory of the report into ``~`` and ``.``. Highlighted diffs (markup
the report made from the agent's bytes) are printed as they are.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import Markup

from swescale.record.layout import safe_name
from swescale.report.text import diffstat, highlight_diff, pygments_css


def task_url(task_id: str) -> str:
    return f"task/{safe_name(task_id)}.html"


def candidate_url(task_id: str, candidate_id: str) -> str:
    return f"candidate/{safe_name(task_id)}.{safe_name(candidate_id)}.html"


def trajectory_url(trajectory_id: str) -> str:
    return f"trajectory/{safe_name(trajectory_id)}.html"


# ----------------------------------------------------------------------- machine paths


@dataclass(frozen=True)
class MachinePaths:
    """The absolute paths a page must not show, and what each becomes."""

    run_names: tuple[str, ...] = ()  # the run directory's name (wherever it was written)
    prefixes: tuple[tuple[str, str], ...] = ()  # (absolute prefix, replacement)
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, run_dir: Path) -> MachinePaths:
        run = Path(run_dir)
        prefixes: dict[str, str] = {}
        for path in {run.absolute(), run.resolve()}:
            prefixes[str(path).rstrip("/") + "/"] = ""
            prefixes[str(path).rstrip("/")] = run.name
        for path, instead in ((Path.cwd(), "."), (Path.home(), "~")):
            if str(path) not in ("/", ""):
                prefixes[str(path).rstrip("/")] = instead
        ordered = tuple(sorted(prefixes.items(), key=lambda kv: -len(kv[0])))
        name = re.escape(run.name)
        # The run written on another machine: any absolute path through a folder of the
        # run's name is a path inside the run (for names too long to be a common word).
        pattern = (
            re.compile(rf"(?<![\w.])/[^\s\"'<>]*?/{name}(?:/|(?=[\s\"'<>:;,.)]|$))")
            if len(run.name) >= 8
            else None
        )
        return cls((run.name,), ordered, pattern)


def scrub_paths(text: str, paths: MachinePaths | None) -> str:
    """``text`` with the machine's absolute paths made relative (see the module)."""
    if not paths or not text or "/" not in text:
        return text
    for prefix, instead in paths.prefixes:
        if prefix in text:
            text = _replace_prefix(text, prefix, instead)
    if paths.pattern is not None and paths.run_names:
        name = paths.run_names[0]
        text = paths.pattern.sub(lambda m: "" if m[0].endswith("/") else name, text)
    return text


def _replace_prefix(text: str, prefix: str, instead: str) -> str:
    # Only where the prefix starts a path (not inside a longer path) and ends at a
    # separator or the end of the path.
    end = "" if prefix.endswith("/") else r"(?=/|[^\w.-]|[.-](?![\w])|$)"
    pattern = re.escape(prefix) + end
    return re.sub(rf"(?<![\w./-]){pattern}", lambda _: instead, text)


# ------------------------------------------------------------------------- formatting


def pct(value: Any) -> str:
    return "–" if value is None else f"{float(value):.0%}"


def num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def tokens(cost: dict[str, Any] | None) -> int:
    cost = cost or {}
    return int(cost.get("tokens_in", 0) or 0) + int(cost.get("tokens_out", 0) or 0)


def cost_text(cost: dict[str, Any] | None) -> str:
    cost = cost or {}
    parts = [f"{tokens(cost):,} tok"]
    if float(cost.get("dollars", 0) or 0):
        parts.append(f"${float(cost['dollars']):.4f}")
    if float(cost.get("model_seconds", 0) or 0):
        parts.append(f"{float(cost['model_seconds']):,.1f} model-s")
    parts.append(f"{float(cost.get('sandbox_seconds', 0) or 0):,.1f} sandbox-s")
    return " · ".join(parts)


def yes_no(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "no")


def _finalize(context: Any, value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return scrub_paths(value, context.get("machine_paths"))
    return value


@lru_cache(maxsize=1)
def environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape

    env = Environment(
        loader=PackageLoader("swescale.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=pass_context(_finalize),
    )
    env.filters.update(
        pct=pct,
        num=num,
        cost=cost_text,
        tokens=tokens,
        yes_no=yes_no,
        short=lambda s: (s or "")[:8],
        diff=highlight_diff,
        diffstat=lambda p: diffstat(p or "").summary,
    )
    env.globals.update(
        task_url=task_url,
        candidate_url=candidate_url,
        trajectory_url=trajectory_url,
    )
    return env


class Writer:
    """Writes the pages of one site; ``paths``: what the pages must not show."""

    def __init__(self, root: Path, paths: MachinePaths | None = None) -> None:
        self.root = root
        self.paths = paths
        self.pages = 0

    def page(self, relative: str, template: str, **context: Any) -> None:
        depth = relative.count("/")
        context.setdefault("root", "../" * depth)
        context.setdefault("machine_paths", self.paths)
        html = environment().get_template(template).render(**context)
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        self.pages += 1

    def asset(self, relative: str, text: str) -> None:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def relative_link(target: Path, site: Path) -> str:
    return Path(os.path.relpath(target.resolve(), site.resolve())).as_posix()


def inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def css() -> str:
    from importlib.resources import files

    base = files("swescale.report").joinpath("assets", "report.css").read_text(encoding="utf-8")
    return base + "\n/* Pygments (diffs) */\n" + pygments_css()
