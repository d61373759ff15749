"""An image cache with a size limit: last use is recorded per tag, and pruning removes the
least recently used swescale images until the total fits.

Sizes are Docker's per-image sizes, which count shared base layers once per image; the
limit is therefore conservative (it prunes earlier than the disk would require).
"""

from __future__ import annotations

import fcntl
import json
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors

from swescale.sandbox.engine import LABEL

if TYPE_CHECKING:
    from collections.abc import Iterator

    import docker


@dataclass
class CachedImage:
    tag: str
    size: int
    last_used: float
    id: str


# When this process last recorded a use of each tag: a sandbox start records at most one
# use of its image per USE_INTERVAL seconds (the file is rewritten under a lock).
USE_INTERVAL = 300.0
_noted: dict[tuple[str, str], float] = {}


def note_use(tag: str, cache_dir: Path | None = None) -> None:
    """Record that a sandbox started from ``tag`` now (``images list`` shows it, and
    ``images prune`` removes the least recently used first). Never raises."""
    import logging

    from swescale.sandbox.config import ImagesConfig

    folder = Path(cache_dir) if cache_dir else ImagesConfig().cache_dir
    key, now = (str(folder), tag), time.time()
    if now - _noted.get(key, 0.0) < USE_INTERVAL:
        return
    _noted[key] = now
    try:
        ImageCache(folder).touch(tag)
    except OSError:
        logging.getLogger(__name__).debug("could not record the use of %s", tag, exc_info=True)


@contextmanager
def recency_file(path: Path) -> Iterator[dict[str, float]]:
    """The JSON map of image -> last use at ``path``, read and written back under an
    exclusive file lock (one writer across processes); a torn file reads as empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except (json.JSONDecodeError, OSError):
            data = {}  # a torn file loses recency only, never images
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=0, sort_keys=True))
        tmp.replace(path)


class ImageCache:
    def __init__(self, cache_dir: Path, limit_gb: float | None = None) -> None:
        self.path = Path(cache_dir) / "images.json"
        self.limit_bytes = int(limit_gb * 1e9) if limit_gb else None

    def enforce(self, client: docker.DockerClient, keep: set[str]) -> list[str]:
        """After a build: evict least recently used images if the cache is over its limit."""
        if self.limit_bytes is None:
            return []
        return self.prune(client, self.limit_bytes, keep=keep)

    def _locked(self) -> AbstractContextManager[dict[str, float]]:
        return recency_file(self.path)

    def touch(self, tag: str) -> None:
        with self._locked() as data:
            data[tag] = time.time()

    def images(self, client: docker.DockerClient) -> list[CachedImage]:
        with self._locked() as data:
            used = dict(data)
        found = []
        for image in client.images.list(filters={"label": f"{LABEL}=1"}):
            for tag in image.tags:
                found.append(
                    CachedImage(tag, int(image.attrs.get("Size", 0)), used.get(tag, 0.0), image.id)
                )
        return sorted(found, key=lambda i: i.last_used)

    def prune(
        self,
        client: docker.DockerClient,
        limit_bytes: int,
        keep: set[str] | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Remove least recently used images until the total is under ``limit_bytes``.
        Images in use by a container, or parents of other images, are skipped.
        ``dry_run``: remove nothing, return what would go (images a container uses are
        skipped as a real prune would skip them)."""
        images = self.images(client)
        total = sum(i.size for i in images)
        removed: list[str] = []
        for image in images:
            if total <= limit_bytes:
                break
            if keep and image.tag in keep:
                continue
            if dry_run:
                if client.containers.list(all=True, filters={"ancestor": image.tag}):
                    continue  # in use: a real prune could not remove it
            else:
                try:
                    client.images.remove(image.tag, noprune=False)
                except docker.errors.APIError:
                    continue  # in use, or other images build on it
            total -= image.size
            removed.append(image.tag)
        if removed and not dry_run:
            with self._locked() as data:
                for tag in removed:
                    data.pop(tag, None)
        return removed
