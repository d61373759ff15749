"""A synthetic run directory of any size, written through the run's own writers (run
directory, trajectory recorder, blob store, selection records, ledger), for the report's
tests and benchmarks: many candidates, long trajectories with long outputs, a branch, a
selection that misses, damaged records. Like the scripted model, it ships in the package
so tests use the real formats instead of mocks.
"""

from __future__ import annotations

import json
from pathlib import Path

from swescale.record.blobs import BlobStore
from swescale.record.io import write_text_atomic
from swescale.record.run import RunDir, trajectory_id
from swescale.record.task import (
    write_candidates,
    write_grades,
    write_labels,
    write_selection,
    write_task,
    write_verdicts,
)
from swescale.record.trajectory import TrajectoryRecorder
from swescale.scaling.ledger import BudgetLedger
from swescale.types import Action, Candidate, Cost, Observation, Selection, Step, Task, Verdict

F2P = ["tests/test_core.py::test_fixed_a", "tests/test_core.py::test_fixed_b"]
P2P = [f"tests/test_core.py::test_kept_{i}" for i in range(20)]


def _patch(index: int) -> str:
    path = f"pkg/mod{index % 5}.py"
    return (
        f"diff --git a/{path} b/{path}\n"
        f"--- a/{path}\n+++ b/{path}\n"
        "@@ -1,3 +1,3 @@\n"
        " def f(x):\n"
        "-    return x\n"
        f"+    return x + {index}\n"
        " \n"
    )


def _grade(task_id: str, resolved: bool, index: int) -> dict[str, object]:
    broken = [] if resolved or index % 3 else P2P[:2]
    return {
        "status": "resolved" if resolved else "unresolved",
        "resolved": resolved,
        "error": None,
        "apply_output": "Applied patch cleanly.",
        "report": {
            task_id: {
                "resolved": resolved,
                "tests_status": {
                    "FAIL_TO_PASS": {
                        "success": F2P if resolved else F2P[:1],
                        "failure": [] if resolved else F2P[1:],
                    },
                    "PASS_TO_PASS": {
                        "success": [t for t in P2P if t not in broken],
                        "failure": broken,
                    },
                },
            }
        },
    }


