"""Parse unified diffs as real systems write them, and reduce them to a normalized key.

Patches arrive from git (``diff --git``, renames, mode changes, ``GIT binary patch``),
from ``diff -u`` (timestamps after the file names), from ``git format-patch`` (a mail
header before and a ``-- `` signature after), with CRLF line ends, without a newline at
the end, with hunk headers whose line counts are wrong (hand or model edited), or with
garbage around them. The parser never raises: what it cannot read becomes a warning.

The key is what two patches must share to count as the same fix: per file, the changed
lines with whitespace-only and (for Python) comment-only differences removed, anchored to
their place in the original file, files and changes in a fixed order. ``index`` lines,
timestamps, context lines and hunk line numbers of the new file do not enter it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_DIFF_GIT = re.compile(r"^diff --git (.+)$")
_PUNCT_SPACES = re.compile(r"\s*([()\[\]{},:;=+\-*/<>!%&|^~@.])\s*")
_SPACES = re.compile(r"\s+")


@dataclass
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    # Lines with their prefix: " " context, "-" removed, "+" added.
    lines: list[str] = field(default_factory=list)


@dataclass
class FilePatch:
    old_path: str | None  # None for a new file
    new_path: str | None  # None for a deleted file
    old_mode: str | None = None
    new_mode: str | None = None
    status: str = "modified"  # modified | added | deleted | renamed | copied
    hunks: list[Hunk] = field(default_factory=list)
    binary: bool = False
    # sha256 of the binary payload (or of the "Binary files differ" line when git gave none).
    binary_digest: str | None = None

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


@dataclass
class ParsedPatch:
    files: list[FilePatch] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return sorted({f.path for f in self.files if f.path})


def _unquote(path: str) -> str:
    """git quotes paths with unusual characters: "a/sp\\303\\244ce.py"."""
    path = path.strip()
    if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
        raw = path[1:-1]
        try:
            return (
                raw.encode("latin-1", "backslashreplace")
                .decode("unicode_escape")
                .encode("latin-1")
                .decode("utf-8", "replace")
            )
        except (UnicodeDecodeError, UnicodeEncodeError):
            return raw
    return path


def _strip_prefix(path: str, prefix: str) -> str | None:
    # "--- a/x.py\t2024-01-01 10:00:00.000 +0000": diff -u puts a timestamp after a tab.
    path = _unquote(path.split("\t")[0].rstrip())
    if path == "/dev/null":
        return None
    if path.startswith(prefix):
        return path[len(prefix) :]
    return path


def _split_diff_git(rest: str) -> tuple[str | None, str | None]:
    """``diff --git a/x b/x``: the two paths, when they can be told apart."""
    rest = rest.strip()
    if rest.startswith('"'):
        end = rest.find('"', 1)
        first, second = rest[: end + 1], rest[end + 1 :].strip()
        return _strip_prefix(first, "a/"), _strip_prefix(second, "b/")
    if " b/" in rest:
        first, second = rest.split(" b/", 1)
        return _strip_prefix(first, "a/"), second
    parts = rest.split(" ")
    if len(parts) == 2:
        return parts[0], parts[1]
    return None, None


def parse_patch(text: str) -> ParsedPatch:
    """Read a unified diff into files and hunks; never raises."""
    result = ParsedPatch()
    if not isinstance(text, str) or not text.strip():
        return result
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    current: FilePatch | None = None
    i = 0
    n = len(lines)

    def start_file() -> FilePatch:
        fp = FilePatch(old_path=None, new_path=None)
        result.files.append(fp)
        return fp

    while i < n:
        line = lines[i]
        m = _DIFF_GIT.match(line)
        if m:
            current = start_file()
            current.old_path, current.new_path = _split_diff_git(m.group(1))
            i += 1
            continue
        if line.startswith("--- ") and i + 1 < n and lines[i + 1].startswith("+++ "):
            # A file header; with diff --git it refines the current file, without it opens one.
            if current is None or current.hunks or current.binary:
                current = start_file()
            current.old_path = _strip_prefix(line[4:], "a/")
            current.new_path = _strip_prefix(lines[i + 1][4:], "b/")
            if current.old_path is None:
                current.status = "added"
            elif current.new_path is None:
                current.status = "deleted"
            i += 2
            continue
        if current is not None and not current.hunks:
            if line.startswith(("new file mode ", "deleted file mode ", "old mode ", "new mode ")):
                mode = line.rsplit(" ", 1)[-1]
                if line.startswith("new file"):
                    current.status, current.new_mode, current.old_path = "added", mode, None
                elif line.startswith("deleted"):
                    current.status, current.old_mode, current.new_path = "deleted", mode, None
                elif line.startswith("old mode"):
                    current.old_mode = mode
                else:
                    current.new_mode = mode
                i += 1
                continue
            if line.startswith(("rename from ", "copy from ")):
                current.old_path = _unquote(line.split(" from ", 1)[1])
                current.status = "renamed" if line.startswith("rename") else "copied"
                i += 1
                continue
            if line.startswith(("rename to ", "copy to ")):
                current.new_path = _unquote(line.split(" to ", 1)[1])
                i += 1
                continue
            if line.startswith(("index ", "similarity index ", "dissimilarity index ")):
                i += 1
                continue
            if line.startswith("Binary files ") or line == "GIT binary patch":
                i = _read_binary(lines, i, current)
                continue
        hm = _HUNK_HEADER.match(line)
        if hm and current is not None:
            i = _read_hunk(lines, i, hm, current, result.warnings)
            continue
        if hm:
            result.warnings.append(f"line {i + 1}: hunk outside any file header, ignored")
        elif line.strip() and current is not None and current.hunks:
            result.warnings.append(f"line {i + 1}: unexpected text ignored: {line[:60]!r}")
        i += 1
    kept = []
    for fp in result.files:
        if fp.old_path is None and fp.new_path is None:
            result.warnings.append("a file header without readable paths was ignored")
            continue
        if fp.status == "modified" and fp.old_path and fp.new_path and fp.old_path != fp.new_path:
            fp.status = "renamed"
        kept.append(fp)
    result.files = kept
    return result


def _read_binary(lines: list[str], i: int, fp: FilePatch) -> int:
    fp.binary = True
    digest = hashlib.sha256()
    if lines[i].startswith("Binary files "):
        digest.update(lines[i].encode())
        fp.binary_digest = digest.hexdigest()
        return i + 1
    i += 1
    # "literal N" / "delta N" blocks of base85 lines (each starts with a length letter),
    # separated by blank lines; stop at the next file or anything else.
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git") or (line and not line[0].isalpha()):
            break
        digest.update(line.encode())
        i += 1
    fp.binary_digest = digest.hexdigest()
    return i


def _read_hunk(
    lines: list[str], i: int, hm: re.Match[str], fp: FilePatch, warnings: list[str]
) -> int:
    old_start, new_start = int(hm.group(1)), int(hm.group(3))
    old_len = int(hm.group(2)) if hm.group(2) is not None else 1
    new_len = int(hm.group(4)) if hm.group(4) is not None else 1
    hunk = Hunk(old_start, old_len, new_start, new_len)
    fp.hunks.append(hunk)
    old_left, new_left = old_len, new_len
    i += 1
    while i < len(lines):
        line = lines[i]
        counted = old_left > 0 or new_left > 0
        if line.startswith("\\"):  # "\ No newline at end of file"
            i += 1
            continue
        if counted:
            if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
                warnings.append(f"{fp.path}: hunk shorter than its header says")
                return i  # the next file's header, not a removed line
            if line == "":
                line = " "  # a context line whose trailing space an editor stripped
            kind = line[0]
            if kind == " ":
                old_left, new_left = old_left - 1, new_left - 1
            elif kind == "-":
                old_left -= 1
            elif kind == "+":
                new_left -= 1
            else:
                warnings.append(f"{fp.path}: hunk shorter than its header says")
                return i
            hunk.lines.append(line)
            i += 1
            continue
        # The header's counts are used up. Model-written patches often miscount, so keep
        # reading change lines, but never a new header or a format-patch signature ("-- ").
        if line == "-- " or not line or line[0] not in "+- ":
            return i
        if line.startswith(("--- ", "+++ ")) or _HUNK_HEADER.match(line):
            return i
        if line[0] == " " and (i + 1 >= len(lines) or lines[i + 1][:1] not in ("+", "-", " ")):
            return i
        warnings.append(f"{fp.path}: hunk longer than its header says")
        hunk.lines.append(line)
        i += 1
    if old_left > 0 or new_left > 0:
        warnings.append(f"{fp.path}: hunk shorter than its header says (patch ends)")
    return i


# ---------------------------------------------------------------------------- normalizing


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


def changed_paths(text: str) -> list[str]:
    """Files a patch touches (new names for renames), sorted."""
    return parse_patch(text).paths
