"""A small finished run whose pools carry every kind of evidence, written through the
run's own writers, for the tests of the task page's "why this patch".

Task ``why__core-1`` (repository o/core), six trajectories:
  t00, t01  ``maj``: the majority (2 votes); breaks two existing tests, fails the tests
            ``alt`` brought; does not resolve
  t02       ``alt``: brings tests/test_new.py (test_a, test_b); touches two files;
            resolves
  t03       ``bad``: a SyntaxError at pkg/core.py:12
  t04       no patch
  t05       ``win``: passes ``alt``'s tests, breaks nothing, touches what the pool
            touches; resolves. The evidence selector picks it over ``alt`` on locality.
Task ``why__util-1`` (repository o/util): ``p`` and ``q``, alike on every piece of
evidence: a tie, decided by the candidate id.
The records hold absolute paths of the machine (a failure reason, a trajectory header
field, a verifier note) that no page may show.
"""

from __future__ import annotations

from pathlib import Path

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
from swescale.selection.selectors import EvidenceSelector
from swescale.types import Action, Candidate, Cost, Observation, StateRef, Step, Task, Verdict

P2P = [f"tests/test_core.py::test_kept_{i}" for i in range(10)]
F2P = ["tests/test_core.py::test_fix"]
NEW_TESTS = ["tests/test_new.py::test_a", "tests/test_new.py::test_b"]


def _patch(path: str, value: str, extra: str = "") -> str:
    text = (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -1,2 +1,2 @@\n def f(x):\n-    return x\n+    return {value}\n"
    )
    if extra:
        text += (
            f"diff --git a/{extra} b/{extra}\nnew file mode 100644\n--- /dev/null\n"
            f"+++ b/{extra}\n@@ -0,0 +1,4 @@\n+def test_a():\n+    assert 1\n"
            "+def test_b():\n+    assert 1\n"
        )
    return text


def _static(ok: bool = True, locality: float = 1.0, lines: float = 2.0, error: str = "") -> dict:
    details = {
        "applied": True,
        "clean_apply": True,
        "compile_errors": {"pkg/core.py": error} if error else {},
        "compiles": not error,
        "import_errors": {"pkg.core": "SyntaxError: invalid syntax"} if error else {},
        "imports": not error,
        "new_undefined": {},
        "lines": lines,
        "files": 1.0,
        "size_ratio": lines / 2.0,
        "locality": locality,
        "changes_source": True,
        "test_setup_changed": [],
    }
    return {"verifier": "static", "score": 1.0 if ok else 0.0, "passed": ok, "details": details}


def _harvest(cand: str, outcomes: dict[str, bool | None]) -> dict:
    cells = {f"h1:{t}": ok for t, ok in outcomes.items()}
    own = cand == "alt"
    counted = [] if own else [ok for ok in outcomes.values() if ok is not None]
    details = {
        "tests": {"h1": {"path": "tests/test_new.py", "kind": "test", "from": ["alt"]}},
        "kept_units": 2,
        "discarded": [],
        "base_errors": {},
        "cells": cells,
        "passed": sum(bool(ok) for ok in counted),
        "total": len(counted),
        "applied": True,
    }
    return {
        "verifier": "harvest",
        "score": sum(bool(ok) for ok in counted) / len(counted) if counted else 0.5,
        "passed": all(counted) if counted else None,
        "details": details,
        "infra_error": "no test from another candidate judged this one" if own else None,
        "cost": {"sandbox_seconds": 1.5},
    }


def _regression(broken: list[str]) -> dict:
    return {
        "verifier": "regression",
        "score": 1.0 - len(broken) / len(P2P),
        "passed": not broken,
        "details": {"applied": True, "broken": broken, "base_passing": len(P2P)},
        "cost": {"sandbox_seconds": 2.0},
    }


def _behaviour(share: float, size: int) -> dict:
    details = {"class_size": size, "classes": 3}
    return {"verifier": "behaviour", "score": share, "details": details}


def _grade(task_id: str, resolved: bool, broken: list[str]) -> dict:
    return {
        "status": "resolved" if resolved else "unresolved",
        "resolved": resolved,
        "report": {
            task_id: {
                "resolved": resolved,
                "tests_status": {
                    "FAIL_TO_PASS": {
                        "success": F2P if resolved else [],
                        "failure": [] if resolved else F2P,
                    },
                    "PASS_TO_PASS": {
                        "success": [t for t in P2P if t not in broken],
                        "failure": broken,
                    },
                },
            }
        },
    }


def _trajectories(rundir: RunDir, task: Task, patches: dict[int, str], machine: str) -> None:
    for index, patch in patches.items():
        tid = trajectory_id(task.id, 0, index)
        header = {"trajectory_id": tid, "task_id": task.id, "model": "scripted"}
        if index == 0:
            header["source_path"] = f"{machine}/imported/{tid}.traj"
        with TrajectoryRecorder(rundir.trajectory_path(task.id, tid), header) as rec:
            rec.write_step(
                Step(
                    index=0,
                    message={"role": "assistant", "content": "look"},
                    actions=[Action(tool="bash", args={"command": "ls"})],
                    observations=[Observation(output="pkg tests", exit_code=0)],
                    state=StateRef(sha256="0" * 64, size=0),
                    tokens_in=1000 + 100 * index,
                    tokens_out=50,
                    seconds=0.5,
                )
            )
            rec.write_footer(
                "submitted" if patch else "step_limit",
                patch,
                {"tokens_in": 1000 + 100 * index, "tokens_out": 50, "sandbox_seconds": 1.0},
            )


