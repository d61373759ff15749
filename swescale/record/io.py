"""Reading and writing the files of a run directory: JSON written atomically, JSON lines
appended and fsynced, and tolerant readers that never raise on damage.

Writers: :func:`write_json_atomic` and :func:`write_text_atomic` (a reader, or a crash,
never sees half a file), :func:`append_jsonl` (a crash loses at most the line in flight).
Readers: :func:`read_json` and :func:`read_jsonl` return what can be read and, given a
``problems`` list, add one line per damaged part ("<file>[:line]: what"); the ``as_*``
functions read one field with its type's empty value when it has another type (a record
written by another version, or damaged), so a report never fails on a field.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str | bytes) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON (indented, keys sorted) so that a reader (or a crash) never sees half a
    file."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk: a crash loses at most the line in flight."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_json(
    path: Path, problems: list[str] | None = None, root: Path | None = None, default: Any = None
) -> Any:
    """The JSON value in ``path``; ``default`` when it is missing or unreadable. With
    ``problems``, an unreadable file that exists is noted there (its path relative to
    ``root``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return default
    except OSError as exc:
        _note(problems, path, root, f"cannot read: {exc}")
        return default
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        what = f"not valid UTF-8 ({exc.reason} at byte {exc.start}); read with the bytes replaced"
        _note(problems, path, root, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # The parser ran out of text: the file was cut off mid-write.
        cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(text.rstrip())
        what = "cut off" if cut else "not valid JSON"
        _note(problems, path, root, f"{what} ({exc}); skipped")
    return default


def read_jsonl(
    path: Path, problems: list[str] | None = None, root: Path | None = None
) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file; other lines are skipped (and noted in
    ``problems`` when given)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        _note(problems, path, root, f"cannot read: {exc}")
        return []
    rows = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="replace")
            _note(problems, path, root, "not valid UTF-8; read with the bytes replaced", number)
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            what = "cut off mid-write" if number == len(lines) else "not valid JSON"
            _note(problems, path, root, f"{what}; skipped", number)
            continue
        if isinstance(value, dict):
            rows.append(value)
        else:
            _note(problems, path, root, "not a JSON object; skipped", number)
    return rows


def relative(path: Path, root: Path | None) -> str:
    """``path`` as shown in a report: relative to the run directory when inside it."""
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _note(
    problems: list[str] | None, path: Path, root: Path | None, what: str, line: int = 0
) -> None:
    """Add "file: what" (or "file:line: what") to ``problems`` when there is a list."""
    if problems is not None:
        where = relative(path, root) + (f":{line}" if line else "")
        problems.append(f"{where}: {what}")


# Typed readings of record fields: a field of the wrong type (a record written by another
# version, or damaged) reads as the type's empty value instead of breaking a page.


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def as_float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_costs(value: Any) -> dict[str, float]:
    """A cost record (tokens_in, tokens_out, dollars, model_seconds, sandbox_seconds, ...)
    with its numeric fields only."""
    return {
        str(k): float(v)
        for k, v in as_dict(value).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def as_int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def as_float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
