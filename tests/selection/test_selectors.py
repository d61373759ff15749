"""Voting, ranking, calibration and foreign candidates on literal inputs."""

from __future__ import annotations

import json

import pytest

from swescale.selection.calibration import (
    FEATURES,
    POOL_ONLY,
    PRIOR,
    SANDBOX,
    LabelledPool,
    evidence_kind,
    features,
    fit_calibration,
    fit_grouped,
    labelled_rows,
    log_loss,
)
from swescale.selection.candidates import candidates_from, read_foreign_predictions
from swescale.selection.config import SelectionConfig
from swescale.selection.ranking import (
    execution_score,
    hybrid_ranking,
    matrix_ranking,
    model_score,
    rank_by_tests_passed,
)
from swescale.selection.selectors import (
    CalibratedSelector,
    HybridSelector,
    MajorityVoteSelector,
    TestVoteSelector,
    apply_threshold,
    make_selector,
)
from swescale.types import Candidate, Selection, Task, Verdict

TASK = Task(id="t1", repo="o/r", base_commit="abc", problem_statement="p")


def patch(value: int, path: str = "m.py") -> str:
    return f"--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-x = 0\n+x = {value}\n"


def cand(cid, n_traj=1, judge=None, repro=None, regression=None, resolved=None, infra=False):
    verdicts = {}
    if judge is not None:
        verdicts["judge"] = Verdict(verifier="judge", score=judge)
    if repro is not None:
        passed, total = repro
        verdicts["repro"] = Verdict(
            verifier="repro",
            score=passed / total if total else 0.0,
            details={"passed": passed, "total": total},
            infra_error="container died" if infra else None,
        )
    if regression is not None:
        verdicts["regression"] = Verdict(verifier="regression", score=regression)
    return Candidate(
        id=cid,
        task_id="t1",
        patch=patch(1),
        trajectory_ids=[f"{cid}-{i}" for i in range(n_traj)],
        verdicts=verdicts,
        resolved=resolved,
    )


def test_candidates_dedupe_and_order_by_votes():
    cands = candidates_from(
        "t1",
        {"a": patch(1), "b": patch(2), "c": patch(1).replace("x = 1", "x=1  # ok"), "d": ""},
        foreign={"sysX": patch(2), "sysY": patch(2)},
    )
    assert [len(c.trajectory_ids) + len(c.sources) for c in cands] == [3, 2]
    assert cands[0].sources == ["sysX", "sysY"] and cands[0].trajectory_ids == ["b"]
    assert cands[1].trajectory_ids == ["a", "c"] and cands[1].patch == patch(1)
    assert all(len(c.id) == 12 for c in cands)
    assert candidates_from("t1", {"a": "", "b": "garbage"}) == []


def test_a_producer_note_on_an_inexact_patch_reaches_its_candidate():
    note = "patch not exact: bytes that are not UTF-8 in a.py are U+FFFD in the patch"
    cands = candidates_from(
        "t1", {"a": patch(1), "b": patch(1), "c": patch(2)}, notes={"b": [note]}
    )
    by_traj = {t: c for c in cands for t in c.trajectory_ids}
    assert by_traj["a"].notes == [note] and by_traj["c"].notes == []


def test_majority_vote_and_deterministic_ties():
    cands = [cand("bbb", 2), cand("aaa", 2), cand("ccc", 1)]
    sel = MajorityVoteSelector().select(TASK, cands)
    assert sel.candidate_id == "aaa" and sel.ranking == ["aaa", "bbb", "ccc"]
    # Two candidates with two votes each: a tie, broken by the id, and said so.
    assert sel.tied == ["bbb"] and sel.decided_by == "candidate id"
    assert "2 of 5 producers" in sel.rationale
    assert MajorityVoteSelector().select(TASK, list(reversed(cands))).ranking == sel.ranking
    clear = MajorityVoteSelector().select(TASK, [cand("a", 3), cand("b", 1)])
    assert clear.tied == [] and clear.decided_by == "votes 3 vs 1"


def test_confidence_is_one_probability_across_selectors():
    """Every selector states its pick's P(resolved) from the same calibration: two
    selectors picking the same candidate state the same confidence."""
    from swescale.selection.selectors import pick_probability

    cands = [cand("a", 1, repro=(2, 2), regression=1.0), cand("b", 3, repro=(0, 2))]
    expected = pick_probability(cands[0], cands)
    for name in ("test_vote", "evidence", "hybrid", "calibrated"):
        sel = make_selector(name).select(TASK, cands)
        assert sel.candidate_id == "a", name
        assert sel.confidence == pytest.approx(expected), name
        assert not sel.tied and sel.decided_by, name
    majority = make_selector("majority").select(TASK, cands)
    assert majority.candidate_id == "b"
    assert majority.confidence == pytest.approx(pick_probability(cands[1], cands))
    assert majority.confidence < expected


