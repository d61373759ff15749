"""How a batch stops, through the shared pool: after N tasks failed in a row it returns
(interrupted, nothing more started); SIGTERM stops it as Ctrl-C does. The tasks fail or
wait at their image stage, so no container is involved."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from swescale.config import load_config
from swescale.record.run import RunDir
from swescale.scaling.batch import BatchRunner
from swescale.types import Task

ROOT = Path(__file__).resolve().parents[2]


def _tasks(count: int) -> list[Task]:
    return [
        Task(id=f"demo__t-{i}", repo="demo/t", base_commit="0" * 40, problem_statement="x")
        for i in range(count)
    ]


def test_a_batch_stops_after_n_tasks_failed_in_a_row(tmp_path: Path) -> None:
    cfg = load_config(
        None,
        ["scaling.max_consecutive_failures=2", "scaling.max_concurrent_tasks=1"],
    )
    rundir = RunDir.open(tmp_path / "runs", "failing", cfg)
    asked: list[str] = []

    def image_for(task: Task) -> str:
        asked.append(task.id)
        raise RuntimeError(f"no image for {task.id}")

    tasks = _tasks(5)
    result = BatchRunner(cfg, rundir, image_for=image_for).run(tasks)
    assert result.interrupted
    statuses = [result.results[t.id]["status"] for t in tasks]
    # One worker: the third task may have started before the second failure arrived.
    assert statuses[:2] == ["failed", "failed"]
    assert statuses.count("interrupted") >= 2
    assert len(asked) == statuses.count("failed") <= 3
    assert {f["task_id"] for f in rundir.failures()} == set(asked)


# A batch whose tasks wait at their image stage until the run stops, as long trajectories
# do; the signal's outcome is printed on the way out.
PROGRAM = textwrap.dedent(
    """
    import json, sys
    from swescale.config import load_config
    from swescale.record.run import RunDir
    from swescale.scaling.batch import BatchRunner
    from swescale.scaling.metered import RunInterrupted
    from swescale.types import Task

    cfg = load_config(None, ["scaling.max_concurrent_tasks=2"])
    rundir = RunDir.open(sys.argv[1], "signalled", cfg)

    def image_for(task):
        print(f"started {task.id}", flush=True)
        runner.stop.wait(120)
        raise RunInterrupted("run stopping")

    tasks = [Task(id=f"demo__t-{i}", repo="demo/t", base_commit="0" * 40,
                  problem_statement="x") for i in range(5)]
    runner = BatchRunner(cfg, rundir, image_for=image_for)
    try:
        runner.run(tasks)
    except KeyboardInterrupt:
        print(json.dumps(rundir.run_json()["tasks"]), flush=True)
        sys.exit(130)
    print("not interrupted", flush=True)
    """
)


def test_sigterm_stops_a_batch_as_ctrl_c_does(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while sum(line.startswith("started") for line in lines) < 2:
        line = proc.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    output = "".join(lines) + rest
    assert proc.returncode == 130, output
    states = json.loads(output.strip().splitlines()[-1])
    # The two tasks in flight saw the stop and are left resumable; none other started.
    assert {t: s["status"] for t, s in states.items()} == {
        "demo__t-0": "interrupted",
        "demo__t-1": "interrupted",
    }
    assert output.count("started") == 2
