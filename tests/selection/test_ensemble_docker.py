"""Model-free verifiers and the ensemble on a real mini task in real Docker sandboxes,
with a pool whose most frequent text is wrong."""

from __future__ import annotations

import json

import pytest

from swescale.selection.candidates import candidates_from
from swescale.selection.ensemble import (
    EnsembleConfig,
    ensemble_report,
    read_pools,
    read_records,
    run_ensemble,
    select_and_write,
)
from swescale.verifiers.behaviour import BehaviourVerifier
from swescale.verifiers.harvest import HarvestedTestVerifier
from swescale.verifiers.regression import RegressionVerifier
from swescale.verifiers.static import StaticVerifier

pytestmark = pytest.mark.docker

TASK_ID = "swescale-mini__slugkit-1"
# A reproduction test the right candidate brings: it fails on base.
REPRO_TEST = (
    "diff --git a/tests/test_issue_punctuation.py b/tests/test_issue_punctuation.py\n"
    "new file mode 100644\n--- /dev/null\n+++ b/tests/test_issue_punctuation.py\n"
    "@@ -0,0 +1,6 @@\n+from slugkit import slugify\n+\n+\n"
    "+def test_one_separator_between_words():\n"
    '+    assert slugify("Hello, World!") == "hello-world"\n'
    '+    assert slugify("Rock & Roll") == "rock-roll"\n'
)
# A script the wrong candidate brings: it passes on base, so it reproduces nothing.
PASSING_SCRIPT = (
    "diff --git a/reproduce.py b/reproduce.py\nnew file mode 100644\n--- /dev/null\n"
    "+++ b/reproduce.py\n@@ -0,0 +1,2 @@\n+from slugkit import slugify\n"
    '+print(slugify("Hello, World!"))\n'
)
NOT_A_PATCH = (
    "diff --git a/slugkit/core.py b/slugkit/core.py\n--- a/slugkit/core.py\n"
    "+++ b/slugkit/core.py\n@@ -1,2 +1,2 @@\n-this line is not there\n+nor is this\n"
)


def _variant(task, added: str) -> str:
    """The gold fix with one more line after it (and the hunk header counted right)."""
    gold = task.gold_patch.replace("@@ -28,7 +28,7 @@", "@@ -28,7 +28,8 @@")
    fixed = '+    text = re.sub(r"[^A-Za-z0-9]+", sep, text)\n'
    return gold.replace(fixed, fixed + f"+{added}\n")


def _pool(task):
    wrong = task.extra["wrong_patches"][0]
    return candidates_from(
        task.id,
        {},
        {
            "wrong-1": wrong,
            "wrong-2": wrong,
            "wrong-3": wrong + PASSING_SCRIPT,
            "gold": task.gold_patch + REPRO_TEST,
            "alt": task.extra["alt_patches"][0],
            "broken": NOT_A_PATCH,
        },
    )


def _by_source(cands):
    return {s: c for c in cands for s in c.sources}


def test_static_checks_apply_compile_and_pool_signals(mini_by_id, sandbox_factory):
    task = mini_by_id[TASK_ID]
    make = sandbox_factory(task, command_timeout=60)
    cands = _pool(task) + candidates_from(
        task.id,
        {},
        {
            "undefined": _variant(task, "    text = text + missing_suffix"),
            "syntax": _variant(task, "    text = (text"),
            "no-import": _variant(task, "import slugkit_dependency_that_is_not_there"),
        },
    )
    verdicts = StaticVerifier(make).verify(task, cands)
    by = _by_source(cands)
    assert verdicts[by["gold"].id].passed is True
    assert verdicts[by["gold"].id].details["clean_apply"] is True
    assert verdicts[by["broken"].id].details["applied"] is False
    assert verdicts[by["broken"].id].passed is False
    assert verdicts[by["wrong-1"].id].details["locality"] > 0.5
    assert verdicts[by["undefined"].id].details["new_undefined"] == {
        "slugkit/core.py": ["missing_suffix"]
    }
    assert verdicts[by["syntax"].id].details["compiles"] is False
    assert verdicts[by["no-import"].id].details["imports"] is False
    for name in ("undefined", "syntax", "no-import"):
        assert verdicts[by[name].id].passed is False, name
    assert verdicts[by["gold"].id].cost.sandbox_seconds > 0