def test_a_tie_on_the_evidence_is_a_tie_not_certainty():
    """Two candidates that pass every test: the evidence cannot tell them apart, so the
    selection names the other one as tied and the tie-break that decided."""
    a = cand("a", 1, repro=(2, 2), regression=1.0)
    b = cand("b", 2, repro=(2, 2), regression=1.0)
    for c in (a, b):  # one behaviour class: they behave alike
        c.verdicts["behaviour"] = Verdict(verifier="behaviour", score=1.0)
    for name in ("test_vote", "evidence", "hybrid"):
        sel = make_selector(name).select(TASK, [a, b])
        assert sel.candidate_id == "b" and sel.tied == ["a"], name
        assert "votes 2 vs 1 after ties on " in sel.decided_by, name


def test_empty_candidate_set_gives_no_patch_with_a_reason():
    for name in ("majority", "test_vote", "hybrid", "calibrated"):
        sel = make_selector(name).select(TASK, [])
        assert sel.candidate_id is None and "no candidates" in sel.rationale


def test_test_voting_ranks_by_tests_passed_then_votes():
    cands = [cand("a", 5, repro=(1, 3)), cand("b", 1, repro=(3, 3)), cand("c", 2, repro=(3, 3))]
    assert [c.id for c in rank_by_tests_passed(cands)] == ["c", "b", "a"]
    sel = TestVoteSelector().select(TASK, cands)
    assert sel.candidate_id == "c" and sel.tied == ["b"]
    assert sel.decided_by == "votes 2 vs 1 after ties on reproduction tests passed, regression"
    # No tests at all: falls back to votes, says so.
    sel = TestVoteSelector().select(TASK, [cand("a", 1), cand("b", 3)])
    assert sel.candidate_id == "b" and "no reproduction tests" in sel.rationale


def test_matrix_ranking_counts_passes_and_ignores_unknown():
    matrix = {
        "t1": {"a": True, "b": False, "c": None},
        "t2": {"a": True, "b": True, "c": True},
        "t3": {"a": None, "b": True, "c": True},
    }
    assert matrix_ranking(matrix, ["a", "b", "c", "d"]) == [("a", 2), ("b", 2), ("c", 2), ("d", 0)]
    matrix["t2"]["a"] = False
    assert matrix_ranking(matrix, ["c", "a"]) == [("c", 2), ("a", 1)]


def test_hybrid_keeps_top_k_by_model_then_execution_breaks_ties_by_model():
    cands = [
        cand("a", judge=0.9, repro=(1, 2)),
        cand("b", judge=0.8, repro=(2, 2)),
        cand("c", judge=0.7, repro=(2, 2)),
        cand("d", judge=0.2, repro=(2, 2)),  # passes tests but the model dislikes it: cut
    ]
    assert [c.id for c in hybrid_ranking(cands, top_k=3)] == ["b", "c", "a", "d"]
    assert [c.id for c in hybrid_ranking(cands, top_k=4)] == ["b", "c", "d", "a"]
    sel = HybridSelector(top_k=3).select(TASK, cands)
    assert sel.candidate_id == "b" and 0 < sel.confidence <= 1


def test_regressions_are_penalized_and_infra_errors_are_not_evidence():
    breaks = cand("a", judge=0.8, repro=(2, 2), regression=0.5)
    clean = cand("b", judge=0.8, repro=(2, 2), regression=1.0)
    assert execution_score(breaks) == pytest.approx(0.5)
    assert hybrid_ranking([breaks, clean], 2)[0].id == "b"
    dead = cand("c", judge=0.8, repro=(0, 2), infra=True)
    assert execution_score(dead) is None  # not counted against it
    assert model_score(cand("x")) is None


def test_calibration_fit_separates_and_abstains():
    # Labelled history: candidates passing tests resolve, others do not.
    tasks = []
    for i in range(12):
        good = cand(f"g{i}", judge=0.6, repro=(2, 2), regression=1.0, resolved=True)
        bad = cand(f"b{i}", 2, judge=0.7, repro=(0, 2), regression=1.0, resolved=False)
        tasks.append([good, bad])
    rows = labelled_rows(tasks)
    assert len(rows) == 24
    cal = fit_calibration(rows)
    assert cal.fitted_on == 24
    assert log_loss(cal, rows) < log_loss(PRIOR, rows)
    sel = CalibratedSelector(cal).select(TASK, tasks[0])
    assert sel.candidate_id.startswith("g") and sel.confidence > 0.5
    # Nothing convincing: abstain, or flag when asked to.
    weak = [cand("w1", judge=0.1, repro=(0, 2)), cand("w2", judge=0.2, repro=(0, 2))]
    abstained = CalibratedSelector(cal, threshold=0.5).select(TASK, weak)
    assert abstained.candidate_id is None and abstained.flagged
    flagged = CalibratedSelector(cal, threshold=0.5, mode="flag").select(TASK, weak)
    assert flagged.candidate_id is not None and flagged.flagged


