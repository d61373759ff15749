"""A warm pool of pre-started sandboxes for one image.

Acquiring takes a ready sandbox (container running, shell session open) and starts a
replacement in the background. A released sandbox is destroyed, never handed to another
trajectory: trajectories must not see each other's leftovers.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING

from swescale.sandbox.config import SandboxConfig
from swescale.sandbox.docker_sandbox import DockerSandbox

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)


class WarmPool:
    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        cfg: SandboxConfig | None = None,
        size: int = 2,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.client, self.image, self.cfg = client, image, cfg or SandboxConfig()
        self.size, self.labels = size, labels or {}
        self._ready: queue.Queue[DockerSandbox] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        for _ in range(size):
            self._refill()

    def _refill(self) -> None:
        def start() -> None:
            try:
                sandbox = DockerSandbox.create(self.client, self.image, self.cfg, self.labels)
            except Exception as exc:  # noqa: BLE001 - a failed warm start falls back to cold
                log.warning("warm pool could not start a sandbox: %s", exc)
                return
            with self._lock:
                if self._closed:
                    sandbox.close()
                    return
                self._ready.put(sandbox)

        thread = threading.Thread(target=start, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def acquire(self, timeout: float = 0.0) -> DockerSandbox:
        """A ready sandbox, or a cold start when none is ready within ``timeout``."""
        try:
            sandbox = self._ready.get(timeout=timeout) if timeout else self._ready.get_nowait()
        except queue.Empty:
            sandbox = DockerSandbox.create(self.client, self.image, self.cfg, self.labels)
        if not self._closed:
            self._refill()
        return sandbox

    def release(self, sandbox: DockerSandbox) -> None:
        sandbox.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        for thread in self._threads:
            thread.join(timeout=60)
        while True:
            try:
                self._ready.get_nowait().close()
            except queue.Empty:
                break

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
