"""Images through a registry: names, pulls (retries, a rate limit, progress), pushes, and
the cap on the pulled images a host keeps.

```python
from swescale.sandbox.registry import PulledImages, qualified, push
name = qualified("127.0.0.1:5000", "swebench/sweb.eval.x86_64.x_1776_y-1:latest")
pulled = PulledImages.for_config(client, images_cfg)
with pulled.hold(name):          # present (pulled when missing), not evicted while held
    ...                          # start containers from it
push(client, "swescale/official:x-1234", name)   # publish a local image under a name
```

- **Pulls** are retried with exponential back-off and jitter (``tenacity``) when the
  failure is transient (the registry unreachable or answering 5xx/429); an image the
  registry does not have fails at once (``ImageMissing``). Each process starts at most
  ``images.pull_rate`` pulls per period (a moving window, ``limits``): a batch of
  hundreds of tasks does not hammer a public registry's rate limit.
- **Progress**: a pull streams per-layer progress; it is summed per image and given to
  every callback registered with :func:`pull_progress` (the commands show it), and
  logged every ``PROGRESS_LOG_SECONDS``.
- **The cap** (``images.keep_pulled``): the images this host pulled are remembered with
  their last use (``<cache_dir>/pulled.json``); after each pull, the least recently used
  beyond the cap are removed, skipping every image that is *in use*: held by a command
  of this host (a shared file lock per image that :meth:`PulledImages.hold` keeps while
  the image is used, released by the kernel when its process dies), or the image of any
  container, running or not. An evicted image is pulled again when next held.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker.errors
import requests.exceptions
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from swescale.sandbox.base import SandboxError
from swescale.sandbox.image_cache import recency_file

if TYPE_CHECKING:
    import docker

    from swescale.sandbox.config import ImagesConfig

log = logging.getLogger(__name__)

# host[:port][/path], as the engine accepts a registry prefix (no scheme, no tag).
_REGISTRY = re.compile(
    r"(?P<host>[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\])(:(?P<port>[0-9]{1,5}))?"
    r"(?P<path>(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
)
_RATE = re.compile(r"\s*[1-9][0-9]*\s*(/|per)\s*(second|minute|hour|day)\s*", re.I)
PROGRESS_LOG_SECONDS = 10.0


class RegistryError(SandboxError):
    """A pull or push failed; the message names the image, the registry and why."""


class ImageMissing(RegistryError):
    """The registry answers but does not have the image."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def check_registry(value: str) -> str:
    """``value`` as a registry address (``host:port[/prefix]``), stripped of a trailing
    slash; "" stays "". ValueError for a scheme, a tag or anything the engine would
    not take as a registry prefix."""
    value = value.strip().rstrip("/")
    if not value:
        return ""
    if "://" in value:
        raise ValueError(f"registry {value!r}: give host:port without a scheme")
    if not _REGISTRY.fullmatch(value):
        raise ValueError(f"registry {value!r} is not host[:port][/prefix] (e.g. 127.0.0.1:5000)")
    return value


def check_rate(value: str) -> str:
    """A pull rate such as "30/minute" (per second, minute, hour or day)."""
    if not _RATE.fullmatch(value):
        raise ValueError(f"pull rate {value!r} is not N/second|minute|hour|day (e.g. 30/minute)")
    return value.strip()


def qualified(registry: str, name: str) -> str:
    """``name`` in ``registry``: "r:5000" and "swebench/x:latest" -> "r:5000/swebench/x:latest"."""
    return f"{registry.rstrip('/')}/{name}" if registry else name


def split_name(name: str) -> tuple[str, str]:
    """(repository, tag) of an image name; the tag is "latest" when none is given (a
    registry's port is not a tag)."""
    repository, _, tag = name.rpartition(":")
    if not repository or "/" in tag:
        return name, "latest"
    return repository, tag


# -- progress --------------------------------------------------------------------------


@dataclass
class PullProgress:
    """One image's transfer so far: bytes over the layers whose size is known."""

    name: str
    done_bytes: int = 0
    total_bytes: int = 0
    layers: int = 0
    layers_done: int = 0
    seconds: float = 0.0
    finished: bool = False

    def describe(self) -> str:
        mb = f"{self.done_bytes / 1e6:.0f}/{self.total_bytes / 1e6:.0f} MB"
        return f"pulling {self.name}: {mb}, {self.layers_done}/{self.layers} layers"


_listeners: list[Callable[[PullProgress], None]] = []
_listeners_lock = threading.Lock()


@contextlib.contextmanager
def pull_progress(callback: Callable[[PullProgress], None]) -> Iterator[None]:
    """Give ``callback`` the progress of every pull this process makes meanwhile."""
    with _listeners_lock:
        _listeners.append(callback)
    try:
        yield
    finally:
        with _listeners_lock:
            _listeners.remove(callback)


def _report(progress: PullProgress) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for callback in listeners:
        with contextlib.suppress(Exception):  # a display never breaks a pull
            callback(progress)


