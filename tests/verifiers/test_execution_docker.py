"""Execution verifiers on a real mini-benchmark task in real Docker sandboxes."""

from __future__ import annotations

import pytest

from swescale.selection.candidates import candidates_from
from swescale.verifiers.execution import ResultCache
from swescale.verifiers.regression import RegressionVerifier
from swescale.verifiers.repro import ReproTest, ReproTestVerifier, filter_on_base, run_matrix

pytestmark = pytest.mark.docker

REPRODUCES = ReproTest(
    "tests/test_repro_issue.py",
    "from slugkit import slugify\n\n\ndef test_one_separator_between_words():\n"
    '    assert slugify("Hello, World!") == "hello-world"\n'
    '    assert slugify("Rock & Roll") == "rock-roll"\n',
)
PASSES_ON_BASE = ReproTest(
    "tests/test_repro_plain.py",
    'from slugkit import slugify\n\n\ndef test_plain():\n    assert slugify("ab") == "ab"\n',
)
HANGS = ReproTest(
    "tests/test_repro_hang.py", "import time\n\n\ndef test_hang():\n    time.sleep(3600)\n"
)
CRASHES = ReproTest(
    "tests/test_repro_crash.py", "import os\n\n\ndef test_crash():\n    os._exit(139)\n"
)
NOT_A_PATCH = (
    "diff --git a/slugkit/core.py b/slugkit/core.py\n--- a/slugkit/core.py\n"
    "+++ b/slugkit/core.py\n@@ -1,2 +1,2 @@\n-this line is not there\n+nor is this\n"
)


def test_repro_matrix_keeps_failing_tests_scores_candidates_and_caches(
    mini_by_id, sandbox_factory, tmp_path
):
    task = mini_by_id["swescale-mini__slugkit-1"]
    make = sandbox_factory(task, command_timeout=20)
    cands = candidates_from(
        task.id,
        {
            "gold": task.gold_patch,
            "alt": task.extra["alt_patches"][0],
            "wrong": task.extra["wrong_patches"][0],
            "broken": NOT_A_PATCH,
        },
    )
    by_traj = {c.trajectory_ids[0]: c for c in cands}
    verifier = ReproTestVerifier(
        make, [REPRODUCES, PASSES_ON_BASE, HANGS, CRASHES], cache_dir=tmp_path, timeout=15
    )
    verdicts = verifier.verify(task, cands)
    base = verifier.base_filter
    assert [t.id for t in base.kept] == [REPRODUCES.id]
    assert "passes on the base" in base.discarded[PASSES_ON_BASE.id]
    assert "hangs" in base.discarded[HANGS.id]
    assert "exit" in base.discarded[CRASHES.id]
    assert verdicts[by_traj["gold"].id].passed is True
    assert verdicts[by_traj["alt"].id].score == 1.0
    assert verdicts[by_traj["wrong"].id].passed is False
    broken = verdicts[by_traj["broken"].id]
    assert broken.passed is False and broken.details["applied"] is False
    assert broken.details["results"][REPRODUCES.id] == "not_applied"
    # Second pass over the same matrix: every cell from the cache, no sandbox started.
    before = make.started["count"]
    cache = ResultCache(tmp_path)
    again = run_matrix([REPRODUCES], cands, make, cache=cache)
    assert make.started["count"] == before
    assert cache.hits == len(cands) and all(c[REPRODUCES.id].cached for c in again.values())


def test_hanging_candidate_is_an_infra_outcome_not_a_failure(mini_by_id, sandbox_factory):
    task = mini_by_id["swescale-mini__slugkit-1"]
    make = sandbox_factory(task, command_timeout=20)
    hang_patch = (
        "diff --git a/slugkit/__init__.py b/slugkit/__init__.py\n--- a/slugkit/__init__.py\n"
        "+++ b/slugkit/__init__.py\n@@ -1 +1,3 @@\n+import time\n+time.sleep(3600)\n"
    )
    # Build the patch against the real first line of the file.
    sb = make()
    first = sb.read_file("/testbed/slugkit/__init__.py").decode().splitlines()[0]
    sb.close()
    hang_patch += f" {first}\n"
    cands = candidates_from(task.id, {"hang": hang_patch})
    filtered = filter_on_base([REPRODUCES], make, timeout=15)
    assert filtered.kept == [REPRODUCES]
    verdicts = ReproTestVerifier(make, [REPRODUCES], timeout=5, filter_base=False).verify(
        task, cands
    )
    v = verdicts[cands[0].id]
    assert v.details["results"][REPRODUCES.id] == "timeout"
    assert v.infra_error and v.passed is None


def test_regression_verifier_penalizes_the_decoy(mini_by_id, sandbox_factory):
    task = mini_by_id["swescale-mini__confkit-1"]
    make = sandbox_factory(task, command_timeout=120)
    cands = candidates_from(
        task.id,
        {"gold": task.gold_patch, "decoy": task.extra["decoy_patches"][0], "broken": NOT_A_PATCH},
    )
    by_traj = {c.trajectory_ids[0]: c for c in cands}
    verdicts = RegressionVerifier(make, timeout=120).verify(task, cands)
    gold, decoy = verdicts[by_traj["gold"].id], verdicts[by_traj["decoy"].id]
    assert "tests/test_parser.py" in gold.details["tests"]
    assert gold.passed is True and gold.score == 1.0
    assert decoy.passed is False and decoy.details["broken"]
    assert decoy.score < 1.0
    assert verdicts[by_traj["broken"].id].details["applied"] is False
