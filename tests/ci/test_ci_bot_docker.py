"""The bot end to end: an issue comment on a small repository with a bug goes through
the real pipeline (scripted model, real Docker sandboxes, regression verifier, selection)
and comes out as a branch with the fix and a pull request; then, with --push, as a push
to the remote and a pull request opened through the (loopback) GitHub API."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest
import yaml

from swescale.ci.bot import run_bot

from .conftest import REPO, comment_event, write_event

FIX_TURNS = [
    "Let me look at the code.\n\n```bash\ncat calc.py && ls\n```",
    "add() subtracts; fixing it.\n\n```bash\nsed -i 's/return a - b/return a + b/' calc.py "
    "&& python -m pytest -q -p no:cacheprovider\n```",
    "Fixed.\n\n```bash\nsubmit\n```",
]
NOTHING_TURNS = [
    "Let me look.\n\n```bash\nls\n```",
    "I cannot tell what is wrong.\n\n```bash\nsubmit\n```",
]


def _overrides(tmp_path: Path, turns: list[str]) -> list[str]:
    script = tmp_path / "turns.yaml"
    script.write_text(yaml.safe_dump(turns))
    return [
        "model.kind=scripted",
        "model.name=scripted",
        f"model.script={script}",
        "model.endpoints=[]",
        "model.on_exhausted=submit",
        "model.tool_mode=text",
        "model.price_in=0",
        "model.price_out=0",
        "agent.step_limit=6",
        "scaling.max_concurrent_sandboxes=2",
        f"runs_dir={tmp_path / 'runs'}",
    ]


@pytest.fixture
def ci_leak_check(docker_client):
    from swescale.sandbox import reap, remove_owned, running_sandboxes

    run_id = f"ci-{REPO.replace('/', '__')}-7"
    yield run_id
    leaked = running_sandboxes(docker_client, run_id)
    remove_owned(docker_client, run_id)
    reap(docker_client, run_id=run_id)
    assert not leaked, f"containers left behind: {leaked}"


@pytest.mark.docker
def test_issue_comment_to_branch_and_pull_request(
    tmp_path: Path, calc_repo, docker_client, fake_github, monkeypatch, ci_leak_check
) -> None:
    work, base = calc_repo
    event = write_event(tmp_path / "event.json", comment_event("/swescale n=2\nSee calc.add."))
    overrides = _overrides(tmp_path, FIX_TURNS)

    outcome = run_bot(event, work, overrides=overrides, client=docker_client)

    assert outcome.action == "pull_request", outcome.reason
    repo = git.Repo(work)
    # The branch holds the fix on top of the base commit; the checkout is untouched.
    branch = repo.commit("swescale/issue-7")
    assert branch.parents[0].hexsha == base
    assert branch.message.strip() == "Fix #7: add() subtracts"
    assert branch.author.name == "swescale"
    fixed = (branch.tree / "calc.py").data_stream.read().decode()
    assert "return a + b" in fixed and "return a - b" not in fixed
    assert repo.head.commit.hexsha == base and not repo.is_dirty(untracked_files=True)
    assert repo.active_branch.name == "main"
    # The pull request payload, written to the run directory in a dry run.
    run_dir = tmp_path / "runs" / ci_leak_check
    assert outcome.run_dir == run_dir
    payload = json.loads((run_dir / "pull_request.json").read_text())
    assert payload["title"] == "Fix #7: add() subtracts"
    assert payload["head"] == "swescale/issue-7" and payload["base"] == "main"
    assert "Closes #7" in payload["body"]
    assert "trajectories: 2" in payload["body"]  # "/swescale n=2" was applied
    assert "distinct candidate patches: 1" in payload["body"]
    assert "**regression**: passed" in payload["body"]
    assert "`calc.py` (modified, +1 -1)" in payload["body"]
    assert (run_dir / "acme__calc-7" / "selection.json").exists()
    assert not outcome.pushed and fake_github.requests == []

    # --push: the finished run is reused; the branch goes to the remote and the pull
    # request to the API.
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    pushed = run_bot(
        event, work, overrides=overrides, push=True, api_url=fake_github.url, client=docker_client
    )
    assert pushed.action == "pull_request" and pushed.pushed
    assert pushed.url.endswith("/acme/calc/pull/1")
    remote = git.Repo(tmp_path / "remote.git")
    assert remote.commit("swescale/issue-7").hexsha == branch.hexsha
    posts = [r for r in fake_github.requests if r["method"] == "POST"]
    assert [r["path"] for r in posts] == ["/repos/acme/calc/pulls"]
    assert posts[0]["json"] == payload
    assert posts[0]["headers"]["authorization"] == "Bearer test-token"
    # Once more: the open pull request from the branch is found, no second one opened.
    again = run_bot(
        event, work, overrides=overrides, push=True, api_url=fake_github.url, client=docker_client
    )
    assert again.url == pushed.url and "updated" in again.notes[0]
    assert [r["path"] for r in fake_github.requests if r["method"] == "POST"] == [
        "/repos/acme/calc/pulls"
    ]


@pytest.mark.docker
def test_no_patch_gives_a_comment_instead(
    tmp_path: Path, calc_repo, docker_client, fake_github, monkeypatch, ci_leak_check
) -> None:
    work, _ = calc_repo
    event = write_event(tmp_path / "event.json", comment_event("/swescale n=1"))
    outcome = run_bot(
        event,
        work,
        overrides=[*_overrides(tmp_path, NOTHING_TURNS), "verifiers.enabled=[]"],
        client=docker_client,
    )
    assert outcome.action == "comment", outcome.reason
    assert "no trajectory produced a patch (submitted x1)" in outcome.reason
    comment = json.loads((outcome.run_dir / "comment.json").read_text())
    assert "No fix is proposed for #7" in comment["body"]
    assert "- trajectories: 1" in comment["body"]
    assert (outcome.run_dir / "acme__calc-7" / "trajectories").is_dir()
    assert "swescale/issue-7" not in [h.name for h in git.Repo(work).heads]
    # With --push the comment is posted on the issue.
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    posted = run_bot(
        event,
        work,
        overrides=[*_overrides(tmp_path, NOTHING_TURNS), "verifiers.enabled=[]"],
        push=True,
        api_url=fake_github.url,
        client=docker_client,
    )
    assert posted.pushed and posted.url.endswith("/acme/calc/issues/7#c")
    # The issue's comments were read for hints, then the answer posted.
    assert [(r["method"], r["path"]) for r in fake_github.requests] == [
        ("GET", "/repos/acme/calc/issues/7/comments"),
        ("POST", "/repos/acme/calc/issues/7/comments"),
    ]
    assert fake_github.requests[1]["json"] == comment
