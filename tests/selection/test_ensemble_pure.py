"""Ensemble selection on literal inputs: pools from predictions files, labels, behaviour
classes, the model-free ranking, pool signals, grouped calibration, bad input."""

from __future__ import annotations

import json

import pytest

from swescale.patches import changes_source, harvestable_paths, new_file_content
from swescale.record.task import read_task_record
from swescale.selection.calibration import (
    FEATURES,
    Calibration,
    LabelledPool,
    cross_validate,
    features,
    fit_grouped,
    reliability_table,
)
from swescale.selection.ensemble import (
    EnsembleConfig,
    ensemble_report,
    label_candidates,
    read_labels,
    read_pools,
    select_and_write,
    verify_task,
)
from swescale.selection.ranking import evidence_ranking, hybrid_ranking, static_gate
from swescale.selection.selectors import EvidenceSelector, HybridSelector
from swescale.types import Candidate, Task, Verdict
from swescale.verifiers.behaviour import BehaviourVerifier, behaviour_classes
from swescale.verifiers.harvest import HarvestedTest, Run, kept_units, score_row
from swescale.verifiers.static import patch_size, pool_signals, undefined_names

TASK = Task(id="o__r-1", repo="o/r", base_commit="abc", problem_statement="p")


def patch(value: int, path: str = "m.py") -> str:
    return f"--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-x = 0\n+x = {value}\n"


def cand(cid, sources, outcomes=None, harvest=None, static=None, resolved=None, value=1):
    verdicts = {}
    if outcomes is not None:
        verdicts["regression"] = Verdict(
            verifier="regression",
            score=1.0 - sum(v == "fail" for v in outcomes.values()) / 10,
            details={"applied": True, "outcomes": outcomes},
        )
    if harvest is not None:
        passed, total, cells = harvest
        verdicts["harvest"] = Verdict(
            verifier="harvest",
            score=passed / total,
            details={"passed": passed, "total": total, "cells": cells},
        )
    if static is not None:
        verdicts["static"] = Verdict(verifier="static", score=float(static), passed=static)
    return Candidate(
        id=cid,
        task_id=TASK.id,
        patch=patch(value),
        sources=list(sources),
        verdicts=verdicts,
        resolved=resolved,
    )


# ---------------------------------------------------------------------- behaviour


def test_two_texts_with_the_same_behaviour_vote_together_and_beat_a_bigger_text():
    fixes = {"tests/t.py::a": "pass"}
    right_a = cand("a", ["s1"], outcomes=fixes, value=1)
    right_b = cand("b", ["s2"], outcomes=fixes, value=2)
    wrong = cand("w", ["s3", "s4", "s5"], outcomes={}, value=3)  # most frequent text
    pool = [wrong, right_a, right_b]
    classes = behaviour_classes(pool)
    assert sorted(map(sorted, classes.values())) == [["a", "b"], ["w"]]
    verdicts = BehaviourVerifier().verify(TASK, pool)
    assert verdicts["a"].details["class_id"] == verdicts["b"].details["class_id"]
    assert verdicts["a"].score == pytest.approx(2 / 5)
    assert verdicts["w"].score == pytest.approx(3 / 5)
    # Class votes alone still favour the frequent wrong text; the tests decide first.
    for c in pool:
        c.verdicts["behaviour"] = verdicts[c.id]
    right_a.verdicts["harvest"] = Verdict(verifier="harvest", score=1.0)
    right_b.verdicts["harvest"] = Verdict(verifier="harvest", score=1.0)
    wrong.verdicts["harvest"] = Verdict(verifier="harvest", score=0.0)
    assert evidence_ranking(pool)[0].id in ("a", "b")


def test_behaviour_without_execution_evidence_says_so_and_not_applying_gets_nothing():
    pool = [cand("a", ["s1"]), cand("b", ["s2", "s3"])]
    verdicts = BehaviourVerifier().verify(TASK, pool)
    assert all(v.infra_error for v in verdicts.values())
    broken = cand("x", ["s4", "s5", "s6"], static=False)
    broken.verdicts["regression"] = Verdict(
        verifier="regression", score=0.0, details={"applied": False}
    )
    verdicts = BehaviourVerifier().verify(TASK, [*pool, broken])
    assert verdicts["x"].score == 0.0 and verdicts["x"].details["applies"] is False


# ---------------------------------------------------------------------- ranking


