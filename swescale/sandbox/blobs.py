"""Content-addressed storage of repository states (binary diffs), one file per sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

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
