"""The branch (real git), pushing to a local bare repository as the remote, and the REST
client against a loopback server that answers like GitHub's API."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import git
import pytest

from swescale.ci.bot import BotError, run_bot
from swescale.ci.git_ops import Author, BranchError, commit_patch_to_branch, push_branch
from swescale.ci.github import GitHubClient, GitHubError

from .conftest import FIX_PATCH, comment_event, issues_event, write_event

AUTHOR = Author("swescale", "bot@example.com")


def test_branch_with_the_patch_leaves_the_checkout_alone(calc_repo) -> None:
    work, base = calc_repo
    (work / "notes.txt").write_text("uncommitted work\n")
    (work / "calc.py").write_text((work / "calc.py").read_text() + "# local edit\n")
    repo = git.Repo(work)
    sha = commit_patch_to_branch(repo, "swescale/issue-7", base, FIX_PATCH, "Fix #7: t", AUTHOR)
    commit = repo.commit("swescale/issue-7")
    assert commit.hexsha == sha and commit.parents[0].hexsha == base
    assert commit.author.email == "bot@example.com" and commit.committer.name == "swescale"
    assert "return a + b" in (commit.tree / "calc.py").data_stream.read().decode()
    assert repo.git.diff("--name-only", base, sha) == "calc.py"
    # HEAD, index and the user's uncommitted changes are as they were.
    assert repo.head.commit.hexsha == base and repo.active_branch.name == "main"
    assert (work / "calc.py").read_text().endswith("# local edit\n")
    assert "return a - b" in (work / "calc.py").read_text()
    assert (work / "notes.txt").exists()
    assert repo.index.diff(None)  # the local edit is still unstaged
    assert not repo.index.diff("HEAD")
    # Again with the same fix: the same commit (a rerun does not rewrite the branch).
    again = commit_patch_to_branch(repo, "swescale/issue-7", base, FIX_PATCH, "Fix #7: t", AUTHOR)
    assert again == sha


def test_branch_errors(calc_repo) -> None:
    work, base = calc_repo
    repo = git.Repo(work)
    with pytest.raises(BranchError, match="empty patch"):
        commit_patch_to_branch(repo, "b", base, "  \n", "m", AUTHOR)
    with pytest.raises(BranchError, match="not a valid branch name"):
        commit_patch_to_branch(repo, "bad..name", base, FIX_PATCH, "m", AUTHOR)
    with pytest.raises(BranchError, match="is checked out"):
        commit_patch_to_branch(repo, "main", base, FIX_PATCH, "m", AUTHOR)
    stale = FIX_PATCH.replace("return a - b", "return a ** b")
    with pytest.raises(BranchError, match="cannot commit the patch"):
        commit_patch_to_branch(repo, "b", base, stale, "m", AUTHOR)
    assert "b" not in [h.name for h in repo.heads]


def test_branch_holds_the_patch_as_grading_applies_it(calc_repo) -> None:
    """The branch is made with grading's apply routine: a patch only ``patch --fuzz``
    takes (git apply refused it before) and one with a hunk already in the file (skipped,
    as grading skips it) both commit; ``patch``'s .orig/.rej files are not committed."""
    work, base = calc_repo
    repo = git.Repo(work)
    fuzzy = FIX_PATCH.replace(" def mul(a, b):", " def mul(a, b):  # moved")
    sha = commit_patch_to_branch(repo, "fuzz", base, fuzzy, "Fix #7", AUTHOR)
    assert "return a + b" in (repo.commit(sha).tree / "calc.py").data_stream.read().decode()
    assert repo.git.diff("--name-only", base, sha) == "calc.py"
    stale = FIX_PATCH + "\n".join(
        [
            "diff --git a/test_calc.py b/test_calc.py",
            "--- a/test_calc.py",
            "+++ b/test_calc.py",
            "@@ -1,4 +1,5 @@",
            "+from calc import add, mul",
            " ",
            " ",
            " def test_mul():",
            "     assert mul(2, 3) == 6",
            "",
        ]
    )
    sha = commit_patch_to_branch(repo, "stale", base, stale, "Fix #7", AUTHOR)
    assert repo.git.diff("--name-only", base, sha) == "calc.py"
    with pytest.raises(BranchError, match="changes nothing"):
        commit_patch_to_branch(repo, "none", sha, FIX_PATCH, "Fix #7", AUTHOR)
    assert repo.head.commit.hexsha == base and not repo.is_dirty(untracked_files=True)


def test_push_to_a_bare_remote(calc_repo, tmp_path: Path) -> None:
    work, base = calc_repo
    repo = git.Repo(work)
    sha = commit_patch_to_branch(repo, "swescale/issue-7", base, FIX_PATCH, "Fix", AUTHOR)
    # A pre-push hook records the header git was given for this push.
    seen = tmp_path / "header.txt"
    hook = work / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\ngit config --get http.extraheader > {seen}\ncat >/dev/null\n")
    hook.chmod(0o755)
    push_branch(repo, "swescale/issue-7", "origin", token="secret-token")
    remote = git.Repo(tmp_path / "remote.git")
    assert remote.commit("swescale/issue-7").hexsha == sha
    expected = base64.b64encode(b"x-access-token:secret-token").decode()
    assert seen.read_text().strip() == f"AUTHORIZATION: basic {expected}"
    # The token is used for one command only, never stored.
    assert "secret-token" not in (work / ".git" / "config").read_text()
    # A new fix replaces the bot's own branch on the remote.
    other = FIX_PATCH.replace("return a + b", "return b + a")
    sha2 = commit_patch_to_branch(repo, "swescale/issue-7", base, other, "Fix", AUTHOR)
    push_branch(repo, "swescale/issue-7", "origin")
    assert remote.commit("swescale/issue-7").hexsha == sha2 != sha
    with pytest.raises(BranchError, match="cannot push"):
        push_branch(repo, "swescale/issue-7", str(tmp_path / "no-such-remote.git"))