def test_evidence_ranking_gates_on_static_then_tests_then_class_votes():
    bad = cand("bad", ["s1", "s2", "s3"], static=False, harvest=(1, 1, {}))
    good = cand("good", ["s4"], static=True, harvest=(1, 1, {}))
    weak = cand("weak", ["s5", "s6"], static=True, harvest=(0, 1, {}))
    assert [c.id for c in evidence_ranking([bad, good, weak])] == ["good", "weak", "bad"]
    sel = EvidenceSelector().select(TASK, [bad, good, weak])
    assert sel.candidate_id == "good" and "harvest" in sel.rationale


def test_hybrid_without_a_model_ranks_every_candidate_by_evidence_not_the_top_voted():
    pool = [cand(f"w{i}", [f"s{i}a", f"s{i}b"], static=True, harvest=(0, 2, {})) for i in range(3)]
    right = cand("right", ["only"], static=True, harvest=(2, 2, {}))
    pool.append(right)
    assert hybrid_ranking(pool, top_k=2)[0].id == "right"
    sel = HybridSelector(top_k=2).select(TASK, pool)
    assert sel.candidate_id == "right" and "no model verdicts" in sel.rationale
    # With model scores, R2E-Gym's top-k cut applies again.
    for c in pool:
        c.verdicts["judge"] = Verdict(verifier="judge", score=0.9 if c.id != "right" else 0.1)
    assert hybrid_ranking(pool, top_k=2)[0].id != "right"


def test_evidence_ties_go_to_the_size_typical_of_the_pool():
    """Same checks, tests, votes and files: the patch nearest the pool's median size
    wins over one far larger or far smaller."""
    pool = []
    for cid, ratio, sources in (("huge", 4.0, ["s1"]), ("typical", 1.1, ["s2"]),
                                ("tiny", 0.2, ["s3"])):  # fmt: skip
        c = cand(cid, sources, static=True, harvest=(1, 1, {}))
        c.verdicts["static"].details.update({"size_ratio": ratio, "locality": 0.5})
        pool.append(c)
    assert [c.id for c in evidence_ranking(pool)] == ["typical", "huge", "tiny"]


# ---------------------------------------------------------------------- static signals


def test_pool_signals_size_and_locality():
    a = Candidate(id="a", task_id="t", patch=patch(1, "x.py"), sources=["s1", "s2"])
    b = Candidate(id="b", task_id="t", patch=patch(2, "x.py"), sources=["s3"])
    c = Candidate(id="c", task_id="t", patch=patch(3, "y.py") + patch(4, "z.py"), sources=["s4"])
    signals = pool_signals([a, b, c])
    assert signals["a"]["locality"] == pytest.approx(1 / 2)  # b (1 of 2 other votes)
    assert signals["b"]["locality"] == pytest.approx(2 / 3)  # a's two of three
    assert signals["c"]["locality"] == 0.0
    assert patch_size(c.patch) == 4 and signals["c"]["size_ratio"] == pytest.approx(2.0)


def test_pool_signals_count_what_applying_changed():
    """A hunk grading skips (its line already there) changes nothing: with the files and
    lines applying changed, the stale candidate is as local as the others."""
    a = Candidate(id="a", task_id="t", patch=patch(1, "x.py") + patch(2, "init.py"), sources=["s1"])
    b = Candidate(id="b", task_id="t", patch=patch(3, "x.py"), sources=["s2"])
    textual = pool_signals([a, b])
    assert textual["a"]["locality"] == pytest.approx(1 / 2)
    applied = pool_signals([a, b], {"a": ({"x.py"}, 2)})
    assert applied["a"]["locality"] == applied["b"]["locality"] == 1.0
    assert applied["a"]["lines"] == 2 and applied["a"]["files"] == 1


def test_the_report_names_candidates_that_change_the_test_setup(tmp_path):
    from swescale.selection.ensemble import write_task_inputs

    hook = cand("hook", ["s1", "s2"], static=True)
    hook.patch = (
        "diff --git a/tests/conftest.py b/tests/conftest.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/conftest.py\n@@ -0,0 +1 @@\n+import pytest\n"
    )
    fix = cand("fix", ["s3"], static=True, value=5)
    task_dir = tmp_path / TASK.id
    write_task_inputs(task_dir, TASK, [hook, fix])
    record = read_task_record(task_dir)
    selections = select_and_write(tmp_path, [record], ["majority", "evidence"])
    report = ensemble_report([record], selections)
    assert report["test_setup_changed"] == {
        TASK.id: {
            hook.id: {
                "paths": ["tests/conftest.py"],
                "producers": ["s1", "s2"],
                "picked_by": ["majority"],
            }
        }
    }


