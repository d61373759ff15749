"""Guard rails and the pull request / comment payloads, on literal patches and records."""

from __future__ import annotations

import pytest

from swescale.ci.guard import path_matches, touched_paths, violations
from swescale.ci.payloads import (
    MARKER,
    abstention_comment,
    commit_title,
    evidence_summary,
    format_cost,
    pull_request_payload,
    refusal_comment,
)
from swescale.ci.repo_config import RepoConfig
from swescale.types import Candidate, Cost, Selection, Verdict

from .conftest import FIX_PATCH


def _file_patch(path: str) -> str:
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-old\n+new\n"


def _new_file(path: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        "@@ -0,0 +1 @@\n+x\n"
    )


RENAME = (
    "diff --git a/setup.cfg b/old.cfg\nsimilarity index 100%\nrename from setup.cfg\n"
    "rename to old.cfg\n"
)


@pytest.mark.parametrize(
    ("path", "pattern", "hit"),
    [
        (".github/workflows/ci.yml", ".github/**", True),
        (".github", ".github/**", True),
        ("docs/.github/x", ".github/**", False),
        ("pkg/poetry.lock", "*.lock", True),
        ("setup.cfg", "setup.cfg", True),
        ("sub/setup.cfg", "setup.cfg", True),
        ("vendor/lib/a.py", "vendor", True),
        ("vendor/lib/a.py", "vendor/lib", True),
        ("vendored.py", "vendor", False),
        ("src/a.py", "src/*.py", True),
        ("src/a.py", "/src/a.py", True),
        ("src/a.py", "", False),
    ],
)
def test_path_matches(path: str, pattern: str, hit: bool) -> None:
    assert path_matches(path, pattern) is hit


def test_clean_patch_passes() -> None:
    assert violations(FIX_PATCH, RepoConfig()) == []


def test_forbidden_paths_and_file_count() -> None:
    cfg = RepoConfig(forbidden_paths=["vendor/**"], max_files_changed=2)
    patch = _file_patch("vendor/x.py") + _file_patch("a.py") + _new_file("b.py")
    found = violations(patch, cfg)
    assert found == [
        "touches vendor/x.py (forbidden by 'vendor/**')",
        "changes 3 files (at most 2 allowed)",
    ]
    assert violations(patch, RepoConfig(forbidden_paths=[], max_files_changed=0)) == []


def test_always_forbidden_even_when_the_repository_allows_all() -> None:
    cfg = RepoConfig(forbidden_paths=[])
    assert violations(_file_patch(".swescale.yaml"), cfg) == [
        "touches .swescale.yaml (forbidden by '.swescale.yaml')"
    ]
    assert violations(_new_file(".github/workflows/x.yml"), cfg)


def test_renaming_a_forbidden_file_away_is_touching_it() -> None:
    assert touched_paths(RENAME) == ["old.cfg", "setup.cfg"]
    assert violations(RENAME, RepoConfig(forbidden_paths=["setup.cfg"]))


def test_empty_or_junk_patch_is_a_violation() -> None:
    assert violations("", RepoConfig()) == ["the patch is empty"]
    assert violations("not a diff\n", RepoConfig()) == ["the patch touches no file"]


def test_commit_title() -> None:
    assert commit_title(7, "add()  subtracts\n") == "Fix #7: add() subtracts"
    long = commit_title(12, "x" * 200)
    assert len(long) == 72 and long.endswith("…") and long.startswith("Fix #12: ")
    # An issue given without a number is referred to by its title alone.
    assert commit_title(None, "add() subtracts") == commit_title(0, "add() subtracts")
    assert commit_title(None, "add() subtracts") == "Fix: add() subtracts"


def test_format_cost() -> None:
    assert format_cost(Cost(tokens_in=1000, tokens_out=234, sandbox_seconds=8.4)) == (
        "1,234 tokens, 8 s sandbox"
    )
    assert "$1.50" in format_cost(Cost(dollars=1.5))


def _candidate(**verdicts: Verdict) -> Candidate:
    return Candidate(
        id="c1",
        task_id="acme__calc-7",
        patch=FIX_PATCH,
        trajectory_ids=["t0", "t2"],
        verdicts=verdicts,
    )


def test_evidence_summary() -> None:
    cand = _candidate(
        regression=Verdict(
            verifier="regression",
            score=0.5,
            passed=False,
            details={"tests": ["test_a.py"], "broken": ["test_a.py::test_x"]},
        ),
        judge=Verdict(verifier="judge", score=0.9),
        repro=Verdict(verifier="repro", score=0.5, infra_error="no tests kept"),
    )
    lines = evidence_summary(cand).splitlines()
    assert lines == [
        "- **judge**: scored, score 0.90",
        "- **regression**: failed, score 0.50; 1 test file(s) run; broke `test_a.py::test_x`",
        "- **repro**: no evidence (no tests kept)",
    ]
    assert evidence_summary(None) == "- no verifier evidence recorded"


def test_pull_request_payload() -> None:
    cand = _candidate(regression=Verdict(verifier="regression", score=1.0, passed=True))
    selection = Selection(
        task_id="acme__calc-7",
        selector="hybrid",
        candidate_id="c1",
        confidence=0.8,
        rationale="best execution score",
    )
    payload = pull_request_payload(
        issue_number=7,
        issue_title="add() subtracts",
        head="swescale/issue-7",
        base="main",
        selection=selection,
        chosen=cand,
        candidates=[cand, _candidate()],
        trajectories=4,
        cost=Cost(tokens_in=10, tokens_out=5, dollars=0.25),
        run_id="ci-acme__calc-7",
    )
    assert set(payload) == {"title", "head", "base", "body", "draft", "maintainer_can_modify"}
    body = payload["body"]
    assert body.startswith(MARKER)
    for text in (
        "Selector `hybrid`, confidence 0.80, produced by 2 of 4 trajectories.",
        "best execution score",
        "- **regression**: passed, score 1.00",
        "`calc.py` (modified, +1 -1)",
        "- distinct candidate patches: 2",
        "- cost: 15 tokens, $0.25, 0 s sandbox",
        "Closes #7",
    ):
        assert text in body, text
    assert "Flagged" not in body
    flagged = pull_request_payload(
        issue_number=7,
        issue_title="t",
        head="h",
        base="main",
        selection=selection.model_copy(update={"flagged": True}),
        chosen=cand,
        candidates=[cand],
        trajectories=1,
        cost=Cost(),
        run_id="r",
        draft=True,
    )
    assert "Flagged" in flagged["body"] and flagged["draft"] is True


def test_abstention_and_refusal_comments() -> None:
    selection = Selection(
        task_id="t", selector="hybrid", candidate_id=None, rationale="confidence 0.1 below 0.5"
    )
    comment = abstention_comment(
        issue_number=7,
        reasons=["no candidate was selected out of 3"],
        selection=selection,
        candidates=[],
        trajectories=4,
        cost=Cost(),
        run_id="r",
    )
    assert set(comment) == {"body"}
    body = comment["body"]
    assert "No fix is proposed for #7." in body
    assert "- no candidate was selected out of 3" in body
    assert "confidence 0.1 below 0.5" in body and "- trajectories: 4" in body
    assert "Closes" not in body
    refusal = refusal_comment("not allowed")["body"]
    assert "`/swescale` command was not run: not allowed" in refusal