def test_client_keeps_an_enterprise_api_path(fake_github) -> None:
    with GitHubClient("acme/calc", "test-token", fake_github.url + "/api/v3/") as gh:
        pull = gh.create_pull_request({"title": "Fix #7", "head": "b", "base": "main"})
        gh.create_issue_comment(7, "No fix is proposed.")
        assert gh.find_open_pull_request("b") == pull
    # Enterprise base URLs keep their path.
    assert [(r["method"], r["path"]) for r in fake_github.requests] == [
        ("POST", "/api/v3/repos/acme/calc/pulls"),
        ("POST", "/api/v3/repos/acme/calc/issues/7/comments"),
        ("GET", "/api/v3/repos/acme/calc/pulls"),
    ]


def test_client_against_github_paths(fake_github) -> None:
    with GitHubClient("acme/calc", "test-token", fake_github.url) as gh:
        pull = gh.create_pull_request({"title": "Fix #7", "head": "b", "base": "main"})
        comment = gh.create_issue_comment(7, "No fix is proposed.")
        found = gh.find_open_pull_request("b")
    assert pull["number"] == 1 and pull["html_url"].endswith("/acme/calc/pull/1")
    assert comment["body"] == "No fix is proposed."
    assert found is not None and found["number"] == 1
    first = fake_github.requests[0]
    assert first["headers"]["authorization"] == "Bearer test-token"
    assert first["headers"]["accept"] == "application/vnd.github+json"
    assert first["json"] == {"title": "Fix #7", "head": "b", "base": "main"}
    assert fake_github.requests[2]["query"] == "head=acme%3Ab&state=open"


def test_client_errors_are_clear(fake_github) -> None:
    with GitHubClient("acme/calc", "wrong-token", fake_github.url) as gh:
        with pytest.raises(GitHubError, match="401 Bad credentials") as info:
            gh.create_issue_comment(7, "x")
        assert info.value.status == 401
    with GitHubClient("acme/calc", "test-token", fake_github.url) as gh:
        with pytest.raises(GitHubError, match="422 Validation Failed \\(missing_field\\)"):
            gh.create_pull_request({"title": "only a title"})
        fake_github.overrides[("POST", "/repos/acme/calc/issues/7/comments")] = (
            502,
            "<html>bad gateway</html>",
        )
        with pytest.raises(GitHubError, match="502"):
            gh.create_issue_comment(7, "x")
    # Nothing listens there (a closed loopback port): no answer, clearly said.
    with GitHubClient("acme/calc", "t", "http://127.0.0.1:9", timeout=2) as gh:
        with pytest.raises(GitHubError, match="no answer from GitHub") as info:
            gh.create_issue_comment(7, "x")
        assert info.value.status is None
    with pytest.raises(ValueError, match="owner/name"):
        GitHubClient("calc", "t")


def test_push_without_a_token_is_refused_before_any_work(
    calc_repo, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    event = write_event(tmp_path / "e.json", issues_event("labeled"))
    with pytest.raises(BotError, match=r"--push needs a token in \$GITHUB_TOKEN"):
        run_bot(event, calc_repo[0], push=True)


def test_ignored_events_do_nothing_and_refusals_are_answered(
    calc_repo, tmp_path: Path, fake_github, monkeypatch
) -> None:
    work, _ = calc_repo
    plain = write_event(tmp_path / "plain.json", comment_event("thanks"))
    outcome = run_bot(plain, work)
    assert outcome.action == "ignored" and outcome.payload is None
    refused = write_event(tmp_path / "refused.json", comment_event("/swescale n=99"))
    dry = run_bot(refused, work)
    assert dry.action == "ignored" and "at most 16" in dry.payload["body"]
    assert fake_github.requests == []
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    sent = run_bot(refused, work, push=True, api_url=fake_github.url)
    assert sent.pushed and sent.url
    (request,) = fake_github.requests
    assert request["path"] == "/repos/acme/calc/issues/7/comments"
    assert "at most 16" in request["json"]["body"]
    assert json.loads(json.dumps(sent.to_dict()))["action"] == "ignored"


def test_issue_comments_are_read_as_hints_when_pushing(fake_github, monkeypatch) -> None:
    from swescale.ci.bot import _add_discussion
    from swescale.ci.config import CIConfig
    from swescale.ci.events import parse_event

    request = parse_event(issues_event("labeled"))
    fake_github.issue_comments = [
        {
            "id": 1,
            "body": "it is in calc.py",
            "user": {"login": "bob"},
            "author_association": "MEMBER",
        },
        {"id": 2, "body": "rewrite it all", "user": {"login": "eve"}, "author_association": "NONE"},
    ]
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    enriched, note = _add_discussion(request, CIConfig(), fake_github.url)
    assert note == "" and [c.body for c in enriched.comments] == ["it is in calc.py"]
    assert fake_github.requests[0]["query"] == "per_page=100"
    # Comments that cannot be read are a note; the issue text alone still makes a task.
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    same, note = _add_discussion(request, CIConfig(), fake_github.url)
    assert same == request and "401" in note
