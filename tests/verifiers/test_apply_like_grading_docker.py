"""The verifiers apply a candidate as grading does (SWE-bench #383): a stale hunk, whose
line is already in the file, is skipped (``patch --forward``), never reversed, so a
candidate that grading resolves does not break every existing test here."""

from __future__ import annotations

import pytest

from swescale.patches import ALREADY_APPLIED
from swescale.selection.candidates import candidates_from
from swescale.verifiers.harvest import HarvestedTestVerifier
from swescale.verifiers.regression import RegressionVerifier
from swescale.verifiers.repro import ReproTest, ReproTestVerifier
from swescale.verifiers.static import StaticVerifier

pytestmark = pytest.mark.docker

TASK = "swescale-mini__confkit-1"
IMPORT = "from confkit.config import Config"


def stale_hunk(init: str) -> str:
    """A hunk that adds the ``Config`` import where it already is, as a patch made
    against a tree without it would (3 lines of context on each side)."""
    lines = init.split("\n")
    at = lines.index(IMPORT)
    before, after = lines[at - 3 : at], lines[at + 1 : at + 4]
    body = [f" {x}" for x in before] + [f"+{IMPORT}"] + [f" {x}" for x in after]
    return (
        "diff --git a/confkit/__init__.py b/confkit/__init__.py\n"
        "--- a/confkit/__init__.py\n+++ b/confkit/__init__.py\n"
        f"@@ -{at - 2},6 +{at - 2},7 @@\n" + "\n".join(body) + "\n"
    )


def test_a_stale_hunk_breaks_nothing_and_the_verdicts_say_how_it_applied(
    mini_by_id, sandbox_factory
):
    task = mini_by_id[TASK]
    make = sandbox_factory(task, command_timeout=120)
    probe = make()
    init = probe.read_file("confkit/__init__.py").decode()
    probe.close()
    assert "confkit/__init__.py" not in task.gold_patch
    stale = task.gold_patch + stale_hunk(init)
    cands = candidates_from(task.id, {"stale-a": stale, "stale-b": stale, "gold": task.gold_patch})
    by_traj = {t: c for c in cands for t in c.trajectory_ids}
    stale_id, gold_id = by_traj["stale-a"].id, by_traj["gold"].id

    regression = RegressionVerifier(make, timeout=120).verify(task, cands)
    assert regression[stale_id].details["broken"] == []  # before: every test of the package
    assert regression[stale_id].passed is True and regression[stale_id].score == 1.0
    assert regression[stale_id].details["apply_strategy"] == ALREADY_APPLIED
    assert regression[gold_id].details["apply_strategy"] == "git apply --verbose"

    static = StaticVerifier(make, workers=1).verify(task, cands)
    details = static[stale_id].details
    assert details["apply_strategy"] == ALREADY_APPLIED and details["clean_apply"] is False
    assert static[stale_id].passed is True
    # Size and locality follow what the tree holds: the skipped hunk changes nothing.
    assert details["effective_files"] == ["confkit/parser.py"]
    assert details["locality"] == static[gold_id].details["locality"] == 1.0
    assert static[gold_id].details["clean_apply"] is True

    repro = ReproTest(
        "tests/test_repro_inline.py",
        "from confkit import loads\n\n\ndef test_inline_comment():\n"
        '    assert loads("[a]\\nk = v ; c\\n").get("a", "k") == "v"\n',
    )
    verdicts = ReproTestVerifier(make, [repro], workers=1, timeout=120).verify(task, cands)
    assert verdicts[stale_id].details["apply_strategy"] == ALREADY_APPLIED

    harvested = candidates_from(task.id, {"stale": stale + _new_test(), "gold": task.gold_patch})
    h = HarvestedTestVerifier(make, workers=1, timeout=120).verify(task, harvested)
    gold_h = next(c for c in harvested if "gold" in c.trajectory_ids)
    assert h[gold_h.id].details["apply_strategy"] == "git apply --verbose"


def _new_test() -> str:
    return (
        "diff --git a/tests/test_inline_new.py b/tests/test_inline_new.py\n"
        "new file mode 100644\n--- /dev/null\n+++ b/tests/test_inline_new.py\n"
        "@@ -0,0 +1,5 @@\n+from confkit import loads\n+\n+\n+def test_inline():\n"
        '+    assert loads("[a]\\nk = v # c\\n").get("a", "k") == "v"\n'
    )