def test_calibration_fits_and_applies_on_one_kind_of_evidence():
    """Pools judged in sandboxes and pools with pool signals only are not mixed: the fit
    uses one kind, and a pick on the other kind says it is not calibrated there."""
    sandbox_pools, pool_only = [], []
    for i in range(6):
        good = cand(f"g{i}", repro=(2, 2), regression=1.0, resolved=True)
        bad = cand(f"b{i}", 2, repro=(0, 2), regression=1.0, resolved=i % 3 == 0)
        sandbox_pools.append(
            LabelledPool(task_id=f"s{i}", group=f"r{i % 2}", candidates=[good, bad])
        )
        plain = [cand(f"p{i}", resolved=False), cand(f"q{i}", 2, resolved=True)]
        pool_only.append(LabelledPool(task_id=f"p{i}", group=f"r{i % 2}", candidates=plain))
    assert evidence_kind(sandbox_pools[0].candidates) == SANDBOX
    assert evidence_kind(pool_only[0].candidates) == POOL_ONLY
    cal = fit_grouped(sandbox_pools + pool_only)
    assert cal.evidence == SANDBOX and cal.fitted_on == 12 and cal.cv["tasks"] == 6
    assert fit_grouped(sandbox_pools + pool_only, kind=POOL_ONLY).evidence == POOL_ONLY
    on_sandbox = CalibratedSelector(cal).select(TASK, sandbox_pools[1].candidates)
    assert not on_sandbox.flagged and on_sandbox.candidate_id == "g1"
    elsewhere = CalibratedSelector(cal).select(TASK, pool_only[0].candidates)
    assert elsewhere.flagged and "not calibrated here" in elsewhere.rationale


def test_cross_fitted_calibration_uses_other_repositories_of_the_same_kind(tmp_path):
    from swescale.record.task import TaskRecord
    from swescale.selection.metrics import select_all

    def record(task_id, repo, cands):
        task = Task(id=task_id, repo=repo, base_commit="abc", problem_statement="p")
        return TaskRecord(task_id=task_id, path=tmp_path, candidates=cands, task=task)

    judged = [
        record(f"j{i}", f"o/r{i}", [cand(f"g{i}", repro=(2, 2), resolved=True),
                                    cand(f"b{i}", 2, repro=(0, 2), resolved=False)])
        for i in range(3)
    ]  # fmt: skip
    plain = [record("p0", "o/r0", [cand("q0", 2, resolved=False), cand("p0", resolved=True)])]
    selections = select_all(judged + plain, "calibrated")
    assert [s.candidate_id for s in selections[:3]] == ["g0", "g1", "g2"]
    assert "fit on 4 labelled candidates" in selections[0].rationale
    # The pool-only task has no other repository with pool-only evidence: the prior.
    assert "prior weights" in selections[3].rationale and not selections[3].flagged


def test_calibration_with_one_sided_labels_uses_the_base_rate():
    rows = [([0.5] * 6, False)] * 5
    cal = fit_calibration(rows)
    assert cal.probability([1.0] * 6) < 0.1
    assert fit_calibration([]) is PRIOR


def test_calibration_roundtrip_and_bad_file(tmp_path):
    path = tmp_path / "cal.json"
    PRIOR.save(path)
    cfg = SelectionConfig(calibration_path=str(path), abstain_below=0.99)
    sel = make_selector("calibrated", cfg).select(TASK, [cand("a", judge=0.5)])
    assert sel.candidate_id is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="calibration file"):
        make_selector("calibrated", cfg)


def test_features_with_missing_verifiers_are_neutral():
    c = cand("a")
    named = dict(zip(FEATURES, features(c, [c]), strict=True))
    assert named["model"] == named["repro"] == named["regression"] == named["static"] == 0.5
    assert named["has_model"] == named["has_tests"] == named["has_regression"] == 0.0
    assert named["vote_share"] == named["behaviour_share"] == 1.0


def test_apply_threshold_keeps_confident_picks():
    sel = Selection(task_id="t", candidate_id="a", confidence=0.8)
    assert apply_threshold(sel, 0.5, "abstain") == sel


def test_unknown_selector_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown selector"):
        make_selector("nope")
    with pytest.raises(ValueError, match="needs a model"):
        make_selector("agent")


def test_foreign_predictions_with_unknown_ids_and_bad_rows(tmp_path):
    path = tmp_path / "sysA.jsonl"
    rows = [
        {"instance_id": "t1", "model_name_or_path": "sysA", "model_patch": patch(2)},
        {"instance_id": "t1", "model_name_or_path": "sysA", "model_patch": patch(3)},
        {"instance_id": "zzz", "model_name_or_path": "sysA", "model_patch": patch(2)},
        {"model_patch": "x"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    imported = read_foreign_predictions([path, tmp_path / "missing.jsonl"], known_task_ids=["t1"])
    assert imported.unknown_ids == ["zzz"]
    assert set(imported.for_task("t1")) == {"sysA", "sysA#2"}
    assert len(imported.errors) >= 3  # no id, broken JSON, missing file
    cands = candidates_from("t1", {"traj": patch(2)}, foreign=imported.for_task("t1"))
    assert cands[0].sources == ["sysA"] and cands[0].trajectory_ids == ["traj"]


def test_representative_patch_prefers_a_clean_one():
    clean = patch(1)
    miscounted = clean.replace("@@ -1 +1 @@", "@@ -1,3 +1,3 @@")
    cands = candidates_from("t1", {"a": miscounted, "b": clean})
    assert len(cands) == 1 and cands[0].patch == clean
