"""Text on report pages: highlighted diffs (Pygments), diff statistics (the project's own
patch parser), and long outputs folded so a page stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from markupsafe import Markup

# A text longer than this many lines (or characters) shows a head and a tail, the whole
# of it behind a fold.
FOLD_LINES = 24
FOLD_CHARS = 4000
HEAD_LINES = 10
TAIL_LINES = 8
# Beyond this a text is cut in the report (the record keeps all of it).
MAX_CHARS = 200_000
# Diffs longer than this many lines are not highlighted (plain text is faster and smaller).
HIGHLIGHT_LINES = 3000


@dataclass(frozen=True)
class Folded:
    """A text prepared for a page: ``preview`` is shown, ``full`` is behind a fold when
    ``folded``; ``clipped`` says the report cut it at MAX_CHARS."""

    preview: str
    full: str
    lines: int
    folded: bool
    clipped: bool


def fold(text: str | None, fold_lines: int = FOLD_LINES, fold_chars: int = FOLD_CHARS) -> Folded:
    text = text or ""
    clipped = len(text) > MAX_CHARS
    if clipped:
        text = text[:MAX_CHARS]
    lines = text.splitlines()
    if len(lines) <= fold_lines and len(text) <= fold_chars:
        return Folded(text, text, len(lines), False, clipped)
    if len(lines) > HEAD_LINES + TAIL_LINES + 1:
        hidden = len(lines) - HEAD_LINES - TAIL_LINES
        head = [_clip_line(line) for line in lines[:HEAD_LINES]]
        tail = [_clip_line(line) for line in lines[-TAIL_LINES:]]
        preview = "\n".join([*head, f"… {hidden} more lines …", *tail])
    elif len(lines) > fold_lines:
        shown = [_clip_line(line) for line in lines[:fold_lines]]
        preview = "\n".join([*shown, f"… {len(lines) - fold_lines} more lines"])
    else:  # few lines, but long ones
        preview = "\n".join(_clip_line(line) for line in lines)
    return Folded(preview, text, len(lines), True, clipped)


def _clip_line(line: str, width: int = 240) -> str:
    return line if len(line) <= width else line[:width] + f" … (+{len(line) - width} chars)"


@dataclass(frozen=True)
class DiffStat:
    files: tuple[tuple[str, int, int, str], ...]  # (path, added, removed, status)
    added: int
    removed: int

    @property
    def summary(self) -> str:
        if not self.files:
            return "empty"
        n = len(self.files)
        return f"{n} file{'s' if n != 1 else ''} +{self.added} −{self.removed}"


@lru_cache(maxsize=4096)
def diffstat(patch: str) -> DiffStat:
    from swescale.patches import parse_patch

    try:
        parsed = parse_patch(patch or "")
    except Exception:  # noqa: BLE001 - a malformed patch still gets a page
        return DiffStat((), 0, 0)
    files = []
    for fp in parsed.files:
        added = sum(1 for h in fp.hunks for line in h.lines if line.startswith("+"))
        removed = sum(1 for h in fp.hunks for line in h.lines if line.startswith("-"))
        status = "binary" if fp.binary else fp.status
        files.append((fp.path, added, removed, status))
    return DiffStat(tuple(files), sum(f[1] for f in files), sum(f[2] for f in files))


@lru_cache(maxsize=1)
def _formatter():  # type: ignore[no-untyped-def]
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True)


@lru_cache(maxsize=1)
def _lexer():  # type: ignore[no-untyped-def]
    from pygments.lexers import DiffLexer

    return DiffLexer(stripnl=False, ensurenl=False)


@lru_cache(maxsize=1024)
def highlight_diff(patch: str) -> Markup:
    """The patch as highlighted HTML (spans with Pygments classes, for a ``<pre>``)."""
    from markupsafe import escape

    text = patch[:MAX_CHARS]
    if text.count("\n") > HIGHLIGHT_LINES:
        return Markup(escape(text))
    from pygments import highlight

    return Markup(highlight(text, _lexer(), _formatter()))


def pygments_css() -> str:
    return _formatter().get_style_defs(".hl")
