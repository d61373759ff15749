"""The issue's own reproducers and the changed modules' doctests, on a real mini task
in real Docker sandboxes."""

from __future__ import annotations

import pytest

from swescale.selection.candidates import candidates_from
from swescale.verifiers.behaviour import BehaviourVerifier
from swescale.verifiers.doctests import DoctestVerifier
from swescale.verifiers.issue import IssueReproVerifier

pytestmark = pytest.mark.docker

COMMAND_ISSUE = """slugify keeps one dash per symbol

```console
$ python -c "from slugkit import slugify; print(slugify('Rock & Roll'))"
rock---roll
```

Expected output:
```
rock-roll
```
"""

NO_REPRODUCER = "slugify: the docs should say which characters are kept\n\nPlease document it."

NEW_DOCSTRING = (
    "diff --git a/slugkit/shout.py b/slugkit/shout.py\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/slugkit/shout.py\n@@ -0,0 +1,7 @@\n+def shout(text):\n"
    '+    """Upper case.\n+\n+    >>> shout("a")\n+    \'A\'\n+    """\n+    return text.upper()\n'
)


def _pool(task):
    return candidates_from(
        task.id,
        {
            "gold": task.gold_patch,
            "alt": task.extra["alt_patches"][0],
            "wrong": task.extra["wrong_patches"][0],
        },
    )


def test_the_issue_session_and_its_expected_values_tell_the_wrong_fix_apart(
    mini_by_id, sandbox_factory
):
    task = mini_by_id["swescale-mini__slugkit-1"]
    cands = _pool(task)
    by = {c.trajectory_ids[0]: c for c in cands}
    verdicts = IssueReproVerifier(sandbox_factory(task, command_timeout=60), workers=2).verify(
        task, cands
    )
    checks = verdicts[by["gold"].id].details["checks"]
    assert {c["source"] for c in checks} == {'slugify("Hello, World!")', 'slugify("Rock & Roll")'}
    assert all(c["kind"] == "expected" for c in checks)
    assert verdicts[by["gold"].id].score == 1.0 and verdicts[by["alt"].id].score == 1.0
    # The wrong fix turns "--" into "-" but leaves "rock--roll": one check of two.
    assert verdicts[by["wrong"].id].score == 0.5
    # Each statement's record is compared between candidates: gold and alt agree.
    gold, alt, wrong = (verdicts[by[k].id].details["outputs"] for k in ("gold", "alt", "wrong"))
    assert gold == alt != wrong
    for cand in cands:
        cand.verdicts["issue"] = verdicts[cand.id]
    classes = BehaviourVerifier().verify(task, cands)
    assert classes[by["gold"].id].details["class_id"] == classes[by["alt"].id].details["class_id"]
    assert classes[by["gold"].id].score == pytest.approx(2 / 3)


def test_a_command_line_with_expected_output_and_an_issue_without_reproducer(
    mini_by_id, sandbox_factory
):
    task = mini_by_id["swescale-mini__slugkit-1"]
    cands = _pool(task)
    by = {c.trajectory_ids[0]: c for c in cands}
    make = sandbox_factory(task, command_timeout=60)
    command_task = task.model_copy(update={"problem_statement": COMMAND_ISSUE})
    verdicts = IssueReproVerifier(make, workers=2).verify(command_task, cands)
    (check,) = verdicts[by["gold"].id].details["checks"]
    assert check["kind"] == "expected" and check["source"].startswith("python -c")
    assert verdicts[by["gold"].id].passed is True
    assert verdicts[by["wrong"].id].passed is False
    nothing = task.model_copy(update={"problem_statement": NO_REPRODUCER})
    verdicts = IssueReproVerifier(make, workers=2).verify(nothing, cands)
    assert all(v.infra_error == "the issue shows no reproducer" for v in verdicts.values())


def test_doctests_of_the_changed_modules_are_compared_with_base(mini_by_id, sandbox_factory):
    task = mini_by_id["swescale-mini__slugkit-1"]
    cands = candidates_from(task.id, {"gold": task.gold_patch, "x": NEW_DOCSTRING})
    gold, added = sorted(cands, key=lambda c: c.trajectory_ids[0])
    verdicts = DoctestVerifier(sandbox_factory(task, command_timeout=60), workers=2).verify(
        task, [gold, added]
    )
    assert verdicts[gold.id].details["modules"] == ["slugkit.core", "slugkit.shout"]
    # A docstring that passes with the candidate and does not exist on base changes an
    # outcome (which behaviour compares); nothing that passed on base broke.
    assert verdicts[added.id].details["outcomes"] == {"slugkit.shout.shout": "pass"}
    assert verdicts[added.id].passed is True
    assert verdicts[gold.id].details["outcomes"] == {}


def test_a_patch_already_in_the_tree_changes_nothing_and_fails_the_static_gate(
    mini_by_id, sandbox_factory
):
    """A candidate that "creates" a file already there with the same content (an agent's
    build copy of the package, already present in the environment) is applied as grading
    applies it (a 3-way merge, or "already applied"): the tree is the base commit's, so it
    fixes nothing."""
    from swescale.verifiers.static import StaticVerifier

    task = mini_by_id["swescale-mini__slugkit-1"]
    make = sandbox_factory(task, command_timeout=60)
    sandbox = make()
    try:
        text = sandbox.read_file("slugkit/__init__.py").decode()
    finally:
        sandbox.close()
    lines = text.splitlines()
    noop = (
        "diff --git a/slugkit/__init__.py b/slugkit/__init__.py\nnew file mode 100644\n"
        f"--- /dev/null\n+++ b/slugkit/__init__.py\n@@ -0,0 +1,{len(lines)} @@\n"
        + "".join(f"+{x}\n" for x in lines)
    )
    cands = candidates_from(task.id, {"gold": task.gold_patch, "noop": noop})
    by = {c.trajectory_ids[0]: c for c in cands}
    verdicts = StaticVerifier(make, workers=2).verify(task, cands)
    details = verdicts[by["noop"].id].details
    assert details["applied"] is True and details["changes_nothing"] is True
    assert details["changes_source"] is False and verdicts[by["noop"].id].passed is False
    assert verdicts[by["gold"].id].passed is True
    assert "changes_nothing" not in verdicts[by["gold"].id].details
