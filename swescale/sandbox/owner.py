"""Who owns a container, and when that owner is provably gone.

Every container, network and build container swescale makes carries labels naming its
installation and its owner process::

    swescale=1
    swescale.install=<installation id>     the user's swescale (an id file in its cache)
    swescale.owner_host=<hostname>
    swescale.owner_boot=<boot id>           /proc/sys/kernel/random/boot_id
    swescale.owner_pidns=pid:[<inode>]      the owner's pid namespace
    swescale.owner_pid=<pid>
    swescale.owner_start=<ticks>            field 22 of /proc/<pid>/stat

The reaper removes a container only when all of these say its owner is gone: the same
installation, the same host in the same boot and pid namespace (only there does
``/proc/<pid>`` name the owner's process), and no process with that pid and start time.
Anything else (another installation, another host or container sharing the engine, a
previous boot, labels missing) cannot be proven gone and is left alone. A pid reused by
another process is told apart by its start time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

LABEL = "swescale"
INSTALL = f"{LABEL}.install"
OWNER_HOST = f"{LABEL}.owner_host"
OWNER_BOOT = f"{LABEL}.owner_boot"
OWNER_PIDNS = f"{LABEL}.owner_pidns"
OWNER_PID = f"{LABEL}.owner_pid"
OWNER_START = f"{LABEL}.owner_start"

# Set to give this installation an explicit id (e.g. jobs whose home is not kept).
INSTALLATION_ENV = "SWESCALE_INSTALLATION"
_ID_FILE = Path.home() / ".cache" / "swescale" / "installation-id"


def process_start_ticks(pid: int) -> str:
    """The start time of a process in clock ticks since boot (field 22 of
    ``/proc/<pid>/stat``), "" when no such process: with the pid it names a process
    uniquely within one boot."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@dataclass(frozen=True)
class HostIdentity:
    """Where a process runs, as far as ``/proc/<pid>`` is concerned."""

    hostname: str
    boot_id: str
    pid_namespace: str

    @classmethod
    def here(cls) -> HostIdentity:
        return cls(socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), _pid_namespace())


def installation_id() -> str:
    """This installation's id: ``$SWESCALE_INSTALLATION``, else a random id kept in the
    user's swescale cache (made on first use), else one derived from user and host when
    the cache cannot be written."""
    given = os.environ.get(INSTALLATION_ENV, "").strip()
    if given:
        return given
    return _stored_installation_id(_ID_FILE)


@lru_cache(maxsize=4)
def _stored_installation_id(path: Path) -> str:
    found = _read(str(path))
    if found:
        return found
    new = uuid.uuid4().hex[:16]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes making it at once agree on the first one written.
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as fh:
                fh.write(new + "\n")
        return _read(str(path)) or new
    except OSError:
        seed = f"{os.getuid()}@{socket.gethostname()}"
        return hashlib.sha256(seed.encode()).hexdigest()[:16]


def owner_labels() -> dict[str, str]:
    """Labels naming this process (and installation) as the owner of a container."""
    return dict(_owner_labels(os.getpid(), installation_id()))


def owned_labels(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The labels of a container or network this process makes: :func:`owner_labels`,
    plus each ``key: value`` of ``extra`` as ``swescale.<key>=<value>`` (``run``, ``task``,
    ``build``: what the reaper and ``swescale gc --run-id`` select by)."""
    return {**owner_labels(), **{f"{LABEL}.{k}": str(v) for k, v in (extra or {}).items()}}


def label_filters(run_id: str | None = None, **extra: str) -> list[str]:
    """The engine's label filters for swescale's containers and networks: all of them, of
    one run when ``run_id`` is given, narrowed further by ``extra`` (``owner_pid="42"``)."""
    wanted = {"run": run_id, **extra}
    return [f"{LABEL}=1"] + [f"{LABEL}.{k}={v}" for k, v in wanted.items() if v]


@lru_cache(maxsize=4)
def _owner_labels(pid: int, install: str) -> dict[str, str]:
    host = HostIdentity.here()
    return {
        LABEL: "1",
        INSTALL: install,
        OWNER_HOST: host.hostname,
        OWNER_BOOT: host.boot_id,
        OWNER_PIDNS: host.pid_namespace,
        OWNER_PID: str(pid),
        OWNER_START: process_start_ticks(pid),
    }


# Verdicts of :func:`ownership`.
GONE = "gone"  # provably: the reaper may remove it
ALIVE = "alive"
UNKNOWN = "unknown"  # cannot be proven gone: left alone
FOREIGN = "foreign"  # another installation's: left alone


def ownership(
    labels: dict[str, str],
    install: str,
    here: HostIdentity,
    start_of: Callable[[int], str] = process_start_ticks,
) -> tuple[str, str]:
    """(verdict, why) for a container with ``labels``, judged by installation ``install``
    on ``here``; ``start_of(pid)`` is the start time of a live process, "" when none.
    Pure apart from ``start_of``."""
    if labels.get(INSTALL) != install:
        theirs = labels.get(INSTALL)
        return FOREIGN, f"made by another installation ({theirs or 'no installation label'})"
    host = labels.get(OWNER_HOST, "")
    if not host or host != here.hostname:
        return UNKNOWN, f"owner on another host ({host or 'not recorded'})"
    if not labels.get(OWNER_BOOT) or labels.get(OWNER_BOOT) != here.boot_id:
        return UNKNOWN, f"owner on {host} in another boot (cannot be checked)"
    if not labels.get(OWNER_PIDNS) or labels.get(OWNER_PIDNS) != here.pid_namespace:
        return UNKNOWN, f"owner on {host} in another pid namespace (another container)"
    try:
        pid = int(labels.get(OWNER_PID, ""))
    except ValueError:
        return UNKNOWN, "owner pid not recorded"
    recorded = labels.get(OWNER_START, "")
    if not recorded:
        return UNKNOWN, f"start time of owner pid {pid} not recorded"
    current = start_of(pid)
    if not current:
        return GONE, f"owner pid {pid} on {host} has exited"
    if current != recorded:
        return GONE, f"owner pid {pid} on {host} has exited (the pid is another process's now)"
    return ALIVE, f"owner pid {pid} on {host} is running"


def owned_by_this_process(labels: dict[str, str]) -> bool:
    """Whether ``labels`` name this very process (and installation) as the owner."""
    mine = owner_labels()
    keys = (INSTALL, OWNER_HOST, OWNER_BOOT, OWNER_PIDNS, OWNER_PID, OWNER_START)
    return all(labels.get(k) == mine[k] for k in keys)
