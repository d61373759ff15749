"""pass@k, selector accuracy, offline re-selection on a run directory, and the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from swescale.cli import app
from swescale.record.task import (
    read_task_record,
    task_dirs,
    write_candidates,
    write_labels,
    write_selection,
    write_verdicts,
)
from swescale.selection.metrics import (
    pass_at_k,
    resolve_rate_vs_samples,
    run_offline_selection,
    selection_comparison,
)
from swescale.selection.selectors import MajorityVoteSelector
from swescale.types import Candidate, Cost, Selection, Verdict


def test_pass_at_k_unbiased_estimator():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 1, 2) == pytest.approx(1 - (4 * 3) / (5 * 4))
    assert pass_at_k(4, 1, 10) == 1.0  # k beyond n: all samples
    assert pass_at_k(0, 0, 1) == 0.0


def _write_task(run, task_id, cands, labels, verdicts, selection=None):
    folder = run / task_id
    write_candidates(folder, cands)
    write_labels(folder, labels)
    for name, by_cand in verdicts.items():
        write_verdicts(folder, name, by_cand)
    if selection:
        write_selection(folder, selection)


def _cand(task, cid, trajs):
    patch = f"--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 0\n+x = {cid}\n"
    return Candidate(id=cid, task_id=task, patch=patch, trajectory_ids=trajs)


def _v(name, score, tokens=0):
    return Verdict(verifier=name, score=score, cost=Cost(tokens_in=tokens))


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "runs" / "r1"
    # Task A: the majority is wrong; tests know better.
    _write_task(
        run,
        "A",
        [_cand("A", "a1", ["t1", "t2", "t3"]), _cand("A", "a2", ["t4"])],
        {"a1": False, "a2": True},
        {
            "repro": {"a1": _v("repro", 0.0, 100), "a2": _v("repro", 1.0, 100)},
            "judge": {"a1": _v("judge", 0.7), "a2": _v("judge", 0.6)},
        },
        Selection(task_id="A", candidate_id="a1", selector="hybrid"),
    )
    # Task B: everyone agrees and is right.
    _write_task(
        run,
        "B",
        [_cand("B", "b1", ["t1", "t2", "t3", "t4"])],
        {"b1": True},
        {"repro": {"b1": _v("repro", 1.0)}, "judge": {"b1": _v("judge", 0.9)}},
    )
    # Task C: nothing resolves.
    _write_task(
        run,
        "C",
        [_cand("C", "c1", ["t1", "t2"]), _cand("C", "c2", ["t3"])],
        {"c1": False, "c2": False},
        {"repro": {"c1": _v("repro", 0.0), "c2": _v("repro", 0.0)}},
    )
    # A damaged task: bad lines are skipped and reported, never fatal.
    bad = run / "D"
    bad.mkdir()
    (bad / "candidates.jsonl").write_text('{"id": 1}\nnot json\n')
    (bad / "verdicts").mkdir()
    (bad / "verdicts" / "judge.json").write_text("{broken")
    return run


def test_records_round_trip_and_damage_is_reported(run_dir):
    records = {r.task_id: r for r in map(read_task_record, task_dirs(run_dir))}
    a = records["A"]
    assert {c.id: c.resolved for c in a.candidates} == {"a1": False, "a2": True}
    assert a.candidates[1].verdicts["repro"].score == 1.0
    assert a.selection.candidate_id == "a1"
    assert records["D"].candidates == [] and len(records["D"].problems) >= 2


def test_selection_comparison_rows(run_dir):
    rows = {r["selector"]: r for r in selection_comparison(run_dir)}
    assert rows["pass@1"]["accuracy"] == pytest.approx((0.25 + 1.0 + 0.0) / 3)
    assert rows["pass@4"]["accuracy"] == pytest.approx(2 / 3)
    assert rows["majority"]["resolved"] == 1  # picks a1 in A
    assert rows["test_vote"]["resolved"] == 2  # a2 in A, b1 in B
    assert rows["run"]["resolved"] == 0  # the run selected only in A, wrongly
    assert rows["test_vote"]["labelled"] == 3
    assert rows["test_vote"]["tokens_per_resolved"] == pytest.approx(200 / 2)


def test_resolve_rate_grows_with_samples(run_dir):
    records = [read_task_record(d) for d in task_dirs(run_dir)]
    curve = resolve_rate_vs_samples(records, MajorityVoteSelector, sizes=[1, 4], repeats=20)
    assert curve[0][0] == 1 and 0 < curve[0][1] <= curve[1][1] + 0.2
    assert curve[1][1] == pytest.approx(1 / 3)  # all samples: majority wins only B


def test_offline_selection_writes_next_to_the_run(run_dir):
    selections, summary = run_offline_selection(run_dir, "test_vote")
    assert (run_dir / "A" / "selection.test_vote.json").exists()
    lines = (run_dir / "predictions.test_vote.jsonl").read_text().splitlines()
    preds = {json.loads(line)["instance_id"]: json.loads(line) for line in lines}
    assert "x = a2" in preds["A"]["model_patch"]
    assert summary["resolved"] == 2 and summary["problems"]


def test_select_cli(run_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["select", "--run", str(run_dir), "--selector", "majority"])
    assert result.exit_code == 0, result.output
    assert "majority" in result.output and (run_dir / "predictions.majority.jsonl").exists()
    result = runner.invoke(app, ["select", "--run", str(tmp_path / "nope")])
    # Rich wraps long messages at the terminal width: compare with whitespace collapsed.
    assert result.exit_code == 2 and "does not exist" in " ".join(result.output.split())
    result = runner.invoke(app, ["select", "--run", str(run_dir), "--selector", "bogus"])
    assert result.exit_code == 2 and "unknown" in result.output


def test_foreign_predictions_join_the_candidates_offline(run_dir, tmp_path):
    foreign = tmp_path / "other_system.jsonl"
    rows = [
        # Agrees with A's right patch (a2): majority now ties 3-3... plus a second system.
        {
            "instance_id": "A",
            "model_name_or_path": "sysX",
            "model_patch": _cand("A", "a2", []).patch,
        },
        {
            "instance_id": "A",
            "model_name_or_path": "sysY",
            "model_patch": _cand("A", "a2", []).patch,
        },
        {
            "instance_id": "A",
            "model_name_or_path": "sysZ",
            "model_patch": _cand("A", "a2", []).patch,
        },
        {"instance_id": "NOT-IN-RUN", "model_name_or_path": "sysX", "model_patch": "x"},
    ]
    foreign.write_text("".join(json.dumps(r) + "\n" for r in rows) + "garbage\n")
    selections, summary = run_offline_selection(run_dir, "majority", foreign=[foreign])
    picks = {s.task_id: s.candidate_id for s in selections}
    assert picks["A"] == "a2"  # 1 trajectory + 3 systems beat 3 trajectories
    assert summary["foreign_unknown_ids"] == ["NOT-IN-RUN"]
    assert any("garbage" in p or "JSON" in p for p in summary["problems"])
    result = CliRunner().invoke(
        app, ["select", "--run", str(run_dir), "-s", "majority", "--foreign", str(foreign)]
    )
    assert result.exit_code == 0 and "NOT-IN-RUN" in result.output


def test_fit_calibration_from_a_run_and_use_it(run_dir, tmp_path):
    out = tmp_path / "cal.json"
    runner = CliRunner()
    result = runner.invoke(
        app, ["select", "--run", str(run_dir), "-s", "calibrated", "--fit-calibration", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["fitted_on"] == 5 and saved["weights"][1] > 0  # repro pass rate helps
    result = runner.invoke(
        app,
        ["select", "--run", str(run_dir), "-s", "calibrated", "--calibration", str(out),
         "--abstain-below", "0.99"],
    )  # fmt: skip
    assert result.exit_code == 0
    summary = json.loads((run_dir / "selection.calibrated.summary.json").read_text())
    assert summary["abstained"] >= 3  # nothing is that certain: no patch, flagged
