"""What the agent framework adds on top of the sandbox, measured side by side in one run.

1. Overhead per step: the scripted model plays steps of a trivial command (``true``)
   through the real LangGraph agent, against bare ``sandbox.execute("true")`` round trips
   in the same sandbox. Marginal cost per step (2N-step run minus N-step run), with the
   per-step record off, and on (state + blob + fsynced JSON line, as in a run) for
   read-only steps (the snapshot finds nothing changed) and editing steps (a new state
   each); against them a bare snapshot after an edit, so an editing step's framework
   overhead is what it costs beyond one round trip and one snapshot. The same overhead is
   also measured within one recorded run: its wall time minus the time spent inside the
   sandbox's calls (recording, the blob store, the graph, the prompt), which the noise of
   a shared machine disturbs far less than a difference between runs.
2. Memory per in-flight trajectory: Python heap (tracemalloc) held while K trajectories
   are paused mid-run, per trajectory, against the heap one idle sandbox object holds.

Usage: .venv/bin/python benchmarks/bench_agent.py [--steps 40] [--inflight 4]
Prints ratios; absolute times appear only beside them (a shared machine makes them noisy).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

from swescale.agent.config import AgentConfig
from swescale.agent.graph import run_agent
from swescale.agent.models.base import Completion
from swescale.agent.models.scripted import ScriptedModel
from swescale.record import BlobStore
from swescale.record.trajectory import TrajectoryRecorder, make_header
from swescale.sandbox import DockerSandbox, docker_client, ensure_base_image
from swescale.types import Task

INIT_REPO = (
    "cd /repo && git init -q && printf 'def f():\\n    return 1\\n' > m.py && git add -A && "
    "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z "
    "git -c user.name=b -c user.email=b@example.com commit -qm base && git rev-parse HEAD"
)
TASK = Task(id="bench__1", repo="bench/m", base_commit="", problem_statement="f() should return 2.")
TRIVIAL = "```bash\ntrue\n```"


def open_sandbox(client, image: str) -> DockerSandbox:
    sb = DockerSandbox.create(client, image, labels={"run": "bench-agent"}, base_commit="")
    result = sb.exec_once(INIT_REPO)
    if result.exit_code != 0:
        sb.close()
        raise SystemExit(f"could not set up the benchmark repository: {result.output}")
    sb.base_commit = result.output.strip().splitlines()[-1]
    return sb


def bare_round_trips(sb: DockerSandbox, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        sb.execute("true")
    return (time.perf_counter() - start) / steps


def agent_run(sb: DockerSandbox, turns: list[str], record: bool, root: Path) -> float:
    """Seconds for one trajectory of ``turns`` (fixed costs included)."""
    model = ScriptedModel(turns)
    cfg = AgentConfig(step_limit=len(turns))
    sb.execute("cd /repo && git checkout -q -- . && git clean -qfd")
    start = time.perf_counter()
    if record:
        path = root / f"t{time.monotonic_ns()}.jsonl"
        with TrajectoryRecorder(path, make_header("bench", TASK.id)) as rec:
            result = run_agent(
                TASK, sb, model, cfg, recorder=rec, blob_store=BlobStore(root / "blobs")
            )
    else:
        result = run_agent(TASK, sb, model, cfg)
    elapsed = time.perf_counter() - start
    assert result.exit_status == "step_limit" and len(result.steps) == len(turns), (
        result.exit_status
    )
    return elapsed


class TimedSandbox:
    """Forwards to a real sandbox and adds up the seconds spent inside its calls, so a
    run's framework time is its wall time minus these, measured in the same run (the
    machine's noise in the sandbox calls then does not land in the difference)."""

    def __init__(self, sandbox: DockerSandbox) -> None:
        self.inner = sandbox
        self.workdir, self.base_commit = sandbox.workdir, sandbox.base_commit
        self.seconds = 0.0

    def _timed(self, name: str, *args, **kw):
        start = time.perf_counter()
        try:
            return getattr(self.inner, name)(*args, **kw)
        finally:
            self.seconds += time.perf_counter() - start

    def execute(self, *a, **kw):
        return self._timed("execute", *a, **kw)

    def exec_once(self, *a, **kw):
        return self._timed("exec_once", *a, **kw)

    def read_file(self, *a, **kw):
        return self._timed("read_file", *a, **kw)

    def write_file(self, *a, **kw):
        return self._timed("write_file", *a, **kw)

    def diff(self):
        return self._timed("diff")

    def snapshot(self):
        return self._timed("snapshot")

    def restore(self, blob):
        return self._timed("restore", blob)

    def close(self) -> None:
        self.inner.close()


def fsync_seconds(root: Path, n: int = 10) -> float:
    """Median seconds of one fsync of a small new file here: a recorded editing step
    makes two (its blob and its record line), for durability."""
    samples = []
    for i in range(n):
        with open(root / f"fsync-{i}", "wb") as fh:
            fh.write(b"x" * 512)
            fh.flush()
            start = time.perf_counter()
            os.fsync(fh.fileno())
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def framework_seconds(sb: DockerSandbox, steps: int, root: Path) -> float:
    """Per editing step, recorded: wall time minus time inside the sandbox's calls."""
    timed = TimedSandbox(sb)
    sb.execute("cd /repo && git checkout -q -- . && git clean -qfd")
    model = ScriptedModel(editing(steps))
    path = root / f"f{time.monotonic_ns()}.jsonl"
    start = time.perf_counter()
    with TrajectoryRecorder(path, make_header("bench", TASK.id)) as rec:
        result = run_agent(
            TASK,
            timed,
            model,
            AgentConfig(step_limit=steps),
            recorder=rec,
            blob_store=BlobStore(root / "blobs"),
        )
    wall = time.perf_counter() - start
    assert result.exit_status == "step_limit" and len(result.steps) == steps
    return (wall - timed.seconds) / steps


