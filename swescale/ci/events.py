"""GitHub webhook payloads in, a request to work on an issue (or the reason not to) out.

Pure functions over the payload JSON that Actions puts at ``GITHUB_EVENT_PATH``. Two
events trigger the bot:

- ``issues``: an issue opened with the bot's label, or labeled with it;
- ``issue_comment``: a new comment on an issue whose first word is the bot's command
  (``/swescale``), optionally followed by run overrides (``/swescale n=4 rounds=2``); the
  rest of the comment is passed to the agent as a hint.

Anything else is :class:`Ignored` with a reason. A payload that is not JSON or lacks a
field the bot needs raises :class:`EventError` naming the field.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from swescale.ci.config import COMMENT_ALIASES, CIConfig
from swescale.config import ConfigError, RunConfig, parse_override


class EventError(ValueError):
    """A payload the bot cannot read; the message names the file or field and why."""


@dataclass(frozen=True)
class Comment:
    author: str
    body: str


@dataclass(frozen=True)
class IssueRequest:
    """Work on one issue: what the bot was asked, by which event."""

    repo: str  # owner/name
    issue_number: int
    title: str
    body: str
    trigger: str  # "issues.opened", "issues.labeled", "issue_comment.created"
    sender: str = ""
    default_branch: str = ""
    comments: tuple[Comment, ...] = ()
    # Dotted run config overrides asked for in the comment (``scaling.n_parallel=4``).
    overrides: tuple[str, ...] = ()
    # The triggering comment's text after the command line, and its id.
    instructions: str = ""
    comment_id: int | None = None

    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repo.split("/", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "issue_number": self.issue_number,
            "title": self.title,
            "body": self.body,
            "trigger": self.trigger,
            "sender": self.sender,
            "default_branch": self.default_branch,
            "comments": [{"author": c.author, "body": c.body} for c in self.comments],
            "overrides": list(self.overrides),
            "instructions": self.instructions,
            "comment_id": self.comment_id,
        }


@dataclass(frozen=True)
class Ignored:
    """The event asks nothing of the bot. ``notify``: the asker should hear why (a
    refused command), so a live bot answers with a comment."""

    reason: str
    repo: str = ""
    issue_number: int | None = None
    notify: bool = False
    details: dict[str, Any] = field(default_factory=dict)


EventResult = IssueRequest | Ignored


# -- reading --------------------------------------------------------------------------


def read_event_file(path: str | Path) -> dict[str, Any]:
    """The payload of an event file; EventError when missing, not JSON or not an object."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise EventError(f"event file {file} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise EventError(f"event file {file} cannot be read: {exc}") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(f"event file {file} is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise EventError(f"event file {file}: expected a JSON object, got {type(payload).__name__}")
    return payload


def _get(payload: dict[str, Any], dotted: str, kind: type | tuple[type, ...]) -> Any:
    node: Any = payload
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise EventError(f"event has no {dotted}")
        node = node[part]
    # bool is an int in Python; an issue number of true is still malformed.
    if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise EventError(f"event field {dotted} should be {names}, got {type(node).__name__}")
    return node


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def event_name_of(payload: dict[str, Any]) -> str:
    """The event a payload belongs to, from its shape (Actions names it in
    ``GITHUB_EVENT_NAME``; a bare payload file does not)."""
    if "comment" in payload and "issue" in payload:
        return "issue_comment"
    if "issue" in payload:
        return "issues"
    if "pull_request" in payload:
        return "pull_request"
    return "unknown"


# -- comment commands -----------------------------------------------------------------


def parse_command(body: str, command: str) -> tuple[list[str], str] | None:
    """``"/swescale n=4\\nplease look at x"`` -> (["n=4"], "please look at x"); None when the
    comment does not start with the command. Raises EventError on unbalanced quotes."""
    stripped = body.lstrip()
    first, _, rest = stripped.partition("\n")
    words = first.split()
    if not words or words[0] != command:
        return None
    try:
        args = shlex.split(first.strip()[len(command) :])
    except ValueError as exc:
        raise EventError(f"cannot read the command line {first.strip()!r}: {exc}") from exc
    return args, rest.strip()


def comment_overrides(args: list[str], ci: CIConfig) -> list[str]:
    """Arguments of a command -> dotted overrides, checked against what comments may set.
    Raises ConfigError with the reason for the first argument refused."""
    out: list[str] = []
    data: dict[str, Any] = {}
    for arg in args:
        key, value = parse_override(arg)
        full = COMMENT_ALIASES.get(key, key)
        if full not in ci.comment_keys:
            allowed = ", ".join(sorted(COMMENT_ALIASES))
            raise ConfigError(f"{key!r} cannot be set from a comment (allowed: {allowed})")
        section, _, leaf = full.partition(".")
        data.setdefault(section, {})[leaf] = value
        out.append(f"{full}={json.dumps(value)}")
    try:
        checked = RunConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}: {first['msg']}") from exc
    if "scaling" in data:
        total = checked.scaling.n_parallel * checked.scaling.rounds
        if total > ci.max_comment_trajectories:
            raise ConfigError(
                f"{total} trajectories asked; a comment may ask for at most "
                f"{ci.max_comment_trajectories}"
            )
    if "step_limit" in data.get("agent", {}) and checked.agent.step_limit > ci.max_comment_steps:
        raise ConfigError(
            f"{checked.agent.step_limit} steps asked; a comment may ask for at most "
            f"{ci.max_comment_steps}"
        )
    return out


