"""Where ``swescale solve`` gets its issues, read into ``Issue`` rows (pure functions on
text; nothing here touches a repository):

- a GitHub issues export: what ``gh issue list --json number,title,body,labels,url``
  prints, or a list of the REST API's issue objects (``GET /repos/{o}/{r}/issues``; its
  pull requests, which carry a ``pull_request`` key, are skipped and counted);
- a JSON lines file: ``{instance_id?, repo, base_commit | branch, problem_statement,
  hints?, patch?}`` a line (``patch``: a known fix, read only by the scripted model's
  ``plan:gold`` stand-in, never shown to an agent);
- one issue given on the command line (its first line is the title).

Every row that cannot be used is an error line naming it; the others go on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


class SourceError(ValueError):
    """An input that cannot be read at all (not JSON, not a list); the message names it."""


@dataclass(frozen=True)
class Issue:
    """One issue to solve. ``repo`` is where the repository is (a local path, a bare
    mirror or a clone URL; "" means the command's ``--repo``); ``base_commit`` or
    ``branch`` says where to start ("" for both: the checkout's HEAD)."""

    key: str  # unique in the batch: "issue-7", or the row's instance id
    title: str
    body: str
    number: int | None = None
    labels: tuple[str, ...] = ()
    url: str = ""
    repo: str = ""
    base_commit: str = ""
    branch: str = ""
    hints: str = ""
    instance_id: str = ""
    patch: str = ""

    @property
    def problem_statement(self) -> str:
        body = self.body.strip()
        return f"{self.title.strip()}\n\n{body}\n" if body else f"{self.title.strip()}\n"


@dataclass
class Parsed:
    """What a source gave: the issues, the pull requests skipped, and one error line per
    row that could not be used."""

    issues: list[Issue] = field(default_factory=list)
    pull_requests: int = 0
    errors: list[str] = field(default_factory=list)


def _labels(value: Any) -> tuple[str, ...]:
    out = []
    for label in value or []:
        name = label.get("name") if isinstance(label, dict) else label
        if isinstance(name, str) and name.strip():
            out.append(name.strip())
    return tuple(out)


def parse_issue_export(text: str, where: str = "the export") -> Parsed:
    """Issues of a ``gh issue list --json ...`` output or a REST API list (an object
    with an ``items`` list, as the search API answers, is read too). Raises SourceError
    when the text is not a JSON list of objects."""
    try:
        data = json.loads(text.removeprefix("\ufeff"))
    except ValueError as exc:
        raise SourceError(f"{where}: not JSON ({exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise SourceError(f"{where}: expected a list of issues, got {type(data).__name__}")
    parsed = Parsed()
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            parsed.errors.append(f"{where}[{index}]: not an issue object")
            continue
        if item.get("pull_request") or item.get("isPullRequest"):
            parsed.pull_requests += 1
            continue
        number = item.get("number")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            parsed.errors.append(f"{where}[{index}]: no issue number")
            continue
        title = item.get("title")
        if not isinstance(title, str) or not title.strip():
            parsed.errors.append(f"issue #{number}: no title")
            continue
        body = item.get("body")
        if not isinstance(body, str) or not body.strip():
            parsed.errors.append(f"issue #{number}: no body (nothing says what is wrong)")
            continue
        parsed.issues.append(
            Issue(
                key=f"issue-{number}",
                number=number,
                title=title,
                body=body,
                labels=_labels(item.get("labels")),
                url=str(item.get("url") or item.get("html_url") or ""),
            )
        )
    return parsed


def parse_task_lines(text: str, where: str = "the tasks file") -> Parsed:
    """Rows of a JSON lines file (see the module docstring); blank lines are skipped."""
    parsed = Parsed()
    seen: set[str] = set()
    for lineno, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        at = f"{where}:{lineno}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            parsed.errors.append(f"{at}: not JSON ({exc.__class__.__name__}: {exc})")
            continue
        if not isinstance(row, dict):
            parsed.errors.append(f"{at}: not a JSON object")
            continue
        missing = [k for k in ("repo", "problem_statement") if not _text(row.get(k))]
        if missing:
            parsed.errors.append(f"{at}: missing {', '.join(missing)}")
            continue
        if _text(row.get("base_commit")) and _text(row.get("branch")):
            parsed.errors.append(f"{at}: give base_commit or branch, not both")
            continue
        instance_id = _text(row.get("instance_id"))
        number = row.get("number") if isinstance(row.get("number"), int) else None
        key = instance_id or (f"issue-{number}" if number else f"line-{lineno}")
        if key in seen:
            parsed.errors.append(f"{at}: {key} is given twice")
            continue
        seen.add(key)
        statement = str(row["problem_statement"])
        title, _, body = statement.strip().partition("\n")
        parsed.issues.append(
            Issue(
                key=key,
                title=title,
                body=body,
                number=number,
                labels=_labels(row.get("labels")),
                url=_text(row.get("url")),
                repo=_text(row.get("repo")),
                base_commit=_text(row.get("base_commit")),
                branch=_text(row.get("branch")),
                hints=str(row.get("hints") or row.get("hints_text") or ""),
                instance_id=instance_id,
                patch=str(row.get("patch") or ""),
            )
        )
    return parsed


def one_issue(text: str, number: int | None = None) -> Parsed:
    """The issue given on the command line: first line the title, the rest the body."""
    title, _, body = text.strip().partition("\n")
    if not title.strip():
        return Parsed(errors=["the issue text is empty"])
    # Without a number, the text names the issue: two different issues never share a
    # key, a branch or a run.
    key = (
        f"issue-{number}"
        if number
        else f"issue-{hashlib.sha1(text.strip().encode()).hexdigest()[:8]}"
    )
    return Parsed(issues=[Issue(key=key, title=title, body=body, number=number)])


def select(
    issues: list[Issue],
    labels: list[str] | None = None,
    numbers: list[int] | None = None,
    limit: int = 0,
) -> list[Issue]:
    """The issues that have any of ``labels`` and one of ``numbers`` (when given), the
    first ``limit`` of them (0: all), in the order given."""
    chosen = [
        i
        for i in issues
        if (not labels or set(labels) & set(i.labels)) and (not numbers or i.number in numbers)
    ]
    return chosen[:limit] if limit > 0 else chosen


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
