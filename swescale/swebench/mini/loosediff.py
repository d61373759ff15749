"""Edits written as unified diffs without line numbers, applied to in-memory file trees.

The fixture histories and the task patches are written in this form because it reads like
the diff a reviewer expects while staying robust to edits elsewhere in a file: a hunk is
found by its text, not by its position. The real unified diffs shipped with the tasks are
computed afterwards by git from the resulting trees, so their hunk headers are exact.

Format::

    --- a/pkg/mod.py            (``--- /dev/null`` creates a file)
    +++ b/pkg/mod.py            (``+++ /dev/null`` deletes it)
    @@ free text, ignored
     context line
    -removed line
    +added line
                                (an empty line is an empty context line)

Every hunk's old text (context and removed lines) must occur exactly once in the part of
the file after the previous hunk, so an edit that no longer matches fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FileTree = dict[str, str]


class LooseDiffError(ValueError):
    """A loose diff that is malformed or does not match the tree it is applied to."""


@dataclass
class _Hunk:
    old: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)


@dataclass
class _FileEdit:
    old_path: str | None
    new_path: str | None
    hunks: list[_Hunk] = field(default_factory=list)


def _strip_prefix(header: str, marker: str) -> str | None:
    path = header[len(marker) :].strip()
    if path == "/dev/null":
        return None
    if path.startswith(("a/", "b/")):
        return path[2:]
    raise LooseDiffError(f"path in {header!r} must start with a/ or b/ or be /dev/null")


def _parse(text: str) -> list[_FileEdit]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    edits: list[_FileEdit] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("--- "):
            if line.strip() and not edits:
                raise LooseDiffError(f"expected '--- a/path', got {line!r}")
            if not edits:
                i += 1
                continue
            hunks = edits[-1].hunks
            if line.startswith("@@"):
                hunks.append(_Hunk())
            elif not hunks:
                raise LooseDiffError(f"line before the first '@@' of a file: {line!r}")
            elif line == "" or line.startswith(" "):
                hunks[-1].old.append(line[1:])
                hunks[-1].new.append(line[1:])
            elif line.startswith("-"):
                hunks[-1].old.append(line[1:])
            elif line.startswith("+"):
                hunks[-1].new.append(line[1:])
            else:
                raise LooseDiffError(f"hunk line must start with ' ', '-' or '+': {line!r}")
            i += 1
            continue
        if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
            raise LooseDiffError(f"'{line}' is not followed by a '+++ ' line")
        edit = _FileEdit(_strip_prefix(line, "--- "), _strip_prefix(lines[i + 1], "+++ "))
        if edit.old_path is None and edit.new_path is None:
            raise LooseDiffError("a file edit cannot go from /dev/null to /dev/null")
        edits.append(edit)
        i += 2
    return edits


def _find_once(lines: list[str], needle: list[str], start: int) -> int:
    hits = [
        pos
        for pos in range(start, len(lines) - len(needle) + 1)
        if lines[pos : pos + len(needle)] == needle
    ]
    if len(hits) != 1:
        found = "not found" if not hits else f"found {len(hits)} times"
        raise LooseDiffError(f"hunk text {found}: {needle[:3]!r}...")
    return hits[0]


def _apply_hunks(text: str, hunks: list[_Hunk], path: str) -> str:
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    start = 0
    for hunk in hunks:
        if not hunk.old:
            raise LooseDiffError(f"{path}: a hunk needs context or removed lines to anchor it")
        try:
            pos = _find_once(lines, hunk.old, start)
        except LooseDiffError as exc:
            raise LooseDiffError(f"{path}: {exc}") from None
        lines[pos : pos + len(hunk.old)] = hunk.new
        start = pos + len(hunk.new)
    return "\n".join(lines) + "\n" if lines else ""


def apply_loose_diff(tree: FileTree, diff: str) -> FileTree:
    """Return a new tree with ``diff`` applied; ``tree`` is left unchanged."""
    result = dict(tree)
    for edit in _parse(diff):
        if edit.new_path is None:
            if edit.old_path not in result:
                raise LooseDiffError(f"cannot delete missing file {edit.old_path}")
            del result[edit.old_path]
        elif edit.old_path is None:
            if edit.new_path in result:
                raise LooseDiffError(f"cannot create {edit.new_path}: it exists")
            added = [line for hunk in edit.hunks for line in hunk.new]
            result[edit.new_path] = "\n".join(added) + "\n"
        else:
            if edit.old_path not in result:
                raise LooseDiffError(f"cannot edit missing file {edit.old_path}")
            text = _apply_hunks(result.pop(edit.old_path), edit.hunks, edit.old_path)
            result[edit.new_path] = text
    return result


def touched_paths(diff: str) -> list[str]:
    """Paths a loose diff creates, edits or deletes, in order."""
    paths: list[str] = []
    for edit in _parse(diff):
        for path in (edit.old_path, edit.new_path):
            if path is not None and path not in paths:
                paths.append(path)
    return paths
