"""A patch as text that carries the agent's bytes exactly.

A repository state (``swescale.sandbox.state``) is git's binary diff: bytes. Most states
are UTF-8 and their text is the patch. A file that holds bytes that are not UTF-8 (a
Latin-1 string literal, say) is text to git, so its hunks carry those raw bytes, which no
JSON string (trajectory records, predictions) can hold: decoding them replaces them with
U+FFFD, and the patch then writes other bytes than the agent did.

``exact_patch`` rewrites just those files' sections as git binary patches: ``GIT binary
patch`` with ``literal`` hunks (zlib at git's default level, git's base85 lines), the
same format ``git diff --binary`` writes for a file marked ``binary``. That is ASCII, and
``git apply`` (the first official apply command) writes the bytes back exactly; a
section whose only non-UTF-8 bytes are in its paths keeps its text hunks and gets its
paths C-quoted (``"a/\\377.py"``), as git quotes them with ``core.quotePath``. A binary
section needs the file's old and new contents: git objects, named by the section's
full ``index`` line, that the caller reads from the repository. A section whose objects
are missing (or do not hash to their names) stays decoded with U+FFFD, and the result
lists its path under ``inexact``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

NULL_OID = "0" * 40
_INDEX = re.compile(rb"^index ([0-9a-f]{40})\.\.([0-9a-f]{40})(?: ([0-7]{6}))?$")
_BODY_STARTS = (b"--- ", b"+++ ", b"@@ ", b"GIT binary patch", b"Binary files ")
_PATH_LINES = (b"rename from ", b"rename to ", b"copy from ", b"copy to ")
# git's C quoting of a path (quote.c): these bytes as letter escapes, other control
# bytes, DEL and every byte from 0x80 up as octal.
_ESCAPES = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 34: '"', 92: "\\"}


@dataclass
class ExactPatch:
    """``text``: the patch; ``binary``: paths written as git binary patches for their
    bytes; ``inexact``: paths whose bytes the text does not carry (U+FFFD instead)."""

    text: str
    binary: list[str] = field(default_factory=list)
    inexact: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not self.inexact

    def note(self) -> str:
        """One sentence for a record when the text is not exact; "" when it is."""
        if not self.inexact:
            return ""
        return (
            "patch not exact: bytes that are not UTF-8 in "
            + ", ".join(self.inexact)
            + " are U+FFFD in the patch (their git objects could not be read)"
        )


def git_blob_id(data: bytes) -> str:
    """The object id git gives a blob of these bytes (SHA-1 repositories)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def literal_hunk(data: bytes) -> bytes:
    """One ``literal`` hunk of a git binary patch: the size, then the zlib stream in
    lines of up to 52 bytes, each led by its length (A-Z 1-26, a-z 27-52) and base85
    encoded in git's alphabet (``base64.b85encode`` is the same), then an empty line."""
    packed = zlib.compress(data, 1)  # core.compression's default: Z_BEST_SPEED
    out = [b"literal %d\n" % len(data)]
    for start in range(0, len(packed), 52):
        chunk = packed[start : start + 52]
        size = len(chunk)
        lead = bytes([ord("A") + size - 1 if size <= 26 else ord("a") + size - 27])
        out.append(lead + base64.b85encode(chunk, pad=True) + b"\n")
    out.append(b"\n")
    return b"".join(out)


def quote_path(path: bytes) -> str:
    """``path`` as git writes it in a patch header: as it is when it is plain UTF-8,
    else C-quoted with octal escapes (which ``git apply`` and ``patch`` read back)."""
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and not any(b < 32 or b == 127 or b in _ESCAPES for b in path):
        return text
    out = []
    for b in path:
        if b in _ESCAPES:
            out.append("\\" + _ESCAPES[b])
        elif b < 32 or b >= 127:
            out.append(f"\\{b:03o}")
        else:
            out.append(chr(b))
    return '"' + "".join(out) + '"'


