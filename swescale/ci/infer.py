"""How to install and test a repository that has no ``.swescale.yaml``, read from its own
files at a commit: ``pyproject.toml`` (``requires-python``, test extras in
``[project.optional-dependencies]``, PEP 735 ``[dependency-groups]``), ``setup.cfg``
(``python_requires``, ``[options.extras_require]``), ``tox.ini`` (``[testenv]`` extras
and deps) and the usual test requirements files.

The result is a ``RepoConfig`` whose ``source`` says what it was inferred from, so the
bot's report shows it. A repository that says nothing gets the defaults (an editable
install and pytest).
"""

from __future__ import annotations

import configparser
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from swescale.ci.repo_config import REPO_CONFIG_FILE, RepoConfig, parse_repo_config

# Extras and dependency groups that hold what the tests need, most specific first.
TEST_GROUPS = ("tests", "test", "testing")
REQUIREMENTS_FILES = (
    "requirements/tests.txt",
    "requirements/test.txt",
    "requirements/testing.txt",
    "requirements-test.txt",
    "requirements_test.txt",
    "requirements-tests.txt",
    "test-requirements.txt",
    "test_requirements.txt",
    "tests/requirements.txt",
    "requirements/dev.txt",
    "requirements-dev.txt",
    "requirements_dev.txt",
    "dev-requirements.txt",
)
# Debian's interpreters in order of preference (the middle one is the best supported).
PYTHON_PREFERENCE = ("3.11", "3.13", "3.9")
# pip 25.1 reads PEP 735 dependency groups (`pip install --group`).
MODERN_PIP = "pip>=25.1"
# A uv lock file pins what the project's own CI tests with (newer releases of test tools
# break suites: flask's imports a name pytest 9.1 removed): export it for pip.
LOCKED = "/tmp/swescale-locked.txt"

Reader = Callable[[str], str | None]


def choose_python(requires: str | None) -> tuple[str | None, str]:
    """(python, why): the preferred Debian interpreter the specifier admits."""
    if not requires:
        return None, "no Python requirement: the default interpreter"
    try:
        spec = SpecifierSet(requires)
    except InvalidSpecifier:
        return None, f"unreadable Python requirement {requires!r}: the default interpreter"
    for version in PYTHON_PREFERENCE:
        if spec.contains(f"{version}.0"):
            return version, f"Python {version} satisfies {requires!r}"
    return None, f"no Debian Python satisfies {requires!r}: the default interpreter"


def _toml(read: Reader, path: str) -> dict[str, Any]:
    text = read(path)
    if not text:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def _ini(read: Reader, path: str) -> configparser.ConfigParser | None:
    text = read(path)
    if not text:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return parser


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def infer_repo_config(read: Reader) -> RepoConfig:
    """A RepoConfig from a repository's files (``read(path)`` gives a file's text at the
    commit, or None). Pure given ``read``."""
    found: list[str] = []
    pyproject = _toml(read, "pyproject.toml")
    project = pyproject.get("project", {}) if isinstance(pyproject.get("project"), dict) else {}
    setup_cfg = _ini(read, "setup.cfg")
    tox = _ini(read, "tox.ini")

    requires = project.get("requires-python")
    if not requires and setup_cfg and setup_cfg.has_option("options", "python_requires"):
        requires = setup_cfg.get("options", "python_requires")
    python, why_python = choose_python(requires if isinstance(requires, str) else None)
    found.append(why_python)

    packages = ["pytest"]
    install: list[str] = []
    pre_install = ["python -m pip install -q --upgrade " + f"'{MODERN_PIP}'"]
    extras: list[str] = []
    optional = project.get("optional-dependencies") or {}
    if setup_cfg and setup_cfg.has_section("options.extras_require"):
        optional = {**dict(setup_cfg.items("options.extras_require")), **optional}
    extras += [name for name in TEST_GROUPS if name in optional][:1]
    if extras:
        found.append(f"test extra [{extras[0]}]")
    groups = pyproject.get("dependency-groups") or {}
    group = next((name for name in TEST_GROUPS if name in groups), None)
    if tox and tox.has_section("testenv"):
        if tox.has_option("testenv", "extras"):
            tox_extras = [
                e.strip() for e in tox.get("testenv", "extras").replace(",", "\n").split()
            ]
            extras += [e for e in tox_extras if e and e not in extras]
            found.append("tox.ini [testenv] extras")
        if tox.has_option("testenv", "deps"):
            deps = [d for d in _lines(tox.get("testenv", "deps")) if not d.startswith(("-c", "{"))]
            packages += [d for d in deps if not d.startswith("-r")]
            install += [f"pip install {d}" for d in deps if d.startswith("-r")]
            found.append("tox.ini [testenv] deps")
    has_project = bool(
        read("setup.py") or project or (setup_cfg and setup_cfg.has_section("metadata"))
    )
    if has_project:
        target = f".[{','.join(extras)}]" if extras else "."
        install.insert(0, f"pip install -e '{target}'")
    if group:
        install.append(f"pip install --group {group}")
        found.append(f"dependency group {group!r}")
    if not extras and not group:
        for path in REQUIREMENTS_FILES:
            if read(path):
                install.append(f"pip install -r {path}")
                found.append(path)
                break
    if has_project and read("uv.lock"):
        chosen = [*(f"--extra {e}" for e in extras), *([f"--group {group}"] if group else [])]
        export = ["uv export --frozen --no-hashes --no-emit-project --no-header", *chosen]
        install = [
            "pip install -q uv",
            " ".join([*export, f"-o {LOCKED}"]),
            f"pip install -r {LOCKED}",
            "pip install --no-deps -e .",
        ]
        found.append("versions pinned by uv.lock")
    config = RepoConfig(
        python=python,
        python_packages=list(dict.fromkeys(packages)),
        install=[*pre_install, *install] if install else RepoConfig().install,
    )
    config.source = "inferred: " + "; ".join(found)
    return config


def load_repo_config(repo_path: str | Path, commit: str = "HEAD") -> RepoConfig:
    """The repository's ``.swescale.yaml`` at ``commit``; without one, what its own files
    say about installing and testing it (``swescale.ci.infer``)."""
    repo = git.Repo(repo_path)

    def read(path: str) -> str | None:
        try:
            return repo.git.show(f"{commit}:{path}")
        except git.GitCommandError:
            return None

    text = read(REPO_CONFIG_FILE)
    if text is None:
        return infer_repo_config(read)
    return parse_repo_config(text, f"{REPO_CONFIG_FILE} at {commit[:12]}")
