"""A solve batch over two repositories (real Docker, real git, the scripted model's gold
plan): one whose environment does not build fails with that reason, the other finishes
with a proposed branch, its evidence summary and the summary file."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from swescale.ci.config import CIConfig
from swescale.config import load_config
from swescale.record import RunDir, read_json
from swescale.solve.solver import Solver
from swescale.solve.sources import Issue

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FIX = (
    "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n"
    "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
)


def make_repo(root: Path, install: str) -> Path:
    repo = git.Repo.init(root, initial_branch="main")
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "test_calc.py").write_text(
        "from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n"
    )
    # Its own recipe: no package index needed, so the test runs offline.
    (root / ".swescale.yaml").write_text(
        f"python_packages: []\ninstall: [{install!r}]\n"
        "test_command: python3 -m pytest -rA -p no:cacheprovider\n"
    )
    repo.index.add(["calc.py", "test_calc.py", ".swescale.yaml"])
    repo.index.commit("base")
    return root


def test_one_repository_fails_to_build_and_the_other_finishes(
    tmp_path: Path, docker_client
) -> None:
    good = make_repo(tmp_path / "good", "true")
    bad = make_repo(tmp_path / "bad", "exit 3")
    cfg = load_config(
        "scripted",
        [
            "model.script=plan:gold",
            "scaling.n_parallel=1",
            "scaling.grade=none",
            f"runs_dir={tmp_path / 'runs'}",
        ],
    )
    rundir = RunDir.open(cfg.runs_dir, "solve-test", cfg)
    issues = [
        Issue(
            key="issue-1",
            title="add subtracts",
            body="2+2 is 0",
            number=1,
            repo=str(good),
            patch=FIX,
        ),
        Issue(
            key="issue-2",
            title="add subtracts",
            body="2+2 is 0",
            number=2,
            repo=str(bad),
            patch=FIX,
        ),
        Issue(key="issue-3", title="x", body="y", number=3, repo=str(tmp_path / "missing")),
    ]
    head = git.Repo(good).head.commit.hexsha
    report = Solver(cfg, CIConfig(), rundir, client=docker_client, say=lambda _l: None).run(issues)
    by_key = {o.key: o for o in report.outcomes}
    assert by_key["issue-1"].status == "proposed" and by_key["issue-1"].branch == "swescale/issue-1"
    assert by_key["issue-2"].status == "failed" and by_key["issue-2"].stage == "environment"
    assert "exit 3" in by_key["issue-2"].reason or "failed" in by_key["issue-2"].reason
    assert (
        by_key["issue-3"].stage == "repository" and "no such directory" in by_key["issue-3"].reason
    )
    repo = git.Repo(good)
    assert repo.head.commit.hexsha == head and not repo.git.status("--porcelain")
    assert "return a + b" in repo.git.show("swescale/issue-1:calc.py")
    summary = read_json(rundir.files.solve_summary)
    assert summary["resolve_rate"] is None and summary["counts"] == {"proposed": 1, "failed": 2}
    proposal = read_json(rundir.files.task(by_key["issue-1"].task_id).proposal)
    assert "Verifier evidence" in proposal["pull_request"]["body"]
