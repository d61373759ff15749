"""From a run's record to what the bot proposes (no Docker: the record is written here
in the pipeline's own format), and when a run directory is resumed or set aside."""

from __future__ import annotations

from pathlib import Path

import pytest

from swescale.ci.bot import decide, make_plan, open_run_dir
from swescale.ci.events import parse_event
from swescale.record.task import write_candidates, write_selection, write_verdicts
from swescale.scaling.stages import write_task
from swescale.types import Candidate, Selection, Verdict

from .conftest import FIX_PATCH, comment_event

FORBIDDEN = FIX_PATCH.replace("calc.py", "setup.cfg")


@pytest.fixture
def plan(calc_repo, tmp_path: Path):
    return make_plan(
        parse_event(comment_event("/swescale n=2")),
        calc_repo[0],
        overrides=[f"runs_dir={tmp_path}"],
    )


def _record(plan, candidates: list[Candidate], chosen: str | None, rationale: str = "r"):
    rundir = open_run_dir(plan.run_cfg, plan.run_id, plan.task)
    folder = rundir.task_dir(plan.task.id)
    write_task(rundir, plan.task)
    write_candidates(folder, candidates)
    write_verdicts(
        folder,
        "regression",
        {c.id: Verdict(verifier="regression", score=1.0, passed=True) for c in candidates},
    )
    write_selection(
        folder,
        Selection(
            task_id=plan.task.id, selector="hybrid", candidate_id=chosen, rationale=rationale
        ),
    )
    result = {
        "status": "done",
        "trajectories": {"finished": 2},
        "cost": {"tokens_in": 100, "tokens_out": 20},
    }
    return rundir, result


def _cand(cid: str, patch: str) -> Candidate:
    return Candidate(id=cid, task_id="acme__calc-7", patch=patch, trajectory_ids=["t0"])


def test_selected_patch_is_proposed_with_its_evidence(plan) -> None:
    rundir, result = _record(plan, [_cand("a", FIX_PATCH), _cand("b", FORBIDDEN)], "a")
    chosen, reasons, selection, candidates, trajectories, cost = decide(plan, rundir, result)
    assert chosen is not None and chosen.id == "a" and reasons == []
    assert chosen.verdicts["regression"].passed is True
    assert selection.selector == "hybrid" and len(candidates) == 2
    assert trajectories == 2 and cost.tokens_in == 100


def test_guard_rails_turn_a_selection_into_a_comment(plan) -> None:
    rundir, result = _record(plan, [_cand("b", FORBIDDEN)], "b")
    chosen, reasons, *_ = decide(plan, rundir, result)
    assert chosen is None
    assert reasons == [
        "the selected patch breaks a guard rail: touches setup.cfg (forbidden by 'setup.cfg')"
    ]


def test_abstention_and_failures_give_reasons(plan) -> None:
    rundir, result = _record(plan, [_cand("a", FIX_PATCH)], None, "confidence below 0.5")
    chosen, reasons, selection, *_ = decide(plan, rundir, result)
    assert chosen is None and reasons == ["no candidate was selected out of 1"]
    assert "confidence below 0.5" in selection.rationale
    failed = {"status": "failed", "stage": "image", "reason": "ImageBuildError: pip failed"}
    chosen, reasons, *_ = decide(plan, rundir, failed)
    assert chosen is None
    assert reasons == ["the run failed at image: ImageBuildError: pip failed"]


def test_run_directory_resumed_for_the_same_question_set_aside_otherwise(plan) -> None:
    first, _ = _record(plan, [_cand("a", FIX_PATCH)], "a")
    marker = first.root / "marker"
    marker.write_text("x")
    again = open_run_dir(plan.run_cfg, plan.run_id, plan.task)
    assert again.root == first.root and marker.exists()
    changed = plan.task.model_copy(update={"problem_statement": "new text"})
    fresh = open_run_dir(plan.run_cfg, plan.run_id, changed)
    assert fresh.root == first.root and not marker.exists()
    aside = [p for p in first.root.parent.iterdir() if p.name.startswith(f"{plan.run_id}.")]
    assert len(aside) == 1 and (aside[0] / "marker").exists()


def test_infrastructure_failures_are_told_apart_from_no_fix() -> None:
    from swescale.ci.bot import exit_summary, infra_failed

    errored = {"status": "done", "exit_statuses": {"t0": "model_error", "t1": "model_error"}}
    assert infra_failed(errored) and exit_summary(errored) == "model_error x2"
    mixed = {"status": "done", "exit_statuses": {"t0": "model_error", "t1": "submitted"}}
    assert not infra_failed(mixed)
    assert exit_summary(mixed) in ("model_error x1, submitted x1", "submitted x1, model_error x1")
    assert infra_failed({"status": "failed"})
    assert not infra_failed({"status": "done"}) and exit_summary({}) == "no trajectory finished"


def test_a_run_that_failed_on_infrastructure_is_not_reused(plan) -> None:
    import json

    first, _ = _record(plan, [], None)
    (first.task_dir(plan.task.id) / "result.json").write_text(
        json.dumps({"status": "done", "exit_statuses": {"t0": "model_error"}})
    )
    fresh = open_run_dir(plan.run_cfg, plan.run_id, plan.task)
    assert not (fresh.task_dir(plan.task.id) / "result.json").exists()


def test_model_errors_are_never_put_on_the_issue_text(plan) -> None:
    from swescale.ci.payloads import abstention_comment
    from swescale.types import Cost

    rundir, result = _record(plan, [], None)
    result["exit_statuses"] = {"t0": "model_error", "t1": "no_patch"}
    chosen, reasons, *_ = decide(plan, rundir, result)
    assert chosen is None and reasons[-1] == (
        "1 of 2 trajectories ended on a model or sandbox error (the bot's set-up, not the issue)"
    )
    facts = {"selection": None, "candidates": [], "trajectories": 2, "cost": Cost(), "run_id": "r"}
    failed = abstention_comment(issue_number=7, reasons=reasons, failed=True, **facts)["body"]
    assert "The run for #7 failed" in failed and "not of the issue text" in failed
    assert "More detail in the issue text" not in failed
    honest = abstention_comment(issue_number=7, reasons=["no patch"], **facts)["body"]
    assert "No fix is proposed for #7." in honest and "More detail in the issue text" in honest
