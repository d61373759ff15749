"""The CI bot: a GitHub issue event in, a branch with the fix and a pull request out.

``run_bot(event_path, repo_path, ...)`` is the whole of it; the parts (event parsing,
repository config, task, guard rails, payloads, git, GitHub client) are pure or small and
used alone by tests and by ``swescale ci parse``.
"""

from swescale.ci.bot import BotError, BotOutcome, make_plan, run_bot
from swescale.ci.config import CIConfig, load_bot_config
from swescale.ci.events import EventError, Ignored, IssueRequest, load_event, parse_event
from swescale.ci.infer import load_repo_config
from swescale.ci.repo_config import RepoConfig, RepoConfigError

__all__ = [
    "BotError",
    "BotOutcome",
    "CIConfig",
    "EventError",
    "Ignored",
    "IssueRequest",
    "RepoConfig",
    "RepoConfigError",
    "load_bot_config",
    "load_event",
    "load_repo_config",
    "make_plan",
    "parse_event",
    "run_bot",
]
