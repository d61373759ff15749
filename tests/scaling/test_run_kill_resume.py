"""``swescale run`` killed with SIGKILL mid-run, then rerun: the run completes with no
trajectory lost, none done twice, and no container left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swescale.record.run import read_jsonl
from swescale.record.trajectory import load_trajectory

pytestmark = pytest.mark.docker

SLOW_SCRIPT = [
    "Looking around.\n\n```bash\nls\n```",
    "Thinking.\n\n```bash\nsleep 1.5 && echo one\n```",
    "Editing.\n\n```bash\necho 'note' > NOTES.txt && sleep 1.5\n```",
    "Checking.\n\n```bash\ngit status --short\n```",
    "Done.\n\n```bash\nsubmit\n```",
]


def _command(runs: Path, script: Path, run_id: str) -> list[str]:
    return [
        sys.executable, "-m", "swescale.cli", "run", "-c", "scripted",
        "-o", "dataset.slice=0:2",
        "-o", "model.script=" + str(script),
        "-o", "scaling.n_parallel=2",
        "-o", "scaling.max_concurrent_sandboxes=2",
        "-o", "scaling.grade=none",
        "-o", "verifiers.enabled=[]",
        "-o", "selection.selector=majority",
        "-o", f"runs_dir={runs}",
        "--run-id", run_id, "--no-live", "--no-report",
    ]  # fmt: skip


def _step_lines(run_dir: Path) -> int:
    count = 0
    for path in run_dir.glob("*/trajectories/*.jsonl"):
        count += path.read_text(errors="replace").count('"type": "step"')
    return count


def test_kill_9_then_rerun_completes_the_run(tmp_path, docker_client, leak_check):
    from swescale.sandbox import running_sandboxes

    run_id = f"kill-{os.getpid()}"
    leak_check.append(run_id)
    script = tmp_path / "turns.json"
    script.write_text(json.dumps(SLOW_SCRIPT))
    runs = tmp_path / "runs"
    run_dir = runs / run_id
    command = _command(runs, script, run_id)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while _step_lines(run_dir) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, first.stdout.read().decode()[-3000:]
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    left = set(running_sandboxes(docker_client, run_id))
    assert left, "the killed session had sandboxes up"
    killed_at = _step_lines(run_dir)
    unfinished = [
        p for p in run_dir.glob("*/trajectories/*.jsonl") if not load_trajectory(p).finished
    ]
    assert unfinished, "the kill came too late to leave unfinished trajectories"
    finished_before = {
        p: p.read_bytes()
        for p in run_dir.glob("*/trajectories/*.jsonl")
        if load_trajectory(p).finished
    }

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]

    files = sorted(run_dir.glob("*/trajectories/*.jsonl"))
    assert len(files) == 4  # 2 tasks x 2 trajectories, nothing lost, nothing extra
    for path in files:
        record = load_trajectory(path)
        assert record.finished, path
        # One line per step, in order: no step done twice, none skipped.
        assert [s.index for s in record.steps] == list(range(len(SLOW_SCRIPT)))
        assert record.footer["exit_status"] == "submitted"
        assert "NOTES.txt" in record.footer["patch"]
    for path, data in finished_before.items():
        assert path.read_bytes() == data  # finished work was reused, not redone
    assert _step_lines(run_dir) == 4 * len(SLOW_SCRIPT) >= killed_at
    predictions = read_jsonl(run_dir / "predictions.jsonl")
    assert len(predictions) == 2 and len({p["instance_id"] for p in predictions}) == 2
    info = json.loads((run_dir / "run.json").read_text())
    assert info["sessions"] == 2
    # The rerun removed what the killed session left, and named each one.
    reaped = " ".join(info["reaped"])
    assert all(f"container {name} (owner pid {first.pid} " in reaped for name in left), reaped
    assert all(t["status"] == "done" for t in info["tasks"].values())
    assert running_sandboxes(docker_client, run_id) == []
