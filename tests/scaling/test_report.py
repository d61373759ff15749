"""The run report: pass@k, reading a run directory (finished, killed, damaged), HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from swescale.config import load_config
from swescale.record.run import RunDir, trajectory_id
from swescale.record.trajectory import TrajectoryRecorder
from swescale.report import build_site, load_run, pass_at_k, print_summary
from swescale.report.render import comparison_rows
from swescale.scaling.ledger import BudgetLedger
from swescale.types import Cost, Step


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 0, 1, 0.0),
        (4, 4, 1, 1.0),
        (4, 1, 1, 0.25),
        (4, 1, 4, 1.0),
        (4, 2, 2, 1 - 1 / 6),
        (3, 1, 2, 2 / 3),
    ],
)
def test_pass_at_k(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        pass_at_k(2, 3, 1)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def _trajectory(rd: RunDir, task: str, index: int, patch: str | None) -> str:
    tid = trajectory_id(task, 0, index)
    with TrajectoryRecorder(
        rd.trajectory_path(task, tid), {"trajectory_id": tid, "task_id": task}
    ) as rec:
        rec.write_step(Step(index=0, message={"role": "assistant", "content": "ls"}))
        if patch is not None:
            rec.write_footer("submitted", patch, {})
    return tid


def _make_run(tmp_path: Path) -> Path:
    rd = RunDir.open(tmp_path, "r1", load_config())
    good = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    t1 = [_trajectory(rd, "task-1", i, good if i < 2 else "") for i in range(3)]
    _trajectory(rd, "task-2", 0, None)  # killed mid-trajectory
    cand = {
        "id": "c1",
        "task_id": "task-1",
        "patch": good,
        "trajectory_ids": t1[:2],
        "resolved": True,
    }
    rd.candidates_path("task-1").write_text(json.dumps(cand) + "\n")
    rd.selection_path("task-1").write_text(
        json.dumps(
            {"task_id": "task-1", "candidate_id": "c1", "selector": "hybrid", "confidence": 0.8}
        )
    )
    rd.write_result("task-1", {"task_id": "task-1", "status": "done", "resolved": True})
    rd.set_task_state("task-1", status="done")
    rd.set_task_state("task-3", status="failed", reason="ImageBuildError: no python")
    rd.record_failure("task-3", "image", "ImageBuildError: no python")
    ledger = BudgetLedger()
    ledger.charge("task-1", Cost(tokens_in=100, tokens_out=20, model_seconds=3.0))
    rd.update_run_json(lambda r: r.update(ledger=ledger.to_dict()))
    return rd.root


def test_load_run_summarizes_every_task(tmp_path: Path) -> None:
    summary = load_run(_make_run(tmp_path))
    by_id = {t.task_id: t for t in summary.tasks}
    assert set(by_id) == {"task-1", "task-2", "task-3"}
    t1 = by_id["task-1"]
    assert (t1.finished, t1.trajectories, t1.candidates) == (3, 3, 1)
    assert t1.selected == "c1" and t1.resolved is True
    assert t1.resolving_trajectories == 2
    assert t1.cost["tokens_in"] == 100
    assert by_id["task-2"].finished == 0 and by_id["task-2"].trajectories == 1
    assert by_id["task-3"].status == "failed" and "no python" in by_id["task-3"].reason
    assert summary.resolve_rate == 1.0
    curve = summary.pass_at()
    assert [k for k, _ in curve] == [1, 2, 3]
    assert curve[0][1] == pytest.approx(2 / 3) and curve[-1][1] == 1.0


def test_report_renders_site_and_console(tmp_path: Path) -> None:
    run = _make_run(tmp_path)
    site = build_site(run)
    page = site.index.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "task-3" in page and "no python" in page
    assert (site.root / "task" / "task-1.html").is_file()
    # A trajectory killed mid-way still gets its page, marked unfinished.
    killed = (site.root / "trajectory" / "task-2.r0.t00.html").read_text()
    assert "unfinished" in killed
    console = Console(record=True, width=100)
    print_summary(load_run(run), console)
    text = console.export_text()
    assert "task-1" in text and "resolved 1/1" in text
    # The failure is stated once, with where its detail is.
    assert text.count("no python") == 1 and "failures.jsonl" in text


def test_console_summary_counts_what_it_does_not_list(tmp_path: Path) -> None:
    rd = RunDir.open(tmp_path, "many", load_config())
    for i in range(30):
        rd.set_task_state(f"task-{i:02d}", status="failed" if i % 10 == 0 else "done")
        if i % 10 == 0:
            rd.set_task_state(f"task-{i:02d}", reason=f"ImageBuildError: number {i}")
    console = Console(record=True, width=120)
    print_summary(load_run(rd.root), console, max_rows=8)
    text = console.export_text()
    assert "… and 22 more tasks" in text
    # Failed tasks are the ones kept in a shortened table.
    assert all(f"task-{i:02d}" in text for i in (0, 10, 20))
    assert "3 task(s) failed" in text


def test_load_run_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path / "nope")


@pytest.mark.parametrize(
    "comparison",
    [
        {"majority": {"accuracy": 0.5}, "hybrid": {"accuracy": 0.75}},
        [{"selector": "majority", "accuracy": 0.5}],
        {"rows": [{"selector": "hybrid", "accuracy": 1.0}]},
    ],
)
def test_comparison_rows_accepts_common_shapes(comparison: object) -> None:
    rows = comparison_rows(comparison)
    assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows)
