"""The issue sources of ``swescale solve`` on literal inputs: GitHub exports (gh and the
REST API, pull requests mixed in, missing fields), JSON lines, one issue, filters."""

from __future__ import annotations

import json

import pytest

from swescale.solve.sources import (
    SourceError,
    one_issue,
    parse_issue_export,
    parse_task_lines,
    select,
)

GH = [
    {
        "number": 12,
        "title": "Crash on empty input",
        "body": "Steps:\n1. run x",
        "labels": [{"name": "bug"}],
        "url": "https://github.com/acme/calc/issues/12",
    },
    {"number": 13, "title": "Docs typo", "body": "README says teh", "labels": [], "url": ""},
    {"number": 14, "title": "No body here", "body": "", "labels": [{"name": "bug"}]},
]
REST = [
    {
        "number": 7,
        "title": "Wrong sum",
        "body": "1+1 is 3",
        "labels": [{"name": "bug"}],
        "html_url": "https://github.com/acme/calc/issues/7",
    },
    {"number": 8, "title": "Add mul", "body": "adds mul", "pull_request": {"url": "x"}},
    {"number": 9, "title": "Also a PR", "body": "x", "pull_request": {}},  # empty: an issue
    {"title": "no number", "body": "x"},
    "not an object",
]


def test_gh_issue_list_output() -> None:
    parsed = parse_issue_export(json.dumps(GH))
    assert [i.key for i in parsed.issues] == ["issue-12", "issue-13"]
    first = parsed.issues[0]
    assert first.number == 12 and first.labels == ("bug",)
    assert first.url == "https://github.com/acme/calc/issues/12"
    assert first.problem_statement == "Crash on empty input\n\nSteps:\n1. run x\n"
    assert parsed.errors == ["issue #14: no body (nothing says what is wrong)"]
    assert parsed.pull_requests == 0


def test_rest_api_objects_with_pull_requests_mixed_in() -> None:
    parsed = parse_issue_export(json.dumps(REST), "issues.json")
    assert [i.number for i in parsed.issues] == [7, 9]
    assert parsed.issues[0].url == "https://github.com/acme/calc/issues/7"
    assert parsed.pull_requests == 1
    assert parsed.errors == [
        "issues.json[3]: no issue number",
        "issues.json[4]: not an issue object",
    ]
    # The search API's answer is read too.
    assert len(parse_issue_export(json.dumps({"items": REST})).issues) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [("not json at all", "export.json: not JSON"), ('"a string"', "expected a list of issues")],
)
def test_an_export_that_is_not_a_list_of_issues_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_issue_export(text, "export.json")


def test_json_lines_rows_and_their_errors() -> None:
    lines = [
        {
            "instance_id": "acme__calc-1",
            "repo": "/srv/calc",
            "base_commit": "a" * 40,
            "problem_statement": "Title line\nbody text",
            "hints": "look at add()",
        },
        {
            "repo": "https://example.org/acme/calc.git",
            "branch": "main",
            "problem_statement": "Second",
            "number": 5,
            "patch": "diff --git a/x b/x\n",
        },
        {"repo": "/srv/calc", "problem_statement": ""},
        {"repo": "/srv/calc", "base_commit": "b" * 40, "branch": "main", "problem_statement": "x"},
        {"instance_id": "acme__calc-1", "repo": "/srv/calc", "problem_statement": "again"},
    ]
    text = "\n".join(json.dumps(r) for r in lines) + "\n{broken\n\n[1, 2]\n"
    parsed = parse_task_lines(text, "t.jsonl")
    assert [i.key for i in parsed.issues] == ["acme__calc-1", "issue-5"]
    first, second = parsed.issues
    assert first.title == "Title line" and first.body == "body text"
    assert first.hints == "look at add()" and first.base_commit == "a" * 40
    assert second.branch == "main" and second.patch.startswith("diff --git")
    assert parsed.errors[0] == "t.jsonl:3: missing problem_statement"
    assert parsed.errors[1] == "t.jsonl:4: give base_commit or branch, not both"
    assert parsed.errors[2] == "t.jsonl:5: acme__calc-1 is given twice"
    assert parsed.errors[3].startswith("t.jsonl:6: not JSON")
    assert parsed.errors[4] == "t.jsonl:8: not a JSON object"


def test_one_issue_and_the_filters() -> None:
    single = one_issue("Crash\n\nIt crashes.", 3)
    assert single.issues[0].key == "issue-3" and single.issues[0].body.strip() == "It crashes."
    assert one_issue("   ").errors == ["the issue text is empty"]
    # Without a number the text names the issue: two issues never share a key or branch.
    first, second = one_issue("add() is wrong\n\nbody"), one_issue("mul() is wrong\n\nbody")
    assert first.issues[0].key.startswith("issue-") and first.issues[0].number is None
    assert first.issues[0].key != second.issues[0].key
    assert first.issues[0].key == one_issue("add() is wrong\n\nbody").issues[0].key
    issues = parse_issue_export(json.dumps(GH + REST[:1])).issues
    assert [i.number for i in select(issues, labels=["bug"])] == [12, 7]
    assert [i.number for i in select(issues, numbers=[13, 7])] == [13, 7]
    assert [i.number for i in select(issues, limit=2)] == [12, 13]
    assert select(issues, labels=["nosuch"]) == []


def test_the_summary_table_keeps_issue_ids_whole_at_80_columns() -> None:
    from rich.console import Console

    from swescale.commands.solve import _summary_table
    from swescale.solve.solver import IssueOutcome, SolveReport

    report = SolveReport(run_id="requests-10", run_dir="runs/requests-10")
    for n in (6028, 5414):
        report.outcomes.append(
            IssueOutcome(
                key=f"psf__requests-{n}",
                repo="local/requests",
                status="proposed",
                branch=f"swescale/issue-{n}",
                candidates=1,
                cost={"tokens_in": 4000, "tokens_out": 26, "sandbox_seconds": 146.2},
            )
        )
    report.outcomes.append(
        IssueOutcome(
            key="psf__requests-1",
            status="failed",
            stage="environment",
            reason="pip could not install [all] extras\n" + "x" * 200,
        )
    )
    console = Console(width=80, record=True)
    _summary_table(report, console)
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert any("psf__requests-6028" in line and "swescale/issue-6028" in line for line in lines)
    assert "psf__requests-1: environment: pip could not install [all] extras" in text
    assert "4,026 tok" in text or "left out" in text


def test_a_suite_that_could_not_run_says_why() -> None:
    from swescale.solve.solver import suite_summary

    assert suite_summary({"PASSED": 12, "FAILED": 1}, 1, "") == "1 failed, 12 passed"
    out = "+ pytest -rA\nbash: line 1: pytest: command not found\n"
    assert suite_summary({}, 127, out) == (
        "no test results (exit 127: bash: line 1: pytest: command not found)"
    )
    assert suite_summary({}, 0, "collected 0 items\n") == "no test results"


def test_the_default_run_id_names_the_batch_not_only_the_config() -> None:
    from swescale.commands.solve import _batch_digest
    from swescale.config import load_config

    cfg = load_config("scripted", [])
    add, mul = one_issue("add() is wrong").issues, one_issue("mul() is wrong").issues
    assert _batch_digest(cfg, add, "/r") == _batch_digest(cfg, add, "/r")
    assert _batch_digest(cfg, add, "/r") != _batch_digest(cfg, mul, "/r")
    assert _batch_digest(cfg, add, "/r") != _batch_digest(cfg, add, "/elsewhere")
