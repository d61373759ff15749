"""Least-loaded balancing of model endpoints across a cluster.

One :class:`LeastLoaded` counter (a Ray actor during a cluster run) holds the in-flight
requests of every endpoint from every node, so a request goes to the endpoint with the
fewest requests in flight *in the whole cluster*, not only from its own process. Ties go
round-robin, as in the single-process client. Each node keeps its own cool-down of an
endpoint that just failed (it skips it for a few seconds, as the local client does).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from swescale.agent.config import ModelConfig
from swescale.agent.models.openai_client import OpenAIModel


class LeastLoaded:
    """In-flight counts of ``size`` endpoints; thread-safe."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("LeastLoaded needs at least one endpoint")
        self.in_flight = [0] * size
        self.served = [0] * size
        self._turn = 0
        self._lock = threading.Lock()

    def acquire(self, ready: list[int] | None = None) -> int:
        """The endpoint (index) to send the next request to, among ``ready`` (all when
        None or empty); counts it in flight."""
        n = len(self.in_flight)
        candidates = [i for i in (ready or range(n)) if 0 <= i < n] or list(range(n))
        with self._lock:
            self._turn += 1
            chosen = min(candidates, key=lambda i: (self.in_flight[i], (i - self._turn) % n))
            self.in_flight[chosen] += 1
            return chosen

    def release(self, index: int) -> None:
        with self._lock:
            self.in_flight[index] = max(self.in_flight[index] - 1, 0)
            self.served[index] += 1

    def counts(self) -> dict[str, list[int]]:
        with self._lock:
            return {"in_flight": list(self.in_flight), "served": list(self.served)}


class BalancedModel(OpenAIModel):
    """The OpenAI-wire client whose endpoint choice asks a shared :class:`LeastLoaded`
    (through ``acquire(ready) -> index`` and ``release(index)`` callables). Everything
    else -- retries, cool-down, condensing -- is the client's own."""

    def __init__(
        self,
        cfg: ModelConfig,
        endpoints: list[str],
        acquire: Any,
        release: Any,
    ) -> None:
        super().__init__(cfg, endpoints=endpoints)
        self._shared_acquire = acquire
        self._shared_release = release

    def _acquire(self) -> Any:
        now = time.monotonic()
        with self._lock:
            ready = [i for i, e in enumerate(self._endpoints) if e.cooldown_until <= now]
        index = int(self._shared_acquire(ready))
        endpoint = self._endpoints[index]
        with self._lock:
            endpoint.in_flight += 1
        return endpoint

    def _release(self, endpoint: Any, failed: bool) -> None:
        super()._release(endpoint, failed)
        self._shared_release(self._endpoints.index(endpoint))