class _Layers:
    """Per-layer bytes of a pull or push stream, summed."""

    DONE = (
        "Download complete",
        "Pull complete",
        "Already exists",
        "Pushed",
        "Layer already exists",
    )

    def __init__(self, name: str) -> None:
        self.progress = PullProgress(name)
        self.sizes: dict[str, tuple[int, int]] = {}
        self.done: set[str] = set()
        self.start = time.monotonic()
        self.last_report = 0.0
        self.last_log = self.start

    def feed(self, item: dict[str, Any]) -> None:
        layer, status = item.get("id"), str(item.get("status", ""))
        if not layer or ":" in str(layer) or status.startswith(("Pulling from", "Digest")):
            return
        detail = item.get("progressDetail") or {}
        if status in ("Downloading", "Pushing") and detail.get("total"):
            self.sizes[layer] = (int(detail.get("current", 0)), int(detail["total"]))
        elif status in self.DONE:
            self.done.add(layer)
            current, total = self.sizes.get(layer, (0, 0))
            self.sizes[layer] = (total, total)
        else:
            self.sizes.setdefault(layer, (0, 0))
        now = time.monotonic()
        if now - self.last_report >= 0.5:
            self.last_report = now
            _report(self.snapshot())
        if now - self.last_log >= PROGRESS_LOG_SECONDS:
            self.last_log = now
            log.info("%s", self.snapshot().describe())

    def snapshot(self, finished: bool = False) -> PullProgress:
        p = self.progress
        p.done_bytes = sum(min(c, t) for c, t in self.sizes.values())
        p.total_bytes = sum(t for _, t in self.sizes.values())
        p.layers, p.layers_done = len(self.sizes), len(self.done)
        p.seconds, p.finished = time.monotonic() - self.start, finished
        return p


# -- pulls and pushes ------------------------------------------------------------------


class _StreamError(RegistryError):
    """An error line in a pull or push stream (transient: the stream broke)."""


def _transient(exc: BaseException) -> bool:
    """Worth another attempt: the registry unreachable, overloaded or rate limiting."""
    if isinstance(exc, ImageMissing | docker.errors.NotFound):
        return False
    if isinstance(exc, _StreamError | requests.exceptions.RequestException):
        return True
    if isinstance(exc, docker.errors.APIError):
        text = str(exc).lower()
        if "toomanyrequests" in text or "rate limit" in text:
            return True
        return exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429
    return False


class _RateLimit:
    """A moving window of pull starts per process, per rate string."""

    _limiters: dict[str, Any] = {}
    _guard = threading.Lock()

    @classmethod
    def wait(cls, rate: str) -> None:
        from limits import parse, storage, strategies

        with cls._guard:
            if rate not in cls._limiters:
                limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
                cls._limiters[rate] = (limiter, parse(rate))
            limiter, item = cls._limiters[rate]
        while not limiter.hit(item, "pull"):
            reset = limiter.get_window_stats(item, "pull").reset_time
            time.sleep(min(max(reset - time.time(), 0.05), 5.0))


def _retrying(retries: int, what: str) -> Retrying:
    def before_sleep(state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed (attempt %d of %d): %s; retrying",
            what,
            state.attempt_number,
            retries,
            str(exc)[:300],
        )

    return Retrying(
        stop=stop_after_attempt(retries),
        wait=wait_exponential_jitter(initial=1, max=30),
        retry=retry_if_exception(_transient),
        before_sleep=before_sleep,
        reraise=True,
    )


def pull(client: docker.DockerClient, name: str, *, retries: int = 4, rate: str = "") -> str:
    """Pull ``name`` (repository[:tag]) into the engine; returns the image id.
    ImageMissing when the registry does not have it, RegistryError when every attempt
    failed (unreachable registry, broken stream); both name the image."""
    repository, tag = split_name(name)

    def once() -> str:
        if rate:
            _RateLimit.wait(rate)
        layers = _Layers(name)
        for item in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if isinstance(item, dict) and item.get("error"):
                raise _StreamError(f"pulling {name}: {item['error']}")
            if isinstance(item, dict):
                layers.feed(item)
        done = layers.snapshot(finished=True)
        _report(done)
        log.info("pulled %s (%.0f MB, %.1fs)", name, done.total_bytes / 1e6, done.seconds)
        return str(client.images.get(name).id)

    try:
        return _retrying(retries, f"pulling {name}")(once)
    except docker.errors.NotFound as exc:
        raise ImageMissing(f"{name} is not in its registry ({_short(exc)})", name) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise RegistryError(
            f"cannot pull {name} after {retries} attempt(s): {_short(exc)}"
        ) from exc


