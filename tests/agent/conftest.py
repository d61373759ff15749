"""Fixtures of the agent tests: the tiny real model's server, and a small git repository
in a sandbox that the scripted model fixes."""

from __future__ import annotations

import pytest
from conftest_llm import llama_model_config, llama_server  # noqa: F401

CALC_PY = '''"""A tiny calculator."""


def add(a, b):
    return a - b


def mul(a, b):
    return a * b


def mul_all(values):
    total = 1
    for v in values:
        total = mul(total, v)
    return total
'''

TEST_CALC_PY = """from calc import add, mul


def test_add():
    assert add(2, 3) == 5


def test_mul():
    assert mul(2, 3) == 6
"""


@pytest.fixture
def fresh_repo_sandbox(make_sandbox):
    """Factory of fresh sandboxes holding the same committed repository at /repo (fixed
    author and dates, so every one has the same base commit), whose ``add`` has a bug."""

    def make():
        sb = make_sandbox(base_commit="")
        sb.write_file("/repo/calc.py", CALC_PY)
        sb.write_file("/repo/test_calc.py", TEST_CALC_PY)
        sb.write_file("/repo/README.md", "calc: add and mul\n")
        result = sb.exec_once(
            "cd /repo && git init -q && git add -A && GIT_AUTHOR_DATE=2020-01-01T00:00:00Z "
            "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z "
            "git -c user.name=t -c user.email=t@example.com commit -q -m base && git rev-parse HEAD"
        )
        assert result.exit_code == 0, result.output
        sb.base_commit = result.output.strip().splitlines()[-1]
        return sb

    return make


@pytest.fixture
def repo_sandbox(fresh_repo_sandbox):
    return fresh_repo_sandbox()