def _write(rundir: RunDir, task: Task, cands: list[Candidate], verdicts: dict, grades: dict):
    folder = rundir.task_dir(task.id)
    write_task(folder, task)
    write_candidates(folder, cands)
    for name, per_cand in verdicts.items():
        write_verdicts(
            folder, name, {cid: Verdict.model_validate(v) for cid, v in per_cand.items()}
        )
    write_labels(folder, {cid: bool(g["resolved"]) for cid, g in grades.items()})
    write_grades(folder, grades)
    for cand in cands:
        cand.verdicts = {n: Verdict.model_validate(v[cand.id]) for n, v in verdicts.items()}
        cand.resolved = bool(grades[cand.id]["resolved"])
    selection = EvidenceSelector().select(task, cands)
    write_selection(folder, selection)
    picked = next(c for c in cands if c.id == selection.candidate_id)
    rundir.write_result(
        task.id,
        {
            "task_id": task.id,
            "status": "done",
            "resolved": picked.resolved,
            "candidates": len(cands),
            "selected": picked.id,
            "selector": "evidence",
        },
    )
    rundir.set_task_state(task.id, status="done", resolved=picked.resolved)


def make_evidence_run(runs_dir: Path, run_id: str = "why-run") -> Path:
    from swescale.config import load_config

    rundir = RunDir.open(Path(runs_dir), run_id, load_config("scripted"))
    machine = str(rundir.root.resolve())
    core = Task(
        id="why__core-1",
        repo="o/core",
        base_commit="0" * 40,
        problem_statement="f(x) must add one.",
        fail_to_pass=F2P,
        pass_to_pass=P2P,
    )
    patches = {
        "maj": _patch("pkg/core.py", "x + 2"),
        "alt": _patch("pkg/other.py", "x + 1", extra="tests/test_new.py"),
        "bad": _patch("pkg/core.py", "x +"),
        "win": _patch("pkg/core.py", "x + 1"),
    }
    producers = {"maj": [0, 1], "alt": [2], "bad": [3], "win": [5]}
    _trajectories(
        rundir,
        core,
        {i: patches[c] for c, ids in producers.items() for i in ids} | {4: ""},
        machine,
    )
    cands = [
        Candidate(
            id=cid,
            task_id=core.id,
            patch=patches[cid],
            trajectory_ids=[trajectory_id(core.id, 0, i) for i in ids],
        )
        for cid, ids in producers.items()
    ]
    syntax = '  File "pkg/core.py", line 12\n    return x +\n             ^\nSyntaxError: invalid syntax\n'
    verdicts = {
        "static": {
            "maj": _static(),
            "alt": _static(locality=0.5, lines=6.0),
            "bad": _static(ok=False, error=syntax),
            "win": _static(),
        },
        "harvest": {
            "maj": _harvest("maj", {t: False for t in NEW_TESTS}),
            "alt": _harvest("alt", {t: True for t in NEW_TESTS}),
            "bad": _harvest("bad", {t: None for t in NEW_TESTS}),
            "win": _harvest("win", {t: True for t in NEW_TESTS}),
        },
        "regression": {
            "maj": _regression(P2P[:2]),
            "alt": _regression([]),
            "bad": _regression(P2P),
            "win": _regression([]),
        },
        "behaviour": {
            "maj": _behaviour(2 / 5, 1),
            "alt": _behaviour(2 / 5, 2),
            "bad": _behaviour(1 / 5, 1),
            "win": _behaviour(2 / 5, 2),
        },
    }
    grades = {
        "maj": _grade(core.id, False, P2P[:2]),
        "alt": _grade(core.id, True, []),
        "bad": _grade(core.id, False, P2P),
        "win": _grade(core.id, True, []),
    }
    _write(rundir, core, cands, verdicts, grades)

    util = core.model_copy(update={"id": "why__util-1", "repo": "o/util"})
    alike = {"p": _patch("pkg/util.py", "x + 1"), "q": _patch("pkg/util.py", "1 + x")}
    _trajectories(rundir, util, {0: alike["p"], 1: alike["q"]}, machine)
    cands = [
        Candidate(
            id=c, task_id=util.id, patch=alike[c], trajectory_ids=[trajectory_id(util.id, 0, i)]
        )
        for i, c in enumerate(alike)
    ]
    verdicts = {
        "static": {c: _static() for c in alike},
        "regression": {c: _regression([]) for c in alike},
        "behaviour": {c: _behaviour(1.0, 2) for c in alike},
    }
    _write(rundir, util, cands, verdicts, {c: _grade(util.id, True, []) for c in alike})
    rundir.record_failure(
        util.id, "verifier:judge", f"ModelError: see {machine}/swescale.log and {Path.home()}/x"
    )
    rundir.update_run_json(lambda r: r.update(ledger={"run": Cost().model_dump()}))
    return rundir.root
