"""The record's format version: a reader of any release knows what a directory holds.

Every record directory written by this release starts with ``record.json``::

    {"format": "swescale-record", "format_version": 2, "kind": "run", "written_by": "0.2.0"}

and every trajectory header carries ``format_version``. Version 1 is the layout before
versions were written (the same files and fields; read as they are). A directory or
trajectory of a newer version than :data:`FORMAT_VERSION` is refused with
:class:`NewerFormatError` naming both versions, never misread.

History:
  1  run directories and trajectory records before ``record.json``
  2  ``record.json``; trajectory headers name their format version and, for imported
     trajectories, the source format, model and file; steps may carry ``chat``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from swescale.record.io import read_json, write_json_atomic
from swescale.record.layout import RECORD_JSON

FORMAT_VERSION = 2
FORMAT_NAME = "swescale-record"
Kind = Literal["run", "ensemble", "replay", "select", "ci"]


class NewerFormatError(ValueError):
    """A record written by a newer swescale than this one can read."""


def _release() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("swescale")
    except PackageNotFoundError:
        return "unknown"


def check_version(found: Any, where: str | Path) -> int:
    """The format version ``found`` (None or missing: 1), or NewerFormatError when this
    release cannot read it."""
    if found is None:
        return 1
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise NewerFormatError(f"{where}: format_version {found!r} is not a version")
    if found > FORMAT_VERSION:
        raise NewerFormatError(
            f"{where} was written by a newer swescale (record format {found}); this release "
            f"reads formats 1 to {FORMAT_VERSION}: upgrade swescale to read it"
        )
    return found


def directory_version(root: Path | str) -> int:
    """The record format of the directory ``root`` (1 for one written before versions);
    NewerFormatError for a newer one."""
    marker = Path(root) / RECORD_JSON
    data = read_json(marker)
    if data is None:
        if marker.exists():
            raise NewerFormatError(f"{marker}: unreadable format marker")
        return 1
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise NewerFormatError(f"{marker}: not a swescale record marker")
    return check_version(data.get("format_version"), Path(root))


def mark_directory(root: Path | str, kind: Kind) -> None:
    """Write ``record.json`` unless it is there; refuse a directory of a newer format
    (appending to it would mix two formats)."""
    root = Path(root)
    marker = root / RECORD_JSON
    if marker.exists():
        directory_version(root)
        return
    write_json_atomic(
        marker,
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "written_by": _release(),
        },
    )


def describe(root: Path | str) -> dict[str, Any]:
    """What ``record.json`` says (empty for a version-1 directory)."""
    try:
        return json.loads((Path(root) / RECORD_JSON).read_text())
    except (OSError, ValueError):
        return {}