# -- events ---------------------------------------------------------------------------


def _issue_fields(payload: dict[str, Any]) -> tuple[str, int, str, str, str]:
    repo = _get(payload, "repository.full_name", str)
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise EventError(f"repository.full_name {repo!r} is not owner/name")
    number = _get(payload, "issue.number", int)
    if number < 1:
        raise EventError(f"issue.number {number} is not a positive number")
    title = _get(payload, "issue.title", str)
    body = _text(payload["issue"].get("body"))
    branch = _text((payload.get("repository") or {}).get("default_branch"))
    return repo, number, title, body, branch


def _label_names(issue: dict[str, Any]) -> list[str]:
    labels = issue.get("labels") or []
    if not isinstance(labels, list):
        return []
    names = []
    for label in labels:
        if isinstance(label, dict) and isinstance(label.get("name"), str):
            names.append(label["name"])
        elif isinstance(label, str):
            names.append(label)
    return names


def _is_pull_request(issue: dict[str, Any]) -> bool:
    # GitHub sends comments on pull requests as issue_comment events whose issue has a
    # "pull_request" key.
    return bool(issue.get("pull_request"))


def parse_issues_event(payload: dict[str, Any], ci: CIConfig) -> EventResult:
    repo, number, title, body, branch = _issue_fields(payload)
    issue = payload["issue"]
    action = _get(payload, "action", str)
    ignored = {"repo": repo, "issue_number": number}
    if _is_pull_request(issue):
        return Ignored("the issue is a pull request", **ignored)
    if action == "opened":
        if ci.label not in _label_names(issue):
            return Ignored(f"issue opened without the {ci.label!r} label", **ignored)
    elif action == "labeled":
        label = _text((payload.get("label") or {}).get("name"))
        if label != ci.label:
            return Ignored(f"labeled {label!r}, not {ci.label!r}", **ignored)
    else:
        return Ignored(f"issues action {action!r} is not handled", **ignored)
    if issue.get("state") == "closed":
        return Ignored("the issue is closed", **ignored)
    refused = _untrusted_label(payload, action, ci)
    if refused:
        return Ignored(refused, notify=True, **ignored)
    sender = _text((payload.get("sender") or {}).get("login"))
    return IssueRequest(repo, number, title, body, f"issues.{action}", sender, branch)


def _untrusted_label(payload: dict[str, Any], action: str, ci: CIConfig) -> str:
    """Why the label on this event does not come from someone allowed to run the bot, or
    "" when it does.

    An issue form can put labels on a new issue, so ``opened`` with the label proves only
    that the author used the form: the author's own ``author_association`` must be
    allowed. Only people with triage access can label someone else's issue, so a
    ``labeled`` event by another person is trusted; labeled by the issue's author (a form
    again) needs the author's association, and a Bot account labeling (an auto-labeler
    reading the issue text) never triggers the bot."""
    issue = payload["issue"]
    author = issue.get("user") if isinstance(issue.get("user"), dict) else {}
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    author_login = _text(author.get("login"))
    association = _text(issue.get("author_association")) or "NONE"
    allowed = ", ".join(ci.allowed_associations)
    if action == "labeled":
        login = _text(sender.get("login"))
        if login == ci.bot_login or sender.get("type") == "Bot":
            return (
                f"the {ci.label!r} label was added by the bot account {login!r}; "
                f"a person allowed to run the bot must add it"
            )
        if login and login != author_login:
            return ""
    if association in ci.allowed_associations:
        return ""
    how = "opened with" if action == "opened" else "labeled by its author with"
    return (
        f"issue {how} the {ci.label!r} label by {author_login or 'its author'}, who is "
        f"{association}; only {allowed} may run the bot (a maintainer may add the label "
        f"or comment {ci.command})"
    )