def unquote_path(raw: bytes) -> bytes:
    """A header path as bytes: C-quoted (``"a/\\303\\244.py"``) or as it is."""
    if len(raw) < 2 or raw[:1] != b'"' or raw[-1:] != b'"':
        return raw
    body, out, i = raw[1:-1], bytearray(), 0
    letters = {v.encode(): k for k, v in _ESCAPES.items()}
    while i < len(body):
        if body[i : i + 1] == b"\\" and i + 1 < len(body):
            nxt = body[i + 1 : i + 2]
            if nxt in letters:
                out.append(letters[nxt])
                i += 2
                continue
            if re.fullmatch(rb"[0-7]{3}", body[i + 1 : i + 4]):
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
        out.append(body[i])
        i += 1
    return bytes(out)


def split_sections(blob: bytes) -> list[bytes]:
    """The patch's bytes cut before every ``diff --git`` line (anything before the first
    one is a section of its own)."""
    starts = [m.start() for m in re.finditer(rb"(?m)^diff --git ", blob)]
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return [blob[a:b] for a, b in zip(starts, [*starts[1:], len(blob)], strict=True)]


@dataclass
class _Section:
    header: list[bytes]  # the lines before the body, without their newlines
    body: bytes  # the rest, newlines included
    old_path: bytes
    new_path: bytes
    old_oid: str | None
    new_oid: str | None


def _parse(section: bytes) -> _Section | None:
    lines = section.split(b"\n")
    if not lines[0].startswith(b"diff --git "):
        return None
    header: list[bytes] = []
    rest_at = len(section)
    offset = 0
    for line in lines:
        if header and line.startswith(_BODY_STARTS):
            rest_at = offset
            break
        header.append(line)
        offset += len(line) + 1
    while header and header[-1] == b"":
        header.pop()  # the section's final newline
    body = section[rest_at:] if rest_at < len(section) else b""
    renamed = {
        k: unquote_path(line[len(k) :])
        for line in header
        for k in _PATH_LINES
        if line.startswith(k)
    }
    old_path = renamed.get(b"rename from ") or renamed.get(b"copy from ")
    new_path = renamed.get(b"rename to ") or renamed.get(b"copy to ")
    if old_path is None or new_path is None:
        both = _same_paths(header[0][len(b"diff --git ") :])
        if both is None:
            return None
        old_path = old_path or both
        new_path = new_path or both
    oids = next((_INDEX.match(line) for line in header if _INDEX.match(line)), None)
    old_oid = oids.group(1).decode() if oids else None
    new_oid = oids.group(2).decode() if oids else None
    return _Section(header, body, old_path, new_path, old_oid, new_oid)


def _same_paths(rest: bytes) -> bytes | None:
    """The path of ``a/P b/P`` (or the quoted form) when both sides name the same file."""
    if rest.startswith(b'"'):
        match = re.fullmatch(rb'("(?:[^"\\]|\\.)*") ("(?:[^"\\]|\\.)*")', rest)
        if not match:
            return None
        first, second = unquote_path(match.group(1)), unquote_path(match.group(2))
        return first[2:] if first[2:] == second[2:] else None
    size = (len(rest) - 5) // 2
    if size <= 0 or rest[:2] != b"a/" or rest[2 + size : 5 + size] != b" b/":
        return None
    path = rest[2 : 2 + size]
    return path if rest[5 + size :] == path else None


def _header_text(sec: _Section) -> list[str]:
    out = []
    for line in sec.header:
        if line.startswith(b"diff --git "):
            out.append(
                f"diff --git {quote_path(b'a/' + sec.old_path)} {quote_path(b'b/' + sec.new_path)}"
            )
            continue
        key = next((k for k in _PATH_LINES if line.startswith(k)), None)
        if key is not None:
            path = sec.old_path if b"from" in key else sec.new_path
            out.append(key.decode() + quote_path(path))
            continue
        out.append(line.decode("utf-8", "replace"))
    return out


