"""The CI bot's own settings and how a bot config file is read.

A bot config (``configs/ci.yaml``) is a run config with one more section, ``ci:``. The
``ci`` section is read here and the rest goes to :class:`swescale.config.RunConfig`, so
the bot adds nothing to every other run's config (nor to its digest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swescale.config import ConfigError, RunConfig, parse_override, read_config_file

# Short names a "/swescale" comment may use, and the run config keys they set.
COMMENT_ALIASES: dict[str, str] = {
    "n": "scaling.n_parallel",
    "rounds": "scaling.rounds",
    "steps": "agent.step_limit",
    "selector": "selection.selector",
    "verifiers": "verifiers.enabled",
    "temperature": "model.temperature",
}


class CIConfig(BaseModel):
    """How the bot reacts to events and what it writes."""

    model_config = ConfigDict(extra="forbid")

    # An issue carrying this label (opened with it, or labeled with it) is worked on.
    label: str = "swescale"
    # A comment whose first word is this asks the bot to work on its issue.
    command: str = "/swescale"
    # The bot's own login: its comments never trigger it (accounts of type Bot never do).
    bot_login: str = "swescale[bot]"
    # Who may trigger a run by comment (GitHub's author_association); runs cost compute.
    allowed_associations: list[str] = Field(
        default_factory=lambda: ["OWNER", "MEMBER", "COLLABORATOR"]
    )
    # Run config keys a comment may override (after alias expansion); others are refused.
    comment_keys: list[str] = Field(default_factory=lambda: sorted(set(COMMENT_ALIASES.values())))
    # Upper bound on trajectories a comment may ask for (n x rounds).
    max_comment_trajectories: int = Field(default=16, ge=1)
    # Upper bound on agent steps per trajectory a comment may ask for (``steps=``).
    max_comment_steps: int = Field(default=100, ge=1)
    # Issue comments become hints for the agent (at most this many, newest last).
    hint_comments: int = Field(default=10, ge=0)
    branch_prefix: str = "swescale/issue-"
    author_name: str = "swescale"
    author_email: str = "swescale@users.noreply.github.com"
    remote: str = "origin"
    api_url: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"
    # Open pull requests as drafts: a person still reviews the change.
    draft: bool = False
    # Seconds for one GitHub API request.
    api_timeout: float = Field(default=30.0, gt=0)


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(``ci.*`` overrides without the prefix, all others)."""
    ci, run = [], []
    for item in overrides:
        (ci if item.strip().startswith("ci.") else run).append(item)
    return [item.strip()[3:] for item in ci], run


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def load_bot_config(
    path: str | Path | None = "ci", overrides: list[str] | None = None
) -> tuple[RunConfig, CIConfig]:
    """(run config, bot config) from a YAML file or preset and ``key=value`` overrides;
    ``ci.label=fix-me`` sets the bot's own settings. Errors are :class:`ConfigError`."""
    data: dict[str, Any] = read_config_file(path) if path is not None else {}
    ci_data = data.pop("ci", None) or {}
    if not isinstance(ci_data, dict):
        raise ConfigError("the 'ci' section must be a mapping")
    ci_overrides, run_overrides = split_overrides(overrides or [])
    for item in ci_overrides:
        key, value = parse_override(item)
        _set_dotted(ci_data, key, value)
    for item in run_overrides:
        key, value = parse_override(item)
        _set_dotted(data, key, value)
    try:
        ci = CIConfig.model_validate(ci_data)
    except ValidationError as exc:
        raise ConfigError(f"invalid ci section: {exc}") from exc
    try:
        run = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {exc}") from exc
    return run, ci
