"""``.swescale.yaml`` (defaults, errors, read at the commit), the bot config file, and
Task construction from a real local checkout."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from swescale.ci.bot import make_plan
from swescale.ci.config import load_bot_config
from swescale.ci.events import Comment, IssueRequest, parse_event
from swescale.ci.infer import load_repo_config
from swescale.ci.repo_config import (
    DEFAULT_TEST_COMMAND,
    RepoConfig,
    RepoConfigError,
    parse_repo_config,
)
from swescale.ci.task import (
    CheckoutError,
    build_task,
    hints_from,
    open_checkout,
    resolve_base_commit,
    run_id_for,
    task_id_for,
)
from swescale.config import ConfigError

from .conftest import comment_event, issues_event


def test_defaults_when_empty() -> None:
    cfg = parse_repo_config("")
    assert cfg.model_dump() == RepoConfig().model_dump()
    assert cfg.test_command == DEFAULT_TEST_COMMAND
    assert cfg.debian_suite == "bookworm" and cfg.max_files_changed == 10
    assert cfg.run_overrides() == []


def test_full_file() -> None:
    cfg = parse_repo_config(
        """
python: "3.13"
python_packages: pytest
install: [pip install -e ., make data]
test_command: pytest -x
forbidden_paths: [docs/**]
max_files_changed: 2
run:
  scaling: {n_parallel: 6}
  selection.selector: majority
  verifiers.enabled: [regression]
"""
    )
    assert cfg.debian_suite == "trixie"
    assert cfg.python_packages == ["pytest"]
    assert cfg.install == ["pip install -e .", "make data"]
    assert cfg.run_overrides() == [
        "scaling.n_parallel=6",
        'selection.selector="majority"',
        'verifiers.enabled=["regression"]',
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("install: [a\n  b: c", "not valid YAML"),
        ("- a\n- b", "expected a mapping, got list"),
        ("tests: pytest", "tests: Extra inputs are not permitted"),
        ("max_files_changed: -1", "max_files_changed"),
        ("python: '2.7'", "python 2.7 is not available"),
        ("suite: jessie", "suite"),
        ("test_command: '  '", "test_command is empty"),
        ("install: {a: 1}", "install"),
    ],
)
def test_bad_files_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(RepoConfigError, match=message):
        parse_repo_config(text, ".swescale.yaml")


def test_read_at_the_commit_not_the_work_tree(calc_repo) -> None:
    work, base = calc_repo
    (work / ".swescale.yaml").write_text("max_files_changed: 99\n")  # uncommitted
    cfg = load_repo_config(work, base)
    assert cfg.max_files_changed == 3 and cfg.source.startswith(".swescale.yaml at")
    repo = git.Repo(work)
    repo.git.rm("-qf", ".swescale.yaml")
    repo.git.commit("-qm", "no config")
    # without the file, the repository's own files say how to install and test it
    inferred = load_repo_config(work, "HEAD")
    # (uv, pinned, resolves the packages as of the commit's date)
    assert inferred.source.startswith("inferred") and any(
        p.startswith("uv==") for p in inferred.python_packages
    )
    (work / ".swescale.yaml").write_text("python_packages: [\n")
    repo.git.add(".swescale.yaml")
    repo.git.commit("-qm", "broken config")
    with pytest.raises(RepoConfigError, match="not valid YAML"):
        load_repo_config(work, "HEAD")


def test_bot_config_file_and_overrides(tmp_path: Path) -> None:
    run, ci = load_bot_config("ci", ["ci.label=fix-me", "scaling.n_parallel=3"])
    assert ci.label == "fix-me" and run.scaling.n_parallel == 3
    assert run.scaling.grade == "none"
    with pytest.raises(ConfigError, match="invalid ci section"):
        load_bot_config("ci", ["ci.labl=x"])
    with pytest.raises(ConfigError, match="invalid config"):
        load_bot_config("ci", ["scaling.n_paralel=3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("ci: [1, 2]\n")
    with pytest.raises(ConfigError, match="'ci' section must be a mapping"):
        load_bot_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_bot_config(tmp_path / "missing.yaml")


def test_ids() -> None:
    assert task_id_for("acme/calc", 7) == "acme__calc-7"
    assert run_id_for("acme/calc", 7) == "ci-acme__calc-7"


def test_checkout_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckoutError, match="no such directory"):
        open_checkout(tmp_path / "nope")
    with pytest.raises(CheckoutError, match="not a git repository"):
        open_checkout(tmp_path)


def test_base_commit_resolution(calc_repo) -> None:
    work, base = calc_repo
    repo = git.Repo(work)
    # A feature branch checked out: the default branch's tip is still the base.
    repo.git.checkout("-q", "-b", "feature")
    (work / "extra.py").write_text("x = 1\n")
    repo.git.add("extra.py")
    repo.git.commit("-qm", "feature work")
    assert resolve_base_commit(repo, "main") == base
    assert resolve_base_commit(repo, "") == repo.head.commit.hexsha
    assert resolve_base_commit(repo, "main", commit=base[:8]) == base
    # Unknown default branch: HEAD.
    assert resolve_base_commit(repo, "trunk") == repo.head.commit.hexsha
    with pytest.raises(CheckoutError, match="is not in"):
        resolve_base_commit(repo, "main", commit="deadbeef")


def test_task_from_request() -> None:
    request = IssueRequest(
        "acme/calc",
        7,
        "add() subtracts",
        "  add(2, 3) gives -1  ",
        "issue_comment.created",
        comments=(Comment("bob", "see calc.py"), Comment("alice", "  "), Comment("carol", "x")),
    )
    cfg = RepoConfig(test_command="pytest -q", install=["make"])
    task = build_task(request, "a" * 40, cfg, hint_comments=1)
    assert task.id == "acme__calc-7" and task.repo == "acme/calc"
    assert task.base_commit == "a" * 40
    assert task.problem_statement == "add() subtracts\n\nadd(2, 3) gives -1\n"
    assert task.hints == "carol wrote:\nx"
    assert task.extra["test_cmd"] == "pytest -q" and task.extra["log_parser"] == "pytest"
    assert task.extra["install"] == ["make"]
    assert task.gold_patch is None and task.fail_to_pass == []
    assert hints_from(request.comments, 0) == ""
    assert hints_from(request.comments, 5).startswith("bob wrote:\nsee calc.py\n\ncarol")


def test_plan_layers_overrides(calc_repo, tmp_path: Path) -> None:
    work, base = calc_repo
    repo = git.Repo(work)
    (work / ".swescale.yaml").write_text("run:\n  scaling.n_parallel: 6\n  agent.step_limit: 9\n")
    repo.git.commit("-qam", "config")
    request = parse_event(comment_event("/swescale n=2"))
    plan = make_plan(request, work, overrides=[f"runs_dir={tmp_path}", "agent.step_limit=5"])
    # bot config < .swescale.yaml < comment < command line
    assert plan.run_cfg.scaling.n_parallel == 2
    assert plan.run_cfg.agent.step_limit == 5
    assert plan.task.base_commit == repo.head.commit.hexsha != base
    assert plan.branch == "swescale/issue-7" and plan.base_branch == "main"
    assert plan.run_cfg.sandbox.env["PATH"].startswith("/opt/venv/bin")
    assert plan.run_id == "ci-acme__calc-7"
    labeled = parse_event(issues_event("labeled"))
    assert make_plan(labeled, work).run_cfg.scaling.n_parallel == 6


def test_check_reads_the_image_inputs_that_run_uses(calc_repo, tmp_path: Path, monkeypatch) -> None:
    from swescale.ci.check import check_inputs, repository_name
    from swescale.ci.repo_config import RepoConfigError

    work, _ = calc_repo
    repo = git.Repo(work)
    with (work / ".swescale.yaml").open("a") as out:
        out.write("run:\n  images.extra_packages: [jq]\n")
    repo.git.commit("-qam", "config")
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    # The remote is a local path here: it names no GitHub repository.
    with pytest.raises(RepoConfigError, match="give --name owner/name"):
        repository_name(work)
    repo.remote("origin").set_url("git@github.com:acme/calc.git")
    assert repository_name(work) == "acme/calc"
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/other")
    assert repository_name(work) == "acme/other" and repository_name(work, "x/y") == "x/y"
    with pytest.raises(RepoConfigError, match="not owner/name"):
        repository_name(work, "calc")
    monkeypatch.delenv("GITHUB_REPOSITORY")
    mirror = tmp_path / "pallets__flask.git"
    git.Repo.init(mirror, bare=True)
    assert repository_name(mirror) == "pallets/flask"

    plan = make_plan(
        parse_event(comment_event("/swescale")), work, overrides=[f"runs_dir={tmp_path}"]
    )
    name, sha, repo_cfg, images = check_inputs(work, "main")
    assert (name, sha, repo_cfg) == (plan.request.repo, plan.task.base_commit, plan.repo_cfg)
    assert images == plan.run_cfg.images and images.extra_packages == ["jq"]
    with pytest.raises(RepoConfigError, match="no commit 'nope'"):
        check_inputs(work, "nope")
