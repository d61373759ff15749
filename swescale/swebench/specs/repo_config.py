"""``.swescale.yaml`` at a repository's root: how to install and test it, and what the bot
may change.

```yaml
python: "3.11"                 # or suite: bookworm (bullseye 3.9, bookworm 3.11, trixie 3.13)
python_packages: [pytest]      # installed into the venv at /opt/venv first
install:                       # run in /repo with the venv active
  - pip install -e .
test_command: python -m pytest -rA -p no:cacheprovider
forbidden_paths: [".github/**", "setup.py"]   # a patch touching these is never proposed
max_files_changed: 5
run:                           # run config overrides for this repository
  scaling.n_parallel: 4
```

The file is read at the commit the bot works on, not from the working tree, so what it
says is what the repository's maintainers committed.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

REPO_CONFIG_FILE = ".swescale.yaml"
DEFAULT_INSTALL = "if [ -f setup.py ] || [ -f pyproject.toml ]; then pip install -e .; fi"
DEFAULT_TEST_COMMAND = "python -m pytest -rA -p no:cacheprovider"
# Debian suites and the Python they ship (the base images are Debian).
SUITE_BY_PYTHON = {"3.9": "bullseye", "3.11": "bookworm", "3.13": "trixie"}


class RepoConfigError(ValueError):
    """A ``.swescale.yaml`` that cannot be used; the message says where and why."""


class RepoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    python: str | None = None
    suite: Literal["bullseye", "bookworm", "trixie"] = "bookworm"
    python_packages: list[str] = Field(default_factory=lambda: ["pytest"])
    install: list[str] = Field(default_factory=lambda: [DEFAULT_INSTALL])
    test_command: str = DEFAULT_TEST_COMMAND
    forbidden_paths: list[str] = Field(default_factory=lambda: [".github/**", REPO_CONFIG_FILE])
    # 0: no limit.
    max_files_changed: int = Field(default=10, ge=0)
    run: dict[str, Any] = Field(default_factory=dict)
    # Where the file came from ("defaults" when absent); not part of the file.
    source: str = Field(default="defaults", exclude=True)

    @field_validator("install", "python_packages", "forbidden_paths", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("test_command")
    @classmethod
    def _command_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("test_command is empty")
        return value

    @field_validator("python")
    @classmethod
    def _known_python(cls, value: str | None) -> str | None:
        if value is not None and str(value) not in SUITE_BY_PYTHON:
            known = ", ".join(SUITE_BY_PYTHON)
            raise ValueError(f"python {value} is not available (available: {known})")
        return None if value is None else str(value)

    @property
    def debian_suite(self) -> str:
        return SUITE_BY_PYTHON[self.python] if self.python else self.suite

    def run_overrides(self) -> list[str]:
        """``run:`` as dotted ``key=value`` overrides (nested mappings flattened)."""
        out: list[str] = []

        def walk(prefix: str, node: Any) -> None:
            if isinstance(node, dict) and (node or not prefix):
                for key, value in node.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), value)
            else:
                # JSON is YAML, and parse_override reads the value as YAML.
                out.append(f"{prefix}={json.dumps(node)}")

        walk("", self.run)
        return out


def parse_repo_config(text: str, source: str = REPO_CONFIG_FILE) -> RepoConfig:
    """A RepoConfig from the file's text; an empty file gives the defaults."""
    try:
        data = yaml.safe_load(text.removeprefix("\ufeff"))
    except yaml.YAMLError as exc:
        raise RepoConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RepoConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    try:
        config = RepoConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise RepoConfigError(f"{source}: {problems}") from exc
    config.source = source
    return config