def push(
    client: docker.DockerClient,
    local: str,
    remote: str,
    *,
    retries: int = 4,
    progress: Callable[[PullProgress], None] | None = None,
    keep_remote_tag: bool = False,
) -> str:
    """Push the local image ``local`` as ``remote`` (``registry/repository:tag``); returns
    the digest the registry gave it. The ``remote`` tag is removed from the engine
    afterwards (the image stays under ``local``) unless ``keep_remote_tag``."""
    repository, tag = split_name(remote)
    digest = ""

    def once() -> None:
        nonlocal digest
        layers = _Layers(remote)
        for item in client.api.push(repository, tag=tag, stream=True, decode=True):
            if isinstance(item, dict) and item.get("error"):
                raise _StreamError(f"pushing {remote}: {item['error']}")
            if isinstance(item, dict):
                digest = str((item.get("aux") or {}).get("Digest") or digest)
                layers.feed(item)
                if progress:
                    progress(layers.snapshot())
        if progress:
            progress(layers.snapshot(finished=True))

    try:
        client.images.get(local).tag(repository, tag)
        _retrying(retries, f"pushing {remote}")(once)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise RegistryError(f"cannot push {local} as {remote}: {_short(exc)}") from exc
    finally:
        if not keep_remote_tag and remote != local:
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(remote, noprune=True)
    return digest


def in_registry(client: docker.DockerClient, name: str) -> bool:
    """Whether the registry of ``name`` has it (asked through the engine, which knows the
    registry's TLS and credentials). RegistryError when the registry does not answer."""
    try:
        client.api.inspect_distribution(name)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code in (401, 403):
            return False  # the registry hides what one may not pull
        raise RegistryError(f"cannot reach the registry of {name}: {_short(exc)}") from exc
    return True


def _short(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)[:300]


# -- the pulled images of this host ----------------------------------------------------


class PulledImages:
    """The images this host pulled, held while used and capped at ``keep`` (0: no cap).

    Thread- and process-safe: recency lives in one JSON file under a file lock, and each
    image has a lock file that users hold shared and an eviction takes exclusively
    without waiting (a held image is skipped)."""

    def __init__(
        self,
        client: docker.DockerClient,
        cache_dir: Path,
        keep: int = 0,
        retries: int = 4,
        rate: str = "",
    ) -> None:
        self.client = client
        self.path = Path(cache_dir) / "pulled.json"
        self.lease_dir = Path(cache_dir) / "leases"
        self.keep, self.retries, self.rate = keep, retries, rate

    @classmethod
    def for_config(cls, client: docker.DockerClient, images: ImagesConfig) -> PulledImages:
        return cls(
            client,
            images.cache_dir,
            keep=images.keep_pulled,
            retries=images.pull_retries,
            rate=images.pull_rate,
        )

    # -- recency ---------------------------------------------------------------------

    def _recency(self) -> contextlib.AbstractContextManager[dict[str, float]]:
        return recency_file(self.path)

    def listing(self) -> list[tuple[str, float]]:
        """(name, last use) of the pulled images on record, least recently used first."""
        with self._recency() as data:
            return sorted(data.items(), key=lambda item: item[1])

    # -- use -------------------------------------------------------------------------

    def _lease_file(self, name: str) -> Path:
        self.lease_dir.mkdir(parents=True, exist_ok=True)
        return self.lease_dir / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".lock")

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[str]:
        """``name`` present on the engine (pulled when missing) and kept from eviction
        until the block ends. Raises ImageMissing or RegistryError (see :func:`pull`)."""
        with open(self._lease_file(name), "w") as lease:
            # Shared: many users at once; an eviction in progress finishes first.
            fcntl.flock(lease, fcntl.LOCK_SH)
            pulled = False
            if not self._present(name):
                pull(self.client, name, retries=self.retries, rate=self.rate)
                pulled = True
            with self._recency() as data:
                if pulled or name in data:
                    data[name] = time.time()
            if pulled:
                removed = self.enforce(keep={name})
                if removed:
                    log.info("pulled images over the cap of %d: removed %s", self.keep, removed)
            yield name

    def ensure(self, name: str) -> str:
        """``name`` present (pulled when missing; see :meth:`hold`)."""
        with self.hold(name):
            return name

    def _present(self, name: str) -> bool:
        try:
            self.client.images.get(name)
        except docker.errors.ImageNotFound:
            return False
        return True

    # -- the cap ---------------------------------------------------------------------

    def enforce(self, keep: set[str] | None = None, cap: int | None = None) -> list[str]:
        """Remove least recently used pulled images until at most ``cap`` (default: the
        configured ``keep``; 0: no cap) remain, never one in ``keep``, held, or the image
        of a container. Returns the names removed."""
        cap = self.keep if cap is None else cap
        if not cap:
            return []
        with self._recency() as data:
            order = sorted(data.items(), key=lambda item: item[1])
        present = [name for name, _ in order if self._present(name)]
        gone = {name for name, _ in order} - set(present)
        removed: list[str] = []
        excess = len(present) - cap
        for name in present:
            if excess <= 0:
                break
            if (keep and name in keep) or not self._evict(name):
                continue
            removed.append(name)
            excess -= 1
        if removed or gone:
            with self._recency() as data:
                for name in (*removed, *gone):
                    data.pop(name, None)
        return removed

    def _evict(self, name: str) -> bool:
        with open(self._lease_file(name), "w") as lease:
            try:
                fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # held by a command of this host
            try:
                if self.client.containers.list(all=True, filters={"ancestor": name}):
                    return False  # a container (running or not) uses it
                self.client.images.remove(name)
            except docker.errors.ImageNotFound:
                return True
            except docker.errors.APIError as exc:
                log.debug("%s kept: %s", name, _short(exc))
                return False
            return True
