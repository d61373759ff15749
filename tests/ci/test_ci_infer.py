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


def test_optional_dependency_extra_and_tox() -> None:
    cfg = infer_repo_config(
        reader(
            {
                "pyproject.toml": '[project]\nname = "m"\nrequires-python = ">=3.9"\n'
                "[project.optional-dependencies]\ntests = ['pytest', 'simplejson']\n"
                "docs = ['sphinx']\n",
                "tox.ini": "[testenv]\nextras = tests\ncommands = pytest {posargs}\n",
            }
        )
    )
    assert cfg.python == "3.11"
    assert "pip install -e '.[tests]'" in cfg.install
    assert "test extra [tests]" in cfg.source and cfg.source.startswith("inferred")


def test_dependency_groups_use_pip_groups() -> None:
    cfg = infer_repo_config(
        reader(
            {
                "pyproject.toml": '[project]\nname = "f"\nrequires-python = ">=3.10"\n'
                "[dependency-groups]\ndev = ['ruff']\ntests = ['pytest', 'asgiref']\n",
            }
        )
    )
    assert cfg.install[0].startswith("python -m pip install -q --upgrade 'pip>=25.1'")
    assert cfg.install[1:] == ["pip install -e '.'", "pip install --group tests"]


def test_setup_cfg_and_a_requirements_file() -> None:
    cfg = infer_repo_config(
        reader(
            {
                "setup.py": "from setuptools import setup\nsetup()\n",
                "setup.cfg": "[metadata]\nname = x\n[options]\npython_requires = >=3.6\n",
                "requirements/tests.txt": "pytest\nhypothesis\n",
            }
        )
    )
    assert cfg.python == "3.11"
    assert cfg.install[-2:] == ["pip install -e '.'", "pip install -r requirements/tests.txt"]


def test_a_repository_that_says_nothing_gets_the_defaults() -> None:
    cfg = infer_repo_config(reader({}))
    assert cfg.python is None and cfg.python_packages == ["pytest"]
    assert "pip install -e ." in cfg.install[0]


def test_pytest_log_summary() -> None:
    log = "PASSED tests/a.py::t1\nFAILED tests/a.py::t2 - assert 0\nSKIPPED [1] tests/b.py:3: x\nERROR tests/c.py\n"
    counts, failing = summarize_pytest_log(log)
    assert counts == {"PASSED": 1, "FAILED": 1, "SKIPPED": 1, "ERROR": 1}
    assert failing == ["tests/a.py::t2", "tests/c.py"]


def test_a_uv_lock_pins_the_versions() -> None:
    cfg = infer_repo_config(
        reader(
            {
                "pyproject.toml": '[project]\nname = "f"\n[dependency-groups]\ntests = ["pytest"]\n',
                "uv.lock": "version = 1\n",
            }
        )
    )
    assert cfg.install[1:] == [
        "pip install -q uv",
        "uv export --frozen --no-hashes --no-emit-project --no-header --group tests"
        " -o /tmp/swescale-locked.txt",
        "pip install -r /tmp/swescale-locked.txt",
        "pip install --no-deps -e .",
    ]
    assert "uv.lock" in cfg.source
