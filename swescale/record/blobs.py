"""Content-addressed storage of repository states (binary diffs), one file per sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from swescale.types import StateRef


class BlobStore:
    """``put`` is idempotent and atomic (write to a temp file, then rename), so a crash
    never leaves a half-written blob under a valid name."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / sha256

    def put(self, blob: bytes) -> StateRef:
        digest = hashlib.sha256(blob).hexdigest()
        target = self.path(digest)
        if not target.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        return StateRef(sha256=digest, size=len(blob))

    def get(self, sha256: str) -> bytes:
        try:
            blob = self.path(sha256).read_bytes()
        except FileNotFoundError as exc:
            raise KeyError(f"no blob {sha256} in {self.root}") from exc
        if hashlib.sha256(blob).hexdigest() != sha256:
            raise ValueError(f"blob {sha256} in {self.root} is corrupt (hash mismatch)")
        return blob

    def __contains__(self, sha256: str) -> bool:
        return self.path(sha256).exists()


def read_blob_diff(blobs_dir: Path, state: Any, limit: int = 400_000) -> str | None:
    """The repository diff a step's ``state`` names (a binary diff against the base
    commit, stored by sha256), as text; None when the blob is missing or unreadable.
    Tolerates other layouts: a ``<sha>.diff`` or ``<sha>.gz`` file beside it."""
    sha = state.get("sha256") if isinstance(state, dict) else None
    if not isinstance(sha, str) or not sha:
        return None
    for candidate in (blobs_dir / sha, blobs_dir / f"{sha}.diff", blobs_dir / f"{sha}.gz"):
        if not candidate.is_file():
            continue
        try:
            data = candidate.read_bytes()
        except OSError:
            return None
        if data[:2] == b"\x1f\x8b":
            import gzip

            try:
                data = gzip.decompress(data)
            except OSError:
                return None
        return data[:limit].decode("utf-8", errors="replace")
    return None