def parse_comment_event(payload: dict[str, Any], ci: CIConfig) -> EventResult:
    repo, number, title, body, branch = _issue_fields(payload)
    issue = payload["issue"]
    action = _get(payload, "action", str)
    comment = _get(payload, "comment", dict)
    text = _text(comment.get("body"))
    user = comment.get("user") if isinstance(comment.get("user"), dict) else {}
    login = _text(user.get("login"))
    ignored = {"repo": repo, "issue_number": number}
    if action != "created":
        return Ignored(f"comment {action}, only new comments trigger the bot", **ignored)
    if login == ci.bot_login or user.get("type") == "Bot":
        return Ignored(f"comment by the bot account {login!r}", **ignored)
    if _is_pull_request(issue):
        return Ignored("comment on a pull request, not an issue", **ignored)
    try:
        command = parse_command(text, ci.command)
    except EventError as exc:
        return Ignored(str(exc), notify=True, **ignored)
    if command is None:
        return Ignored(f"comment does not start with {ci.command}", **ignored)
    association = _text(comment.get("author_association")) or "NONE"
    if association not in ci.allowed_associations:
        return Ignored(
            f"{login or 'the author'} is {association}; only "
            f"{', '.join(ci.allowed_associations)} may run the bot",
            notify=True,
            **ignored,
        )
    if issue.get("state") == "closed":
        return Ignored("the issue is closed", notify=True, **ignored)
    args, instructions = command
    try:
        overrides = comment_overrides(args, ci)
    except ConfigError as exc:
        return Ignored(f"refused: {exc}", notify=True, **ignored)
    comments = (Comment(login, instructions),) if instructions else ()
    return IssueRequest(
        repo,
        number,
        title,
        body,
        "issue_comment.created",
        login,
        branch,
        comments=comments,
        overrides=tuple(overrides),
        instructions=instructions,
        comment_id=comment.get("id") if isinstance(comment.get("id"), int) else None,
    )


def with_discussion(request: IssueRequest, listed: Any, ci: CIConfig | None = None) -> IssueRequest:
    """The request with the issue's earlier comments (GitHub's list of issue comments,
    oldest first) before its own: comments as they are, command comments by the text
    after their command line. Only comments whose ``author_association`` may run the bot
    are kept: anyone else's (and bots', and the triggering one) are skipped, so a
    stranger cannot write the agent's instructions."""
    ci = ci or CIConfig()
    found: list[Comment] = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict) or item.get("id") == request.comment_id:
            continue
        user = item.get("user") if isinstance(item.get("user"), dict) else {}
        login = _text(user.get("login"))
        if login == ci.bot_login or user.get("type") == "Bot":
            continue
        # Hints steer the agent like instructions do: only from people who may run it.
        if (_text(item.get("author_association")) or "NONE") not in ci.allowed_associations:
            continue
        text = _text(item.get("body")).strip()
        try:
            command = parse_command(text, ci.command)
        except EventError:
            continue
        if command is not None:
            text = command[1]
        if text:
            found.append(Comment(login, text))
    return replace(request, comments=(*found, *request.comments))


def parse_event(
    payload: dict[str, Any], ci: CIConfig | None = None, event_name: str = ""
) -> EventResult:
    """The request in a webhook payload, or why there is none. ``event_name`` as GitHub
    names it (``GITHUB_EVENT_NAME``); inferred from the payload when empty."""
    ci = ci or CIConfig()
    if not isinstance(payload, dict):
        raise EventError(f"expected a JSON object, got {type(payload).__name__}")
    name = event_name or event_name_of(payload)
    if name == "issues":
        return parse_issues_event(payload, ci)
    if name == "issue_comment":
        return parse_comment_event(payload, ci)
    return Ignored(f"event {name!r} is not handled (issues, issue_comment are)")


def load_event(path: str | Path, ci: CIConfig | None = None, event_name: str = "") -> EventResult:
    """:func:`parse_event` of an event file."""
    return parse_event(read_event_file(path), ci, event_name)