def test_harvested_tests_matrix_and_behaviour_classes_pick_the_less_frequent_right_fix(
    mini_by_id, sandbox_factory
):
    task = mini_by_id[TASK_ID]
    make = sandbox_factory(task, command_timeout=60)
    cands = _pool(task)
    by = _by_source(cands)
    harvest = HarvestedTestVerifier(make, workers=2, timeout=60)
    verdicts = harvest.verify(task, cands)
    for cand in cands:
        cand.verdicts["harvest"] = verdicts[cand.id]
    # The script passes on base and is dropped; the test fails on base and is kept.
    kinds = {t.path: t.kind for t in harvest.tests}
    assert kinds == {"tests/test_issue_punctuation.py": "test", "reproduce.py": "script"}
    details = verdicts[by["alt"].id].details
    assert details["kept_units"] == 1 and len(details["discarded"]) == 1
    assert verdicts[by["alt"].id].score == 1.0  # the other right fix passes it
    assert verdicts[by["wrong-1"].id].score == 0.0
    assert verdicts[by["broken"].id].score == 0.0
    # The test's own author is not judged by it.
    assert verdicts[by["gold"].id].infra_error
    regression = RegressionVerifier(make, workers=2, timeout=120).verify(task, cands)
    for cand in cands:
        cand.verdicts["regression"] = regression[cand.id]
    classes = BehaviourVerifier().verify(task, cands)
    assert classes[by["wrong-1"].id].details["class_votes"] == 3
    assert classes[by["broken"].id].score == 0.0


def test_ensemble_end_to_end_beats_majority_and_resumes(mini_by_id, sandbox_factory, tmp_path):
    task = mini_by_id[TASK_ID]
    make = sandbox_factory(task, command_timeout=60)
    wrong = task.extra["wrong_patches"][0]
    files = {
        "sysA": [wrong],
        "sysB": [wrong],
        "sysC": [wrong + PASSING_SCRIPT],
        "sysD": [task.gold_patch + REPRO_TEST],
        "sysE": [task.extra["alt_patches"][0]],
        "sysF": [NOT_A_PATCH],
    }
    paths = []
    for name, patches in files.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(
            "".join(
                json.dumps({"instance_id": task.id, "model_name_or_path": name, "model_patch": p})
                + "\n"
                for p in patches
            )
        )
        paths.append(path)
    labels = {(task.id, "sysD"): True, (task.id, "sysE"): True}
    labels.update({(task.id, n): False for n in ("sysA", "sysB", "sysC", "sysF")})
    found = read_pools([task], paths, labels=labels)
    out = tmp_path / "out"
    cfg = EnsembleConfig(verifier_workers=2, test_timeout=60)
    info = run_ensemble([task], found.pools, out, lambda t: make, cfg)
    assert not info[task.id]["errors"] and set(info[task.id]["seconds"]) == {
        "static",
        "regression",
        "harvest",
        "issue",
        "doctest",
    }
    started = make.started["count"]
    run_ensemble([task], read_pools([task], paths, labels=labels).pools, out, lambda t: make, cfg)
    assert make.started["count"] == started  # every verdict was stored: nothing reran
    records = read_records(out, [task.id])
    selections = select_and_write(out, records, ["evidence", "hybrid", "majority"])
    report = ensemble_report(records, selections)
    rows = {r["selector"]: r for r in report["rows"]}
    assert rows["majority"]["resolved"] == 0
    assert rows["evidence"]["resolved"] == 1 and rows["hybrid"]["resolved"] == 1
    assert report["sandbox_seconds_per_instance"] > 0
