"""Inferring how to install and test a repository from its own files (literal inputs)."""

from __future__ import annotations

from swescale.ci.check import summarize_pytest_log
from swescale.ci.infer import choose_python, infer_repo_config


def reader(files: dict[str, str]):
    return files.get


def test_python_from_requires_python_prefers_debians_middle_interpreter() -> None:
    assert choose_python(">=3.9")[0] == "3.11"
    assert choose_python(">=3.12")[0] == "3.13"
    assert choose_python(">=3.6,<3.10")[0] == "3.9"
    assert choose_python("~=2.7")[0] is None
    assert choose_python("not a spec")[0] is None
    assert choose_python(None)[0] is None


def test_the_bot_reads_what_the_inferred_provider_reads() -> None:
    # The inference itself is tested in tests/swebench/test_sweb_infer.py.
    cfg = infer_repo_config(reader({}))
    assert cfg.python is None and cfg.test_command == "python -m pytest -rA"
    assert cfg.install[0].startswith("uv pip install")


def test_pytest_log_summary() -> None:
    log = "PASSED tests/a.py::t1\nFAILED tests/a.py::t2 - assert 0\nSKIPPED [1] tests/b.py:3: x\nERROR tests/c.py\n"
    counts, failing = summarize_pytest_log(log)
    assert counts == {"PASSED": 1, "FAILED": 1, "SKIPPED": 1, "ERROR": 1}
    assert failing == ["tests/a.py::t2", "tests/c.py"]