def make_run(
    runs_dir: str | Path,
    *,
    run_id: str = "synthetic",
    tasks: int = 1,
    candidates: int = 64,
    trajectories: int | None = None,
    steps: int = 100,
    output_lines: int = 300,
) -> Path:
    """Write a finished, graded run and return its directory. Per task: ``candidates``
    distinct patches from ``trajectories`` trajectories (default: one per candidate, the
    first candidate produced twice) of ``steps`` steps; every tenth step prints
    ``output_lines`` lines and changes the repository; every seventh command fails; the
    second trajectory is a branch of the first at step 3; the run's selection picks a
    wrong candidate while candidate 0 resolves (a selection miss); one trajectory file
    ends in a torn line."""
    from swescale.config import load_config

    cfg = load_config("scripted")
    rundir = RunDir.open(Path(runs_dir), run_id, cfg)
    ledger = BudgetLedger()
    n_traj = trajectories if trajectories is not None else candidates + 1
    for t in range(tasks):
        task = Task(
            id=f"synthetic__task-{t}",
            repo="synthetic/repo",
            base_commit="0" * 40,
            problem_statement="f(x) must add the offset.\n" * 30,
            fail_to_pass=F2P,
            pass_to_pass=P2P,
        )
        write_task(rundir.task_dir(task.id), task)
        blobs = BlobStore(rundir.blobs_dir(task.id))
        produced: dict[int, list[str]] = {}
        for j in range(n_traj):
            tid = trajectory_id(task.id, 0, j)
            cand = 0 if j == n_traj - 1 else j % candidates
            produced.setdefault(cand, []).append(tid)
            parent = [trajectory_id(task.id, 0, 0), 3] if j == 1 and steps > 4 else None
            header = {
                "trajectory_id": tid,
                "task_id": task.id,
                "parent": parent,
                "model": "synthetic",
                "temperature": 0.7,
                "decoding_mode": "free",
            }
            path = rundir.trajectory_path(task.id, tid)
            with TrajectoryRecorder(path, header) as rec:
                state = blobs.put(b"")
                for k in range(steps):
                    if k % 10 == 9 or k == steps - 1:
                        state = blobs.put(_patch(cand if k == steps - 1 else k).encode())
                    long = k % 10 == 0
                    out = "\n".join(
                        f"line {i} of step {k}" for i in range(output_lines if long else 3)
                    )
                    rec.write_step(
                        Step(
                            index=k,
                            message={
                                "role": "assistant",
                                "content": f"Step {k}: looking.\n\n```bash\nls -la {k}\n```",
                            },
                            actions=[Action(tool="bash", args={"command": f"ls -la {k}"})],
                            observations=[
                                Observation(output=out, exit_code=1 if k % 7 == 6 else 0)
                            ],
                            state=state,
                            tokens_in=400 + k,
                            tokens_out=40,
                            seconds=0.5,
                        )
                    )
                rec.write_footer(
                    "submitted",
                    _patch(cand),
                    {
                        "steps": steps,
                        "tokens_in": 400 * steps,
                        "tokens_out": 40 * steps,
                        "this_run": {"sandbox_seconds": 2.0, "model_seconds": 5.0},
                    },
                )
            ledger.charge(
                task.id,
                Cost(
                    tokens_in=400 * steps,
                    tokens_out=40 * steps,
                    model_seconds=5.0,
                    sandbox_seconds=2.0,
                ),
            )
            if j == n_traj - 1:
                with path.open("a", encoding="utf-8") as fh:
                    fh.write('{"type": "step", "index": ')  # a torn last line
        cands = [
            Candidate(
                id=f"c{i:03d}", task_id=task.id, patch=_patch(i), trajectory_ids=produced.get(i, [])
            )
            for i in range(candidates)
        ]
        task_dir = rundir.task_dir(task.id)
        write_candidates(task_dir, cands)
        regression = {
            c.id: Verdict(
                verifier="regression",
                score=1.0 if i % 3 else 0.9,
                passed=bool(i % 3),
                details={
                    "tests": ["tests/test_core.py"],
                    "applied": True,
                    "broken": [] if i % 3 else P2P[:2],
                    "base_passing": 20,
                },
            )
            for i, c in enumerate(cands)
        }
        repro = {
            c.id: Verdict(
                verifier="repro",
                score=0.5 if i else 1.0,
                passed=i == 0,
                details={
                    "results": {"repro_1": "pass", "repro_2": "fail" if i else "pass"},
                    "passed": 1 if i else 2,
                    "total": 2,
                },
            )
            for i, c in enumerate(cands)
        }
        write_verdicts(task_dir, "regression", regression)
        write_verdicts(task_dir, "repro", repro)
        labels = {c.id: i == 0 for i, c in enumerate(cands)}
        write_labels(task_dir, labels)
        grades = {c.id: _grade(task.id, i == 0, i) for i, c in enumerate(cands)}
        write_grades(task_dir, grades)
        picked = cands[1] if len(cands) > 1 else cands[0]
        write_selection(
            task_dir,
            Selection(
                task_id=task.id,
                selector="hybrid",
                candidate_id=picked.id,
                ranking=[picked.id] + [c.id for c in cands if c is not picked],
                confidence=0.4,
                rationale="synthetic: the most voted among the finalists",
            ),
        )
        result = {
            "task_id": task.id,
            "status": "done",
            "resolved": picked is cands[0],
            "candidates": len(cands),
            "selected": picked.id,
            "selector": "hybrid",
        }
        rundir.write_result(task.id, result)
        rundir.set_task_state(task.id, status="done", resolved=result["resolved"])
    rundir.record_failure("synthetic__task-0", "verifier:judge", "ModelError: synthetic failure")
    rundir.update_run_json(
        lambda r: r.update(ledger=ledger.to_dict(), totals=ledger.to_dict()["run"])
    )
    write_text_atomic(
        rundir.files.synthetic, json.dumps({"tasks": tasks, "candidates": candidates})
    )
    return rundir.root