def per_step(sb: DockerSandbox, turns, steps: int, record: bool, root: Path) -> float:
    """Marginal seconds per step: the difference between a 2N-step and an N-step run, so
    fixed costs (prompt, graph start, the final diff) cancel out."""
    return (
        agent_run(sb, turns(2 * steps), record, root) - agent_run(sb, turns(steps), record, root)
    ) / steps


def read_only(n: int) -> list[str]:
    return [TRIVIAL] * n


def editing(n: int) -> list[str]:
    # Every step changes the repository, so every step needs a real snapshot.
    return [f"```bash\necho {i} >> /repo/m.py\n```" for i in range(n)]


def bench_overhead(client, image: str, steps: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_sandbox(client, image) as sb:
        root = Path(tmp)
        agent_run(sb, read_only(3), record=True, root=root)  # warm imports and the graph
        rows: dict[str, list[float]] = {
            k: [] for k in ("bare", "plain", "rec_read", "rec_edit", "snap", "frame")
        }
        for _ in range(repeats):  # interleaved, so machine load hits all of them alike
            rows["bare"].append(bare_round_trips(sb, steps))
            rows["snap"].append(bare_snapshots(sb, max(steps // 4, 5)))
            rows["plain"].append(per_step(sb, read_only, steps, record=False, root=root))
            rows["rec_read"].append(per_step(sb, read_only, steps, record=True, root=root))
            rows["rec_edit"].append(per_step(sb, editing, steps, record=True, root=root))
            rows["frame"].append(framework_seconds(sb, steps, root))
            rows.setdefault("fsync", []).append(fsync_seconds(root))
    m = {k: statistics.median(v) for k, v in rows.items()}
    b = m["bare"]
    print(f"\n1. Per step, marginal cost over {steps} extra steps, {repeats} repeats (medians)")
    for key, label in (
        ("bare", "bare sandbox round trip (execute)"),
        ("snap", "bare snapshot() after an edit"),
        ("plain", "agent step, no record"),
        ("rec_read", "agent step, recorded, read-only"),
        ("rec_edit", "agent step, recorded, editing"),
    ):
        print(f"   {label:<38} {m[key] * 1e3:8.2f} ms  {m[key] / b:7.2f}x")
    print(
        f"   framework overhead per step (no record) {(m['plain'] - b) * 1e3:6.2f} ms  {(m['plain'] - b) / b:7.2f}x of a round trip"
    )
    edit_overhead = m["rec_edit"] - b - m["snap"]
    print(
        f"   framework overhead per editing step     {edit_overhead * 1e3:6.2f} ms  "
        "(recorded step minus round trip minus snapshot, across runs)"
    )
    print(
        f"   one fsync of a small file (two per recorded editing step) {m['fsync'] * 1e3:6.2f} ms"
    )
    print(
        f"   framework overhead per editing step     {m['frame'] * 1e3:6.2f} ms  "
        f"{m['frame'] / b:7.2f}x of a round trip (wall minus time inside sandbox calls, same run)"
    )


def bare_snapshots(sb: DockerSandbox, n: int) -> float:
    """Seconds of one snapshot after an edit like the editing steps' (the edit not timed)."""
    total = 0.0
    for i in range(n):
        sb.execute(f"echo s{i} >> /repo/m.py")
        start = time.perf_counter()
        sb.snapshot()
        total += time.perf_counter() - start
    return total / n


class _Gate:
    """A scripted model that holds each trajectory at its second turn until released, so
    K trajectories are in flight at once."""

    def __init__(self, k: int) -> None:
        self.arrived = threading.Barrier(k + 1)
        self.release = threading.Event()
        self.inner = ScriptedModel(
            ["```bash\ncat m.py\n```", "```bash\nls -la\n```", TRIVIAL], on_exhausted="submit"
        )

    def complete(self, messages, tools=None, **kw) -> Completion:
        if sum(1 for m in messages if m.get("role") == "assistant") == 2:
            self.arrived.wait()
            self.release.wait()
        return self.inner.complete(messages, tools=tools, **kw)


def bench_memory(client, image: str, k: int) -> None:
    sandboxes = [open_sandbox(client, image) for _ in range(k)]
    try:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.take_snapshot()
        extra = open_sandbox(client, image)
        gc.collect()
        one_sandbox = sum(
            s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename")
        )
        extra.close()
        gate = _Gate(k)
        gc.collect()
        before = tracemalloc.take_snapshot()
        threads = [
            threading.Thread(target=run_agent, args=(TASK, sb, gate, AgentConfig(step_limit=10)))
            for sb in sandboxes
        ]
        for t in threads:
            t.start()
        gate.arrived.wait()  # all K trajectories hold two steps of chat and records
        gc.collect()
        during = sum(
            s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename")
        )
        gate.release.set()
        for t in threads:
            t.join()
        tracemalloc.stop()
    finally:
        for sb in sandboxes:
            sb.close()
    per = during / k
    print(f"\n2. Python heap with {k} trajectories in flight (2 steps done each)")
    print(f"   one idle sandbox object            {one_sandbox / 1024:8.1f} KiB  1.00x")
    print(
        f"   per in-flight trajectory           {per / 1024:8.1f} KiB  {per / max(one_sandbox, 1):5.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inflight", type=int, default=4)
    args = parser.parse_args()
    client = docker_client()
    image = ensure_base_image(client)
    bench_overhead(client, image, args.steps, args.repeats)
    bench_memory(client, image, args.inflight)


if __name__ == "__main__":
    main()