def test_a_patch_of_packaging_configuration_or_notes_changes_no_source():
    # Environment workarounds (pinning in tox.ini, setup.py) and notes fix nothing.
    assert not changes_source(patch(1, "setup.py") + patch(2, "tox.ini"))
    assert not changes_source(patch(1, "requirements-dev.txt") + patch(2, ".github/ci.yml"))
    assert not changes_source(patch(1, "issue_analysis.md") + NEW_SCRIPT + NEW_TEST)
    assert not changes_source(patch(1, "docs/topics/models.txt"))
    assert changes_source(patch(1, "setup.py") + patch(2, "pkg/core.py"))
    assert changes_source(patch(1, "pkg/templates/page.html"))
    # The gate ranks such a patch below one that changes the program, whatever the votes.
    config = cand("config", ["s1", "s2", "s3"], static=True)
    config.patch = patch(1, "setup.py") + patch(2, "tox.ini")
    fix = cand("fix", ["s4"], static=True)
    fix.patch = patch(3, "pkg/core.py")
    assert static_gate(config) == 0.0 and static_gate(fix) == 1.0
    assert evidence_ranking([config, fix])[0].id == "fix"


def test_import_check_imports_each_module_on_its_own(tmp_path):
    """A module that imports only after another one set up its dependencies fails the
    same way whichever other modules are checked with it (base and candidate agree)."""
    import subprocess
    import sys

    from swescale.verifiers.static import _CHECK, _MARK

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nodes.py").write_text("from pkg import adapters\nclass Node: ...\n")
    (pkg / "adapters.py").write_text("from pkg import nodes\nBASE = nodes.Node\n")
    (pkg / "ok.py").write_text("X = 1\n")
    (tmp_path / "check.py").write_text(_CHECK)

    def imports(modules):
        run = subprocess.run(
            [sys.executable, "check.py", json.dumps([]), json.dumps(modules)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(x for x in run.stdout.splitlines() if x.startswith(_MARK))
        return json.loads(line[len(_MARK) :])["import"]

    # pkg.nodes fails alone (adapters reads Node before it exists), and imports in a
    # process where pkg.adapters came first.
    alone = imports(["pkg.nodes"])
    together = imports(["pkg.adapters", "pkg.nodes", "pkg.ok"])
    assert "AttributeError" in alone["pkg.nodes"]
    assert together["pkg.nodes"] == alone["pkg.nodes"]
    assert together["pkg.adapters"] == ""
    assert together["pkg.ok"] == ""


def test_undefined_names_by_pyflakes():
    assert undefined_names("import os\nprint(os.sep, missing_name)\n") == {"missing_name"}
    assert undefined_names("x = 1\n") == set()
    assert undefined_names("def broken(:\n") is None


# ---------------------------------------------------------------------- harvested tests


NEW_TEST = (
    "diff --git a/tests/test_issue.py b/tests/test_issue.py\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/tests/test_issue.py\n@@ -0,0 +1,2 @@\n"
    "+def test_issue():\n+    assert 1 == 2\n"
)
NEW_SCRIPT = (
    "diff --git a/reproduce_bug.py b/reproduce_bug.py\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/reproduce_bug.py\n@@ -0,0 +1 @@\n+raise SystemExit(1)\n"
)


def test_harvestable_files_and_their_content():
    found = harvestable_paths(patch(1, "pkg/m.py") + NEW_TEST + NEW_SCRIPT)
    assert found == [("tests/test_issue.py", "test", True), ("reproduce_bug.py", "script", True)]
    # A build copy of the package is no test however it is named (a patch that carries
    # build/lib/ of an old setup.py install).
    built = NEW_TEST.replace("tests/test_issue.py", "build/lib/pkg/chardet/test.py")
    eggs = NEW_TEST.replace("tests/test_issue.py", ".eggs/x/tests/test_x.py")
    assert harvestable_paths(built + eggs + NEW_SCRIPT) == [("reproduce_bug.py", "script", True)]
    assert harvestable_paths(NEW_TEST.replace("tests/", "build_tools/tests/")) != []
    assert new_file_content(NEW_TEST, "tests/test_issue.py") == (
        "def test_issue():\n    assert 1 == 2\n"
    )


def test_kept_units_and_a_producer_never_votes_for_itself():
    test = HarvestedTest("tests/test_issue.py", "x", "test", sources=("mine",))
    other = HarvestedTest("reproduce_bug.py", "y", "script", sources=("theirs",))
    base = {
        test.id: Run(units={"test_issue": False, "test_old": True}),
        other.id: Run(units={"<file>": False}),
    }
    kept = kept_units(base)
    assert kept == {test.id: ["test_issue"], other.id: ["<file>"]}
    tests = {test.id: test, other.id: other}
    row = {test.id: Run(units={"test_issue": True}), other.id: Run(units={"<file>": True})}
    scored = score_row("mine", row, kept, tests)
    assert (scored["passed"], scored["total"]) == (1, 1)  # its own test is not counted
    failing = {test.id: Run(error="not_applied"), other.id: Run(error="not_applied")}
    assert score_row("theirs", failing, kept, tests)["passed"] == 0
    hung = {test.id: Run(error="timeout"), other.id: Run(error="infra: dead")}
    assert score_row("theirs", hung, kept, tests)["total"] == 0


# ---------------------------------------------------------------------- calibration


def _pools(n_repos=3, per_repo=6):
    pools = []
    for r in range(n_repos):
        for t in range(per_repo):
            right = cand("r", ["s1"], static=True, harvest=(2, 2, {}), resolved=True, value=1)
            wrong = cand(
                "w", ["s2", "s3"], static=True, harvest=(0, 2, {}), resolved=False, value=2
            )
            if t % 3 == 0:  # some noise: the tests mislead
                right.verdicts["harvest"] = Verdict(verifier="harvest", score=0.0)
            for c in (right, wrong):
                c.task_id = f"o{r}__r-{t}"
            pools.append(
                LabelledPool(task_id=f"o{r}__r-{t}", group=f"o{r}/r", candidates=[right, wrong])
            )
    return pools


def test_grouped_cross_validation_reports_brier_and_reliability():
    report = cross_validate(_pools(), folds=3)
    assert report["folds"] == 3 and report["groups"] == ["o0/r", "o1/r", "o2/r"]
    assert 0.0 <= report["brier"] <= report["base_rate_brier"]
    assert report["accuracy"] >= 0.6
    assert sum(row["count"] for row in report["reliability"]) == report["candidates"]
    cal = fit_grouped(_pools())
    assert cal.fitted_on == 36 and cal.cv["folds"] == 3 and "probabilities" not in cal.cv
    right, wrong = _pools()[1].candidates
    assert cal.probability(features(right, [right, wrong])) > cal.probability(
        features(wrong, [right, wrong])
    )


def test_cross_validation_needs_two_repositories_and_stale_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="two repositories"):
        cross_validate(_pools(n_repos=1))
    stale = tmp_path / "cal.json"
    stale.write_text(json.dumps({"features": ["model"], "weights": [1.0], "intercept": 0.0}))
    with pytest.raises(ValueError, match="other features"):
        Calibration.load(stale)
    assert len(FEATURES) == len(features(_pools()[0].candidates[0], _pools()[0].candidates))


def test_reliability_table_bins():
    rows = reliability_table([False, False, True, True], [0.1, 0.15, 0.85, 0.9], bins=5)
    assert [r["count"] for r in rows] == [2, 2]
    assert rows[0]["observed"] == 0.0 and rows[1]["observed"] == 1.0


# ---------------------------------------------------------------------- inputs


def _preds(path, model, rows):
    path.write_text(
        "".join(
            json.dumps({"instance_id": i, "model_name_or_path": model, "model_patch": p}) + "\n"
            for i, p in rows
        )
    )
    return path


def test_pools_from_predictions_labels_and_bad_input(tmp_path):
    a = _preds(tmp_path / "a.jsonl", "sysA", [(TASK.id, patch(1)), ("nope__x-9", patch(1))])
    b = _preds(tmp_path / "b.jsonl", "sysB", [(TASK.id, patch(1) + "\n"), (TASK.id, patch(2))])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        json.dumps({"instance_id": TASK.id, "model_name_or_path": "sysA", "resolved": True})
        + "\nnot json\n"
        + json.dumps({"instance_id": TASK.id, "model_name_or_path": "sysB", "resolved": "yes"})
        + "\n"
    )
    found_labels = read_labels([labels, tmp_path / "missing.jsonl"])
    assert found_labels.labels == {(TASK.id, "sysA"): True}
    assert any("not a label row" in e for e in found_labels.errors)
    assert any("true or false" in e for e in found_labels.errors)
    assert any("missing.jsonl" in e for e in found_labels.errors)
    found = read_pools([TASK], [a, b, empty], labels=found_labels.labels)
    assert found.unknown_ids == ["nope__x-9"]
    assert any("empty" in p for p in found.problems)
    pool = found.pools[TASK.id]
    assert len(pool) == 2  # the two texts of x = 1 are one candidate
    top = next(c for c in pool if len(c.sources) == 2)
    assert sorted(top.sources) == ["sysA", "sysB"] and top.resolved is True
    with pytest.raises(FileNotFoundError, match="not found"):
        read_pools([TASK], [tmp_path / "absent.jsonl"])


