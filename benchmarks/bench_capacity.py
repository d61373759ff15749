"""Host capacity: the memory one idle sandbox costs, and how many one host holds.

Starts N sandboxes of a pytest-size fixture repository with the default limits, each with
its shell session open, a snapshot taken, one file edited and a snapshot taken again (a
trajectory between model calls, its state watcher and the watcher's git helpers running),
and measures what they add, per sandbox:

  container     the container's memory cgroup: its processes (init, sleep, the session's
                bash, the state watcher and its git helpers) and the page cache charged
                to it (git's reads of the repository, the watcher's tmpfs objects)
  shim          the containerd shim that supervises it (proportional set size, so shared
                program pages count once across shims)
  engine        growth of dockerd and containerd, divided by N
  client        growth of this process (the sandbox objects, sockets, the session)
  kernel        growth of the host's slab, page tables and kernel stacks (namespaces,
                the overlay mount, cgroups), divided by N
Engine and kernel figures are host-wide, so other work on a shared host blurs them; the
drop of MemAvailable is printed as a cross-check of the sum.

then divides the host's memory by the total. The default limits (`SandboxConfig`: 2 GiB
memory, 512 pids, 1 CPU) cap what a busy sandbox may take; they are printed beside the
idle figure, since a host must also hold the sandboxes' working sets while commands run.
Needs a local engine (it reads /proc of the engine's processes).

Usage: .venv/bin/python benchmarks/bench_capacity.py [--sandboxes 20] [--host-gib 24]
       [--no-watcher]  (the shell function only: sandbox.state_watcher=false)
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
from pathlib import Path

from fixture_repos import PYTEST, fixture_image

from swescale.sandbox import DockerSandbox, SandboxConfig, docker_client, ensure_base_image

MIB = 1 << 20


def pss(pid: int) -> int:
    """Proportional set size of a process in bytes (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def engine_bytes() -> int:
    return sum(pss(p) for name in ("dockerd", "containerd") for p in pids_named(name))


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0]) * 1024
    return out


def container_memory(client, container_id: str) -> tuple[int, int]:
    """(bytes without page cache, page cache bytes) of a container's memory cgroup."""
    stats = client.api.stats(container_id, stream=False, one_shot=True)["memory_stats"]
    detail = stats.get("stats", {})
    cache = detail.get("total_cache", detail.get("file", 0))  # cgroup v1, v2
    return stats["usage"] - cache, cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandboxes", type=int, default=20)
    parser.add_argument("--host-gib", type=float, default=24.0)
    parser.add_argument("--reserve-gib", type=float, default=2.0, help="kept for the host")
    parser.add_argument("--no-watcher", action="store_true", help="sandbox.state_watcher=false")
    args = parser.parse_args()
    client = docker_client()
    base = ensure_base_image(client)
    image, _ = fixture_image(client, base, PYTEST)
    cfg = SandboxConfig(state_watcher=not args.no_watcher)
    warm = DockerSandbox.create(client, image, cfg, labels={"run": "bench-capacity"})
    warm.snapshot()  # imports, the client's connection pool, the image's page cache
    gc.collect()
    engine_before, client_before, host_before = engine_bytes(), pss(os.getpid()), meminfo()
    sandboxes: list[DockerSandbox] = []
    try:
        for _ in range(args.sandboxes):
            sb = DockerSandbox.create(client, image, cfg, labels={"run": "bench-capacity"})
            sandboxes.append(sb)
            sb.snapshot()
            sb.execute("cd /repo && f=$(git ls-files '*.py' | head -1) && echo '# edit' >> $f")
            sb.snapshot()
        gc.collect()
        host_after = meminfo()
        engine = (engine_bytes() - engine_before) / len(sandboxes)
        own = (pss(os.getpid()) - client_before) / len(sandboxes)
        memory = [container_memory(client, sb.id) for sb in sandboxes]
        for sb in sandboxes:
            sb.container.reload()
        shim_pids = [parent(sb.container.attrs["State"]["Pid"]) for sb in sandboxes]
        shims = [pss(p) for p in shim_pids]
        shim_threads = statistics.median(threads(p) for p in shim_pids)
        pids = statistics.median(
            int(client.api.stats(sb.id, stream=False, one_shot=True)["pids_stats"]["current"])
            for sb in sandboxes
        )
    finally:
        for sb in [*sandboxes, warm]:
            sb.close()
    anon = statistics.median(m[0] for m in memory)
    cache = statistics.median(m[1] for m in memory)
    shim = statistics.median(shims)
    kernel = sum(
        host_after[k] - host_before[k] for k in ("Slab", "PageTables", "KernelStack")
    ) / len(sandboxes)
    drop = (host_before["MemAvailable"] - host_after["MemAvailable"]) / len(sandboxes)
    total = anon + cache + shim + max(engine, 0) + max(own, 0) + max(kernel, 0)
    usable = (args.host_gib - args.reserve_gib) * 1024 * MIB
    way = "shell function only" if args.no_watcher else "state watcher running"
    print(f"{len(sandboxes)} idle sandboxes ({PYTEST.name} repository, default limits, {way})")
    print(f"   container processes          {anon / MIB:8.1f} MiB")
    print(f"   container page cache         {cache / MIB:8.1f} MiB")
    print(f"   containerd shim (PSS)        {shim / MIB:8.1f} MiB")
    print(f"   dockerd + containerd growth  {engine / MIB:8.1f} MiB")
    print(f"   this process's growth        {own / MIB:8.1f} MiB")
    print(f"   kernel (slab, page tables)   {kernel / MIB:8.1f} MiB   (host-wide, noisy)")
    host_pids = pids + shim_threads
    print(
        f"   total per idle sandbox       {total / MIB:8.1f} MiB   "
        f"({pids:.0f} processes in it, {host_pids:.0f} host pids with its shim's threads)"
    )
    print(
        f"   host MemAvailable drop       {drop / MIB:8.1f} MiB   (host-wide, noisy: a cross-check)"
    )
    limit_gib = int(cfg.memory.rstrip("g"))
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    print(
        f"a {args.host_gib:g} GiB host ({args.reserve_gib:g} GiB kept for the system) holds "
        f"{usable / total:,.0f} idle sandboxes by memory, {pid_max / host_pids:,.0f} by its "
        f"pid_max ({pid_max}); {usable / (limit_gib << 30):.0f} if every one used its "
        f"{cfg.memory} memory limit, {pid_max / (cfg.pids_limit + shim_threads):.0f} if every "
        f"one used its {cfg.pids_limit} pids"
    )


if __name__ == "__main__":
    main()
