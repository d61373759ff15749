"""Parse unified diffs as real systems write them.

Patches arrive from git (``diff --git``, renames, mode changes, ``GIT binary patch``),
from ``diff -u`` (timestamps after the file names), from ``git format-patch`` (a mail
header before and a ``-- `` signature after), with CRLF line ends, without a newline at
the end, with hunk headers whose line counts are wrong (hand or model edited), or with
garbage around them. The parser never raises: what it cannot read becomes a warning.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_DIFF_GIT = re.compile(r"^diff --git (.+)$")


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


def changed_paths(text: str) -> list[str]:
    """Files a patch touches (new names for renames), sorted."""
    return parse_patch(text).paths


def files_of(text: str) -> set[str]:
    """Every path a patch names, old and new (a rename counts both)."""
    found: set[str] = set()
    for fp in parse_patch(text).files:
        found.update(p for p in (fp.old_path, fp.new_path) if p)
    return found


def restrict_to_files(text: str, paths: set[str]) -> str:
    """The sections of a ``diff --git`` patch whose files are among ``paths``, verbatim
    and in order (a section naming any of them is kept whole)."""
    sections = re.split(r"(?m)^(?=diff --git )", text)
    kept = []
    for section in sections:
        if not section.startswith("diff --git "):
            continue
        if files_of(section) & paths:
            kept.append(section)
    return "".join(kept)


def new_file_content(patch_text: str, path: str) -> str | None:
    """The full text of a file the patch creates (its added lines); None otherwise."""
    for fp in parse_patch(patch_text).files:
        if fp.path == path and fp.status == "added" and not fp.binary:
            return "".join(line[1:] + "\n" for h in fp.hunks for line in h.lines if line[:1] == "+")
    return None