def test_label_of_a_candidate_is_any_producer_resolving():
    c = cand("c", ["s1", "s2"])
    label_candidates([c], {(TASK.id, "s1"): False, (TASK.id, "s2"): True})
    assert c.resolved is True


def test_pool_only_evidence_selection_and_report(tmp_path):
    """No environment (no mirror): pool signals only; selection and the report still work."""
    pool = [
        cand("w", ["s1", "s2"], resolved=False, value=3),
        cand("r", ["s3"], resolved=True, value=4),
    ]
    task_dir = tmp_path / TASK.id
    task_dir.mkdir()
    from swescale.selection.ensemble import write_task_inputs

    write_task_inputs(task_dir, TASK, pool)
    info = verify_task(TASK, pool, task_dir, "no environment: no mirror", EnsembleConfig())
    assert info["environment"].startswith("no environment")
    assert set(pool[0].verdicts) == {"static", "behaviour"}
    record = read_task_record(task_dir)
    assert record.candidates[0].verdicts["static"].details.get("pool_only") is True
    selections = select_and_write(tmp_path, [record], ["evidence", "majority"])
    report = ensemble_report([record], selections)
    assert report["labelled"] == 1 and report["mixed_pools"] == 1
    oracle, random_row = report["rows"][:2]
    assert oracle["resolved"] == 1 and random_row["resolved"] == pytest.approx(1 / 3)
    rows = (tmp_path / "predictions.evidence.jsonl").read_text().splitlines()
    assert json.loads(rows[0])["swescale"]["selector"] == "evidence"


