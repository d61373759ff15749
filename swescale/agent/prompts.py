"""Prompts from Jinja templates in ``configs/prompts/``.

A template renders both messages: its ``system`` block and its ``instance`` block (the
first user message). Variants extend ``base.j2`` and override blocks. Only the fields of
a task that an agent may see are passed in: never the gold patch, the test patch or the
names of the tests that grade it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from swescale.types import Task

# The presets and templates (as swescale.config.CONFIG_DIR; not imported from there so that
# loading prompts never imports every subpackage's config). swescale/configs links to the
# repository's configs/, and wheels carry a copy.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
PROMPTS_DIR = CONFIG_DIR / "prompts"
# Separators the base template puts around its blocks; control characters that are
# removed from every value first, so no issue text can fake them.
SYSTEM_MARK = "\x1e\x1eSYSTEM\x1e\x1e"
INSTANCE_MARK = "\x1e\x1eINSTANCE\x1e\x1e"


class PromptError(ValueError):
    """A prompt template that cannot be found or rendered; says which and why."""


def template_path(name: str) -> Path:
    """``agent`` -> configs/prompts/agent.j2; ``prompts/x.j2`` -> configs/prompts/x.j2;
    an existing path is used as is."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate.resolve()
    for guess in (CONFIG_DIR / name, PROMPTS_DIR / name, PROMPTS_DIR / f"{name}.j2"):
        if guess.is_file():
            return guess
    raise PromptError(f"prompt template {name!r} not found (looked in {PROMPTS_DIR})")


@lru_cache(maxsize=32)
def _environment(directory: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([directory, str(PROMPTS_DIR)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


def visible_task_fields(task: Task) -> dict[str, Any]:
    """What an agent may read about a task."""
    return {
        "task_id": task.id,
        "repo": task.repo,
        "issue": task.problem_statement,
        "hints": task.hints,
        "version": task.version or "",
    }


def _clean(value: Any) -> Any:
    return value.replace("\x1e", "") if isinstance(value, str) else value


def render_prompts(
    task: Task,
    template: str = "agent",
    *,
    workdir: str = "/repo",
    tool_mode: str = "text",
    step_limit: int = 30,
    feedback: str = "",
    **extra: Any,
) -> tuple[str, str]:
    """``(system, user)`` messages for ``task`` from a prompt template."""
    path = template_path(template)
    variables = {
        **visible_task_fields(task),
        "workdir": workdir,
        "tool_mode": tool_mode,
        "step_limit": step_limit,
        "feedback": feedback,
        **extra,
    }
    variables = {k: _clean(v) for k, v in variables.items()}
    try:
        compiled = _environment(str(path.parent)).get_template(path.name)
        text = compiled.render(**variables, SYSTEM_MARK=SYSTEM_MARK, INSTANCE_MARK=INSTANCE_MARK)
    except jinja2.TemplateError as exc:
        raise PromptError(f"prompt template {path}: {exc}") from exc
    if text.count(SYSTEM_MARK) != 1 or text.count(INSTANCE_MARK) != 1:
        raise PromptError(
            f"prompt template {path} must extend base.j2 (system and instance blocks)"
        )
    system = text.split(SYSTEM_MARK, 1)[1].split(INSTANCE_MARK, 1)[0]
    user = text.split(INSTANCE_MARK, 1)[1]
    return _tidy(system), _tidy(user)


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()
