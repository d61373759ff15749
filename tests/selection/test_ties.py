"""Honest ties: when the evidence cannot tell the finalists apart, the selection names
the tie, its members and what chose among them."""

from __future__ import annotations

from swescale.selection.agent_selector import SelectionAgent
from swescale.selection.ranking import evidence_ranking, evidence_tie
from swescale.selection.selectors import CalibratedSelector, EvidenceSelector, HybridSelector
from swescale.types import Candidate, Selection, Task, Verdict

TASK = Task(id="t1", repo="o/r", base_commit="abc", problem_statement="p")


def patch(value: int) -> str:
    return f"--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 0\n+x = {value}\n"


def cand(cid, votes=1, issue=None, regression=1.0, judge=None, share=None):
    verdicts = {
        "static": Verdict(verifier="static", score=1.0, passed=True, details={"size_ratio": 1.0}),
        "regression": Verdict(verifier="regression", score=regression),
    }
    if issue is not None:
        verdicts["issue"] = Verdict(verifier="issue", score=issue)
    if judge is not None:
        verdicts["judge"] = Verdict(verifier="judge", score=judge)
    if share is not None:
        verdicts["behaviour"] = Verdict(verifier="behaviour", score=share)
    return Candidate(id=cid, task_id="t1", patch=patch(ord(cid[0])), verdicts=verdicts,
                     trajectory_ids=[f"{cid}-{i}" for i in range(votes)])  # fmt: skip


def test_a_tie_on_the_evidence_is_named_with_its_members_and_the_prior_that_broke_it():
    pool = [cand("a", votes=1, share=0.4), cand("b", votes=3, share=0.4), cand("c", share=0.2)]
    sel = EvidenceSelector().select(TASK, pool)
    assert sel.candidate_id == "b"  # more votes: the documented prior
    assert sel.tied == ["a"] and sel.decided_by.startswith("prior")
    assert "tie: the evidence cannot tell 2 candidates apart" in sel.rationale
    # The same pick from hybrid without a model, which ranks as evidence does.
    assert HybridSelector().select(TASK, pool).tied == ["a"]


def test_no_tie_when_the_evidence_decides():
    pool = [cand("a", issue=1.0), cand("b", votes=5, issue=0.0)]
    sel = EvidenceSelector().select(TASK, pool)
    assert sel.candidate_id == "a" and sel.tied == []
    assert "tie" not in sel.rationale


def test_the_judge_breaks_a_tie_when_there_is_one():
    pool = [cand("a", votes=3, judge=0.2, share=0.5), cand("b", votes=1, judge=0.9, share=0.5)]
    ranked = evidence_ranking(pool)
    assert [c.id for c in ranked] == ["b", "a"]
    assert [c.id for c in evidence_tie(ranked, pool)] == ["b", "a"]
    sel = EvidenceSelector().select(TASK, pool)
    assert sel.candidate_id == "b" and sel.decided_by.startswith("model score")


def test_calibrated_flags_or_abstains_on_a_tie():
    pool = [cand("a", votes=2, share=0.5), cand("b", votes=1, share=0.5)]
    flagged = CalibratedSelector().select(TASK, pool)
    assert flagged.flagged and flagged.candidate_id is not None
    assert {flagged.candidate_id, *flagged.tied} == {
        "a",
        "b",
    } and "pool signals only" in flagged.decided_by
    abstained = CalibratedSelector(on_tie="abstain").select(TASK, pool)
    assert abstained.candidate_id is None and "abstained" in abstained.rationale
    decided = CalibratedSelector().select(TASK, [cand("a", issue=1.0), cand("b", issue=0.0)])
    assert decided.tied == [] and not decided.flagged


class _Pre:
    name = "evidence"

    def select(self, task, candidates):
        return Selection(task_id=task.id, selector="evidence", candidate_id="a",
                         ranking=["a", "b", "c"], tied=["b"], decided_by="prior")  # fmt: skip


def test_the_selection_agent_compares_the_tie_and_says_it_broke_it():
    agent = SelectionAgent(make_sandbox=None, model=None, finalists=3, pre_selector=_Pre())
    seen = {}

    def run(task, finalists, labels):
        seen["finalists"] = [c.id for c in finalists]
        return "B", "b handles the empty case", ""

    agent._run = run
    sel = agent.select(TASK, [cand("a"), cand("b"), cand("c")])
    assert seen["finalists"] == ["a", "b"]
    assert sel.candidate_id == "b" and sel.tied == ["a"]
    assert sel.decided_by == "selection agent"


def test_auc_of_a_score_and_calibration_error_of_confidences(tmp_path):
    from swescale.record.task import TaskRecord
    from swescale.selection.metrics import calibration_error, score_auc

    def labelled(cid, issue, resolved):
        c = cand(cid, issue=issue)
        c.resolved = resolved
        return c

    good = TaskRecord("t1", tmp_path, [labelled("a", 1.0, True), labelled("b", 0.0, False)])
    mixed = TaskRecord("t2", tmp_path, [labelled("c", 0.5, True), labelled("d", 0.5, False)])
    found = score_auc([good, mixed], "issue")
    assert found == {"auc": 0.875, "candidates": 4, "resolved": 2}  # (1 + 0.75) / 2
    assert score_auc([good], "judge") is None  # judged nothing
    picks = [
        Selection(task_id="t1", candidate_id="a", confidence=0.9),
        Selection(task_id="t2", candidate_id="d", confidence=0.9),
    ]
    ece = calibration_error([good, mixed], picks)
    assert ece["picks"] == 2 and abs(ece["ece"] - 0.4) < 1e-9  # one bin: |0.9 - 0.5|