def test_a_rerun_without_sandboxes_rescores_stored_sandbox_verdicts(tmp_path):
    """Verdicts gathered in sandboxes are re-read, behaviour is recomputed from them, and
    the task is not reported as one without an environment."""
    from swescale.record.task import write_verdicts
    from swescale.selection.ensemble import write_task_inputs

    pool = [
        cand("w", ["s1", "s2"], harvest=(0, 1, {}), static=True, resolved=False, value=3),
        cand("r", ["s3"], harvest=(1, 1, {}), static=True, resolved=True, value=4),
    ]
    task_dir = tmp_path / TASK.id
    write_task_inputs(task_dir, TASK, pool)
    for name in ("static", "harvest"):
        write_verdicts(task_dir, name, {c.id: c.verdicts[name] for c in pool})
    (task_dir / "ensemble.json").write_text(json.dumps({"seconds": {"static": 3.0}}))
    fresh = read_task_record(task_dir).candidates
    for c in fresh:
        c.verdicts.clear()
    info = verify_task(TASK, fresh, task_dir, "sandboxes disabled", EnsembleConfig())
    assert "environment" not in info and info["seconds"] == {"static": 3.0}
    assert fresh[0].verdicts["harvest"].score == pool[0].verdicts["harvest"].score
    assert "behaviour" in fresh[0].verdicts
    assert not (task_dir / "verdicts" / "regression.json").exists()
    record = read_task_record(task_dir)
    report = ensemble_report([record], select_and_write(tmp_path, [record], ["evidence"]))
    assert report["no_environment"] == {} and report["sandbox_instances"] == 1
    assert report["judged"]["harvest"] == report["judged"]["static"] == 1
    assert report["rows"][2]["resolved"] == 1
