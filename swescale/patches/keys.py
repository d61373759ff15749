"""Normalized keys of patches: what two patches must share to count as the same fix.

Per file, the changed lines with whitespace-only and (for Python) comment-only
differences removed, anchored to their place in the original file, files and changes in
a fixed order. ``index`` lines, timestamps, context lines and hunk line numbers of the new
file do not enter it. A candidate's id is its key's prefix, and its votes are the number
of producers (trajectories, other systems) that arrived at it.
"""

from __future__ import annotations

import hashlib
import json
import re

from swescale.patches.parse import Hunk, parse_patch
from swescale.types import Candidate

_PUNCT_SPACES = re.compile(r"\s*([()\[\]{},:;=+\-*/<>!%&|^~@.])\s*")
_SPACES = re.compile(r"\s+")
CANDIDATE_ID_LENGTH = 12


def _python_code(line: str) -> str:
    """One Python line with its comment dropped and the whitespace outside string
    literals reduced to what changes meaning (none around punctuation, one space
    elsewhere). Whitespace inside strings is kept: ``"a \\n"`` vs ``"a\\n"`` is a real
    fix (seen in SWE-bench: pydata__xarray-5131)."""
    out: list[str] = []
    code: list[str] = []
    quote: str | None = None
    string: list[str] = []
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            string.append(ch)
            if ch == "\\" and i + 1 < len(line):
                string.append(line[i + 1])
                i += 2
                continue
            if line.startswith(quote, i):
                string.extend(quote[1:])
                i += len(quote)
                out.append("".join(string))
                string, quote = [], None
                continue
        elif ch in "'\"":
            out.append(_squeeze("".join(code)))
            code = []
            quote = line[i : i + 3] if line.startswith(ch * 3, i) else ch
            string = [quote]
            i += len(quote)
            continue
        elif ch == "#":
            break
        else:
            code.append(ch)
        i += 1
    if quote:
        out.append("".join(string))  # a string running past the line: keep it verbatim
    out.append(_squeeze("".join(code)))
    return "".join(out).strip()


def _squeeze(code: str) -> str:
    return _PUNCT_SPACES.sub(r"\1", _SPACES.sub(" ", code))


def normalize_line(line: str, python: bool) -> str | None:
    """The part of one source line that matters; None when the line does not matter."""
    if not python:
        return line.rstrip()
    expanded = line.expandtabs(8)
    body = _python_code(expanded)
    if not body:
        return None  # blank or comment-only
    indent = len(expanded) - len(expanded.lstrip())  # indentation is meaning in Python
    return f"{indent}:{body}"


def _is_python(path: str) -> bool:
    return path.endswith((".py", ".pyi"))


def _change_blocks(hunk: Hunk, python: bool) -> list[list]:
    """Runs of removed/added lines, each anchored to a line of the original file."""
    blocks: list[list] = []
    old_no = hunk.old_start - 1 if hunk.old_len else hunk.old_start
    anchor = old_no  # last significant original line seen
    removed: list[str] = []
    added: list[str] = []
    block_anchor = anchor

    def flush() -> None:
        r, a = list(removed), list(added)
        # Trim lines the block keeps unchanged (a whitespace-only edit leaves nothing).
        while r and a and r[0] == a[0]:
            r.pop(0)
            a.pop(0)
        while r and a and r[-1] == a[-1]:
            r.pop()
            a.pop()
        if r or a:
            blocks.append([block_anchor, r, a])
        removed.clear()
        added.clear()

    in_block = False
    for line in hunk.lines:
        kind, body = line[0], line[1:]
        norm = normalize_line(body, python)
        if kind == " ":
            if in_block:
                flush()
                in_block = False
            old_no += 1
            if norm is not None:
                anchor = old_no
            continue
        if not in_block:
            in_block, block_anchor = True, anchor
        if kind == "-":
            old_no += 1
            if norm is not None:
                if not removed:
                    block_anchor = old_no  # a removal is placed by its first real line
                removed.append(norm)
                anchor = old_no
        elif norm is not None:
            added.append(norm)
    if in_block:
        flush()
    return blocks


def normalized_form(text: str) -> list[dict]:
    """The canonical content of a patch: what the key hashes. Empty for no real change."""
    parsed = parse_patch(text)
    files: list[dict] = []
    for fp in parsed.files:
        entry: dict = {"path": fp.path, "status": fp.status}
        if fp.status in ("renamed", "copied"):
            entry["from"] = fp.old_path
        if fp.old_mode and fp.new_mode and fp.old_mode != fp.new_mode:
            entry["mode"] = [fp.old_mode, fp.new_mode]
        elif fp.status == "added" and fp.new_mode:
            entry["mode"] = [None, fp.new_mode]
        if fp.binary:
            entry["binary"] = fp.binary_digest
        python = _is_python(fp.path)
        blocks = [b for h in fp.hunks for b in _change_blocks(h, python)]
        blocks.sort(key=lambda b: (b[0], b[1], b[2]))
        if blocks:
            entry["changes"] = blocks
        # A modified text file whose changes all vanished is no change at all.
        if fp.status == "modified" and not blocks and not fp.binary and "mode" not in entry:
            continue
        files.append(entry)
    files.sort(key=lambda e: (e["path"], e.get("from") or ""))
    return files


def patch_key(text: str) -> str:
    """sha256 of the normalized form: equal keys mean the same fix. "" for no change."""
    form = normalized_form(text)
    if not form:
        return ""
    return hashlib.sha256(json.dumps(form, sort_keys=True).encode()).hexdigest()


def candidate_id(key: str) -> str:
    """Short, stable id of a normalized patch: the same fix gets the same id in any run."""
    return key[:CANDIDATE_ID_LENGTH]


def votes(candidate: Candidate) -> int:
    """How many producers (trajectories and foreign systems) arrived at this patch."""
    return len(candidate.trajectory_ids) + len(candidate.sources)
