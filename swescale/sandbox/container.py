"""The container of a sandbox: what talks to the Docker engine and nothing else.

Starting a container from an image, locked down by default: no network unless the config
names one, memory (no swap), pids and CPU limits, every capability dropped,
``no-new-privileges``, no host mounts, no Docker socket, an environment made only of the
config's allow-list (nothing from the host), and labels naming this process as its owner
(:mod:`swescale.sandbox.owner`, which the reaper in :mod:`swescale.sandbox.gc` reads).
Then commands in fresh processes (``docker exec``), files in and out (the engine's
archive calls), the cgroup's out-of-memory count, and removal.

The persistent shell (:mod:`swescale.sandbox.session`) and the repository state
(:mod:`swescale.sandbox.state_reader`) open their own execs on the container this holds.
"""

from __future__ import annotations

import io
import logging
import posixpath
import tarfile
import time
from typing import TYPE_CHECKING, Any

import docker.errors

from swescale.sandbox.base import ImageNotFound, SandboxError
from swescale.sandbox.config import SandboxConfig
from swescale.sandbox.engine import ENGINE_ERRORS
from swescale.sandbox.image_cache import note_use
from swescale.sandbox.owner import owned_labels
from swescale.sandbox.stream import CappedOutput, FrameReader, raw_socket
from swescale.types import ExecResult

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

log = logging.getLogger(__name__)


