"""What a rerun says it picks up, from the run directory alone."""

from __future__ import annotations

from swescale.config import load_config
from swescale.record.run import RunDir
from swescale.report.synthetic import make_run
from swescale.scaling.launcher import resume_note
from swescale.types import Task


def _tasks(n: int) -> list[Task]:
    return [
        Task(
            id=f"synthetic__task-{i}", repo="synthetic/repo", base_commit="0", problem_statement="p"
        )
        for i in range(n)
    ]


def test_the_rerun_names_what_is_kept_reused_and_continued(tmp_path) -> None:
    folder = make_run(tmp_path, tasks=2, candidates=2, trajectories=3, steps=5)
    rundir = RunDir.open(tmp_path, folder.name, load_config("scripted"))
    assert resume_note(rundir, _tasks(2)) == (
        "resuming: 2 of 2 tasks done (kept), nothing left to run"
    )
    (folder / "synthetic__task-1" / "result.json").unlink()
    assert resume_note(rundir, _tasks(2)) == (
        "resuming: 1 of 2 tasks done (kept), 3 finished trajectories reused"
    )
    # A trajectory cut before its footer continues from its last recorded step.
    path = folder / "synthetic__task-1" / "trajectories" / "synthetic__task-1.r0.t00.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    assert resume_note(rundir, _tasks(2)) == (
        "resuming: 1 of 2 tasks done (kept), 2 finished trajectories reused, "
        "1 continues from the last recorded step"
    )
    assert resume_note(RunDir.open(tmp_path, "fresh", load_config("scripted")), _tasks(2)) == ""
