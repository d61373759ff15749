"""``swescale ci parse`` and ``swescale ci run`` on the paths that need no Docker: what the
bot would do, ignored events, and clear exits for bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from swescale.cli import app

from .conftest import comment_event, issues_event, write_event

runner = CliRunner()


def _invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["ci", *args], env=env or {"COLUMNS": "200"})


def test_parse_shows_the_plan(calc_repo, tmp_path: Path) -> None:
    work, base = calc_repo
    event = write_event(tmp_path / "e.json", comment_event("/swescale n=3\nsee calc.add"))
    result = _invoke("parse", "--event", str(event), "--repo", str(work))
    assert result.exit_code == 0, result.output
    assert "would work on acme/calc#7 (issue_comment.created)" in result.output
    shown = json.loads(result.output.split("\n", 1)[1])
    assert shown["task_id"] == "acme__calc-7" and shown["base_commit"] == base
    assert shown["branch"] == "swescale/issue-7" and shown["trajectories"] == 3
    assert shown["repo_config"]["max_files_changed"] == 3
    assert shown["hints"] == "alice wrote:\nsee calc.add"


def test_parse_without_repo_shows_the_request(tmp_path: Path) -> None:
    event = write_event(tmp_path / "e.json", issues_event("labeled"))
    result = _invoke("parse", "--event", str(event))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.split("\n", 1)[1])["request"]["issue_number"] == 7


def test_parse_reads_github_event_path(tmp_path: Path) -> None:
    event = write_event(tmp_path / "e.json", issues_event("labeled", label="bug"))
    result = _invoke("parse", env={"GITHUB_EVENT_PATH": str(event)})
    assert result.exit_code == 0, result.output
    assert "ignored: labeled 'bug', not 'swescale'" in result.output
    assert _invoke("parse", env={"GITHUB_EVENT_PATH": ""}).exit_code == 2


def test_bad_inputs_exit_2_with_the_reason(tmp_path: Path, calc_repo) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = _invoke("parse", "--event", str(bad))
    assert result.exit_code == 2 and "event error" in result.output
    missing = _invoke("run", "--event", str(tmp_path / "none.json"), "--repo", str(calc_repo[0]))
    assert missing.exit_code == 2 and "does not exist" in missing.output
    event = write_event(tmp_path / "e.json", issues_event("labeled"))
    not_git = _invoke("run", "--event", str(event), "--repo", str(tmp_path))
    assert not_git.exit_code == 2 and "not a git repository" in not_git.output
    bad_cfg = _invoke("run", "--event", str(event), "--repo", str(calc_repo[0]), "-o", "ci.x=1")
    assert bad_cfg.exit_code == 2 and "config error" in bad_cfg.output
    no_field = write_event(tmp_path / "nofield.json", {"action": "opened", "issue": {}})
    result = _invoke("run", "--event", str(no_field), "--repo", str(calc_repo[0]))
    assert result.exit_code == 2 and "event has no repository.full_name" in result.output


def test_run_on_an_ignored_event(tmp_path: Path, calc_repo) -> None:
    event = write_event(tmp_path / "e.json", comment_event("/swescale", association="NONE"))
    result = _invoke("run", "--event", str(event), "--repo", str(calc_repo[0]))
    assert result.exit_code == 0, result.output
    assert "ignored: alice is NONE" in result.output
    assert "would comment" in result.output


def test_push_needs_a_token(tmp_path: Path, calc_repo) -> None:
    event = write_event(tmp_path / "e.json", issues_event("labeled"))
    result = _invoke(
        "run",
        "--event",
        str(event),
        "--repo",
        str(calc_repo[0]),
        "--push",
        env={"GITHUB_TOKEN": "", "COLUMNS": "200"},
    )
    assert result.exit_code == 1 and "GITHUB_TOKEN" in result.output


def test_example_workflow_calls_the_bot_as_documented() -> None:
    import yaml

    workflow = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "docs" / "ci-workflow.yml").read_text()
    )
    triggers = workflow[True]  # YAML reads the key "on" as true
    assert triggers == {
        "issues": {"types": ["opened", "labeled"]},
        "issue_comment": {"types": ["created"]},
    }
    assert workflow["permissions"]["pull-requests"] == "write"
    runs = " ".join(step.get("run", "") for step in workflow["jobs"]["solve"]["steps"])
    assert "swescale ci run" in runs and "--push" in runs and "--api-url" in runs
    help_text = _invoke("run", "--help").output
    for option in ("--event", "--repo", "--push", "--api-url", "--override"):
        assert option in help_text