def container_settings(cfg: SandboxConfig, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The keyword arguments of ``client.containers.run`` for a sandbox: the limits and
    isolation of ``cfg``, the owner labels plus ``labels`` (as ``swescale.<key>``). Pure
    apart from the owner labels (this process's identity). No ``volumes``, ``mounts`` or
    ``devices``: nothing of the host, the engine's socket included, is in a sandbox."""
    settings: dict[str, Any] = dict(
        command=["sleep", "infinity"],
        detach=True,
        init=True,  # reaps zombies left by killed commands
        labels=owned_labels(labels),
        environment=dict(cfg.env),
        working_dir=cfg.workdir,
        mem_limit=cfg.memory,
        memswap_limit=cfg.memory,  # no swap: a memory hog is killed, not slowed down
        pids_limit=cfg.pids_limit,
        nano_cpus=int(cfg.cpus * 1e9),
        network_mode=cfg.network_name or ("bridge" if cfg.network else "none"),
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        privileged=False,
        hostname="sandbox",
    )
    if cfg.network_name:
        # Names outside the network resolve to nothing at once instead of after the
        # resolver's default 5 s x 2 attempts.
        settings["dns_opt"] = ["timeout:1", "attempts:1"]
    return settings


def start_container(
    client: docker.DockerClient,
    image: str,
    cfg: SandboxConfig,
    labels: dict[str, str] | None = None,
) -> Container:
    """Run a locked-down container from ``image`` (pulled when not local) that idles until
    commands arrive. Raises ImageNotFound, SandboxError."""
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(image)
        except docker.errors.DockerException as exc:
            raise ImageNotFound(
                f"image {image!r} is not on this engine and could not be pulled ({exc}). "
                "Build it first (`swescale images build` for base images)."
            ) from exc
    try:
        container = client.containers.run(image, **container_settings(cfg, labels))
    except docker.errors.DockerException as exc:
        raise SandboxError(f"could not start a container from {image!r}: {exc}") from exc
    note_use(image)
    return container


class SandboxContainer:
    """One running sandbox container and the engine calls on it. Thread-safe (each call
    is its own exec or HTTP request); :meth:`remove` never raises."""

    def __init__(self, client: docker.DockerClient, container: Container, cfg: SandboxConfig):
        self.client = client
        self.container = container
        self.cfg = cfg

    @classmethod
    def start(
        cls,
        client: docker.DockerClient,
        image: str,
        cfg: SandboxConfig,
        labels: dict[str, str] | None = None,
    ) -> SandboxContainer:
        """:func:`start_container`, held. Raises ImageNotFound, SandboxError."""
        return cls(client, start_container(client, image, cfg, labels), cfg)

    @property
    def id(self) -> str:
        return self.container.id

    @property
    def short_id(self) -> str:
        return self.container.short_id

    @property
    def image(self) -> str:
        """The image's name as the container was started from it."""
        return self.container.attrs.get("Config", {}).get("Image", "")

    def exec_once(
        self,
        command: str,
        timeout: float | None = None,
        workdir: str | None = None,
        output_limit: int | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` with ``bash -c`` in a fresh process: no state shared with any
        session. ``timeout`` in seconds (default: the config's command timeout); on
        timeout its whole process group is killed (coreutils ``timeout``). Output capped
        at ``output_limit`` bytes (head and tail kept). ``env`` adds to the config's.
        Never raises for the engine: a failed exec is ``exit_code=None, infra_error``."""
        timeout = timeout or self.cfg.command_timeout
        variables = {**self.cfg.env, **(env or {})}
        argv = ["timeout", "-k", "5", f"{timeout:.3f}", "bash", "-c", command]
        if self.cfg.exact_env:
            argv = ["env", "-i", *(f"{k}={v}" for k, v in variables.items()), *argv]
        start = time.monotonic()
        api = self.client.api
        try:
            exec_id = api.exec_create(
                self.container.id,
                argv,
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
                environment=variables,
                workdir=workdir or self.cfg.workdir,
            )["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except ENGINE_ERRORS as exc:
            return ExecResult(output="", exit_code=None, infra_error=f"exec failed: {exc}")
        out = CappedOutput(output_limit or self.cfg.output_limit)
        reader = FrameReader(raw_socket(sock))
        # Our own deadline backs up `timeout` (which cannot fork under an exhausted pids limit).
        deadline = start + timeout + 15
        infra = None
        try:
            while (chunk := reader.read(deadline)) is not None:
                if chunk == b"" and time.monotonic() >= deadline:
                    infra = "command did not end after its timeout"
                    break
                out.add(chunk)
        finally:
            sock.close()
        try:
            code = None if infra else api.exec_inspect(exec_id).get("ExitCode")
        except ENGINE_ERRORS as exc:
            code, infra = None, f"exec failed: {exc}"
        # coreutils timeout: 124 on TERM, 137 (128+9) when it had to KILL.
        timed_out = code in (124, 137) and time.monotonic() - start >= timeout
        return ExecResult(
            output=out.text(),
            exit_code=code,
            seconds=time.monotonic() - start,
            timed_out=timed_out,
            truncated=out.truncated,
            infra_error=infra,
        )

    def get_file(self, path: str) -> bytes:
        """The bytes of the regular file at absolute ``path`` (one archive call, no
        process in the container). Raises FileNotFoundError, IsADirectoryError (any
        other kind of file too), docker.errors.APIError."""
        try:
            stream, _ = self.container.get_archive(path)
        except docker.errors.NotFound as exc:
            raise FileNotFoundError(f"{path}: no such file in the sandbox") from exc
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            if member is None or not member.isfile():
                raise IsADirectoryError(f"{path}: not a regular file")
            handle = tar.extractfile(member)
            assert handle is not None
            return handle.read()

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write ``data`` to absolute ``path`` (file ``mode``, owned by root) with one
        archive call; its directory must exist. Raises SandboxError, docker.errors.APIError."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(posixpath.basename(path))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        if not self.container.put_archive(posixpath.dirname(path), buf.getvalue()):
            raise SandboxError(f"writing {path} failed")

    def oom_kills(self) -> int:
        """The cgroup's count of out-of-memory kills (cgroup v2 or v1); 0 if unreadable."""
        probe = self.exec_once(
            "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"
            " | awk '/^oom_kill /{print $2; exit}'",
            timeout=15,
        )
        try:
            return int(probe.output.strip() or 0)
        except ValueError:
            return 0

    def remove(self) -> None:
        """Remove the container and its anonymous volumes. Never raises: a container
        already gone, or being removed by someone else, is fine; other failures are logged
        (the reaper removes what is left once this process has exited)."""
        try:
            self.container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            # 409: someone else (an interrupt handler, the reaper) is removing it already.
            if exc.status_code != 409:
                log.warning("could not remove container %s: %s", self.short_id, exc)
        except Exception as exc:  # noqa: BLE001 - closing must not mask the caller's error
            log.warning("could not remove container %s: %s", self.short_id, exc)