def _text_body(sec: _Section) -> str | None:
    """The text hunks with requoted ``---``/``+++`` paths; None when the hunks
    themselves are not UTF-8."""
    lines = sec.body.split(b"\n")
    out = []
    in_hunks = False
    for line in lines:
        in_hunks = in_hunks or line.startswith(b"@@")
        if not in_hunks and line.startswith(b"--- ") and line != b"--- /dev/null":
            line = b"--- " + quote_path(b"a/" + sec.old_path).encode()
        elif not in_hunks and line.startswith(b"+++ ") and line != b"+++ /dev/null":
            line = b"+++ " + quote_path(b"b/" + sec.new_path).encode()
        out.append(line)
    try:
        return b"\n".join(out).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _content(oid: str | None, objects: Mapping[str, bytes]) -> bytes | None:
    if oid == NULL_OID:
        return b""
    data = objects.get(oid or "")
    return data if data is not None and git_blob_id(data) == oid else None


def needed_objects(blob: bytes) -> list[str]:
    """Object ids ``exact_patch`` needs for ``blob``: both sides of every section that
    is not UTF-8 (none for a UTF-8 blob)."""
    try:
        blob.decode("utf-8")
        return []
    except UnicodeDecodeError:
        pass
    wanted: set[str] = set()
    for section in split_sections(blob):
        sec = _needs_rewrite(section)
        if sec is not None:
            wanted |= {o for o in (sec.old_oid, sec.new_oid) if o and o != NULL_OID}
    return sorted(wanted)


def _needs_rewrite(section: bytes) -> _Section | None:
    try:
        section.decode("utf-8")
        return None
    except UnicodeDecodeError:
        return _parse(section)


def exact_patch(blob: bytes, objects: Mapping[str, bytes] | None = None) -> ExactPatch:
    """The text of a git diff's bytes that ``git apply`` turns back into the same files
    (see the module docstring). ``objects``: object id -> contents for
    ``needed_objects(blob)``; contents that do not hash to their id are not used. Pure."""
    try:
        return ExactPatch(blob.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    objects = objects or {}
    result = ExactPatch("")
    parts: list[str] = []
    for section in split_sections(blob):
        sec = _needs_rewrite(section)
        if sec is None:
            try:
                parts.append(section.decode("utf-8"))
            except UnicodeDecodeError:  # stray bytes before the first file
                parts.append(section.decode("utf-8", "replace"))
                result.inexact.append("(text before the first file)")
            continue
        path = quote_path(sec.new_path)
        text = _text_body(sec)
        if text is not None:
            parts.append("\n".join(_header_text(sec)) + "\n" + text)
            continue
        old, new = _content(sec.old_oid, objects), _content(sec.new_oid, objects)
        if old is None or new is None:
            parts.append(section.decode("utf-8", "replace"))
            result.inexact.append(path)
            continue
        binary = b"GIT binary patch\n" + literal_hunk(new) + literal_hunk(old)
        parts.append("\n".join(_header_text(sec)) + "\n" + binary.decode("ascii"))
        result.binary.append(path)
    result.text = "".join(parts)
    return result


def parse_cat_file_batch(data: bytes) -> dict[str, bytes]:
    """Object id -> contents from ``git cat-file --batch`` output (``<oid> <type>
    <size>\\n<contents>\\n`` per object, ``<oid> missing\\n`` for one it lacks)."""
    out: dict[str, bytes] = {}
    at = 0
    while at < len(data):
        end = data.find(b"\n", at)
        if end < 0:
            break
        fields = data[at:end].split(b" ")
        at = end + 1
        if len(fields) != 3 or not fields[2].isdigit():
            continue  # "<oid> missing" (or ambiguous): nothing follows
        size = int(fields[2])
        out[fields[0].decode("ascii", "replace")] = data[at : at + size]
        at += size + 1
    return out
