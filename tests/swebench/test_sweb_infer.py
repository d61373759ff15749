"""The "inferred" provider's reading of a repository's own files, on small literal
repositories of each kind (no Docker, no network): setup.py only, setup.cfg, pyproject
with extras, dependency groups, tox.ini, requirements files, lock files, and the
interpreter and package date from classifiers and the commit's date."""

from __future__ import annotations

import os
import subprocess

import git
import pytest

from swescale.swebench.repos import RepoSource
from swescale.swebench.specs import INFERRED, provider_for, task_test_command
from swescale.swebench.specs.infer import (
    INDEX_FLOOR,
    TEST_COMMAND,
    infer_repo_config,
    merge_requirements,
    pick_python,
    requirement_lines,
    setup_py_literals,
    suite_paths,
    tox_pythons,
)
from swescale.swebench.specs.inferred import (
    HIDE_UNTRACKED,
    PYTEST_SCRIPT,
    environment_of,
    with_inferred_environment,
)
from swescale.types import Task


def reader(files: dict[str, str]):
    return files.get


def uv_line(cfg) -> str:
    """The install line, without the helper that retries late releases."""
    from swescale.swebench.specs.infer import LATE_RELEASES

    lines = (
        c.removeprefix(LATE_RELEASES + " ").removeprefix("swescale_dated ") for c in cfg.install
    )
    return next(c for c in lines if c.startswith("uv pip install"))


SETUP_PY = """
from setuptools import setup
EXTRAS = {"tests": ["pytest", "simplejson"], "docs": ["sphinx"]}
setup(
    name="m",
    python_requires=">=3.6",
    install_requires=["python-dateutil"],
    extras_require=EXTRAS,
    classifiers=["Programming Language :: Python :: 3.7"],
)
"""


def test_setup_py_only_is_read_without_running_it() -> None:
    found = setup_py_literals(SETUP_PY)
    assert found["extras_require"]["tests"] == ["pytest", "simplejson"]
    assert found["python_requires"] == ">=3.6"
    cfg = infer_repo_config(reader({"setup.py": SETUP_PY}), "2019-08-10")
    # Classifiers name 3.7: the oldest Debian interpreter that fits, 3.9.
    assert cfg.python == "3.9" and cfg.debian_suite == "bullseye"
    line = uv_line(cfg)
    # Packages of the commit's date, never older than the interpreter's wheels.
    assert f"--exclude-newer {INDEX_FLOOR['3.9']} " in line
    assert "'.[tests]'" in line and "setuptools wheel" in line
    assert cfg.install[-1] == "python -m pip install --no-deps --no-build-isolation -e ."
    assert "pytest<8" in cfg.install[0]  # the install-date caps as constraints
    assert cfg.test_command == TEST_COMMAND
    assert "test extra [tests]" in cfg.source and "classifiers" in cfg.source
    # A setup.py that is not Python gives nothing, not an error.
    assert setup_py_literals("def (") == {}


def test_setup_cfg_with_extras_and_tox_extras() -> None:
    cfg = infer_repo_config(
        reader(
            {
                "setup.py": "from setuptools import setup\nsetup()\n",
                "setup.cfg": "[metadata]\nname = x\n[options]\npython_requires = >=3.8\n"
                "[options.extras_require]\ntesting = hypothesis\n",
                "tox.ini": "[testenv]\nextras = testing, yaml\ndeps = pytest-xdist\n",
            }
        ),
        "2023-06-01",
    )
    assert cfg.python == "3.11"  # usable on that date, admitted by >=3.8
    line = uv_line(cfg)
    assert "'.[testing,yaml]'" in line and "pytest-xdist" in line
    assert "--exclude-newer 2023-06-01" in line


def test_pyproject_extras_and_build_requirements_upgraded() -> None:
    cfg = infer_repo_config(
        reader(
            {
                "pyproject.toml": '[build-system]\nrequires = ["flit_core>=3.4"]\n'
                'build-backend = "flit_core.buildapi"\n[project]\nname = "m"\n'
                'requires-python = ">=3.12"\n[project.optional-dependencies]\n'
                "tests = ['pytest', 'simplejson']\n",
            }
        ),
        "2025-06-01",
    )
    assert cfg.python == "3.13"
    line = uv_line(cfg)
    assert "--upgrade-package flit-core" in line and "'flit_core>=3.4'" in line
    assert "'.[tests]'" in line


def test_dependency_groups() -> None:
    cfg = infer_repo_config(
        reader(
            {
                "pyproject.toml": '[project]\nname = "f"\nrequires-python = ">=3.10"\n'
                "[dependency-groups]\ndev = ['ruff']\ntests = ['pytest', 'asgiref']\n",
            }
        )
    )
    assert "--group tests" in uv_line(cfg) and "dependency group 'tests'" in cfg.source
    # Without a date the current index is read, and nothing is capped.
    assert "--exclude-newer" not in uv_line(cfg) and not cfg.install[0].startswith("printf")


def test_requirements_files_with_includes_and_tooling_dropped() -> None:
    files = {
        "requirements_test.txt": "-r requirements_test_min.txt\n-r requirements_pre_commit.txt\n"
        "coverage~=5.5  # coverage\n-e .\n--index-url https://x\npytest-cov\n",
        "requirements_test_min.txt": "astroid==2.6.0\ngit+https://example.org/x.git\n",
        "requirements_pre_commit.txt": "black==21.6b0\n",
    }
    assert requirement_lines(reader(files), "requirements_test.txt") == [
        "astroid==2.6.0",
        "coverage~=5.5",
        "pytest-cov",
    ]
    cfg = infer_repo_config(
        reader(
            {
                **files,
                "setup.py": "from setuptools import setup\nsetup()\n",
                "tox.ini": "[testenv]\ndeps =\n  coverage<5\n  -r requirements_test.txt\n",
            }
        ),
        "2021-06-22",
    )
    line = uv_line(cfg)
    # The requirement file's pin wins over tox's older direct dependency.
    assert "'coverage~=5.5'" in line and "coverage<5" not in line
    assert "black" not in line
    assert merge_requirements(["pytest", "numpy", "pytest==6.2.4"]) == ["numpy", "pytest==6.2.4"]


def test_a_plain_requirements_repository_and_a_lock_file() -> None:
    cfg = infer_repo_config(reader({"requirements.txt": "flask==2.0.1\n"}), "2021-07-01")
    assert "flask==2.0.1" in uv_line(cfg) and "'.'" not in uv_line(cfg)
    assert not any("pip install --no-deps" in c for c in cfg.install)  # not a package
    locked = infer_repo_config(
        reader(
            {
                "pyproject.toml": '[project]\nname = "f"\n',
                "poetry.lock": '[[package]]\nname = "Attrs"\nversion = "21.4.0"\n',
            }
        ),
        "2022-01-01",
    )
    assert "attrs==21.4.0" in locked.install[0] and "poetry.lock" in locked.source


def test_the_interpreter_choice() -> None:
    assert pick_python(">=3.9", [], None)[0] == "3.11"
    assert pick_python(">=3.6,<3.10", [], None)[0] == "3.9"
    assert pick_python(None, [], "2021-01-01")[0] == "3.9"
    assert pick_python(None, [], "2024-01-01")[0] == "3.11"
    assert pick_python(">=3.12", [], "2021-01-01")[0] == "3.13"  # the oldest admitted
    assert pick_python(None, ["Programming Language :: Python :: 3.12"], "2021-01-01")[0] == "3.11"
    assert pick_python("~=2.7", [], None)[0] is None


# A setup.py of the pvlib kind: the extras dict names lists bound elsewhere, adds them up,
# and sets its "all" extra after the dict is made.
SETUP_PY_NAMES = """
from setuptools import setup
INSTALL = ['numpy >= 1.16', 'pandas']
TESTS_REQUIRE = ['pytest', 'pytest-mock'] + ['requests-mock']
EXTRAS_REQUIRE = {
    'optional': ['ephem', 'numba'],
    'doc': sorted(set(INSTALL)),
    'test': TESTS_REQUIRE,
}
EXTRAS_REQUIRE['all'] = sorted(set(sum(EXTRAS_REQUIRE.values(), [])))
setup(name='pv', install_requires=INSTALL, extras_require=EXTRAS_REQUIRE)
"""


def test_setup_py_names_sums_and_extras_set_later() -> None:
    found = setup_py_literals(SETUP_PY_NAMES)
    # The entry that is a call ('doc') is left out; the others resolve through names.
    assert found["extras_require"] == {
        "optional": ["ephem", "numba"],
        "test": ["pytest", "pytest-mock", "requests-mock"],
        "all": [],
    }
    assert found["install_requires"] == ["numpy >= 1.16", "pandas"]
    cfg = infer_repo_config(reader({"setup.py": SETUP_PY_NAMES}), "2021-01-29")
    line = uv_line(cfg)
    # [test,all] first; then [test] alone, said in the build log, when [all] will not resolve.
    first, second = line.split(" || ")[:2]
    assert "'.[test,all]'" in first and "'.[test]'" in second
    assert "the extra [all] dropped" in second
    assert "test extra [test]" in cfg.source and "extra [all]" in cfg.source
    # Then each package of [all] on its own (here computed: the union of the others), so
    # one without a solution does not take ephem with it.
    each = next(c for c in cfg.install if c.startswith("for r in"))
    assert each.startswith("for r in ephem numba pytest pytest-mock requests-mock; do uv ")
    assert "--exclude-newer 2021-01-29" in each and "[all]: $r has no solution" in each
    assert cfg.install[-1].startswith("python -m pip install --no-deps")
    # A name that is not bound, or a cycle of names, resolves to nothing, not an error.
    assert setup_py_literals("from setuptools import setup\nsetup(extras_require=X)\n") == {}
    assert setup_py_literals("A = B\nB = A\nsetup(install_requires=A)\n") == {}


def test_tox_envlist_names_the_tested_interpreters() -> None:
    assert tox_pythons("py3{12,11,10,9,8,7}\npypy3{9,8}\nstyle") == (
        "3.7",
        "3.8",
        "3.9",
        "3.10",
        "3.11",
        "3.12",
    )
    assert tox_pythons("py27, py35-django{22,30}, py310, py3.11, 3.13, docs") == (
        "3.5",
        "3.10",
        "3.11",
        "3.13",
    )
    assert tox_pythons("") == ()
    # A February 2023 commit with no version classifiers: by date alone it gets 3.9, but
    # its tox envlist tests up to 3.12, so 3.11 (tomllib-only tests run).
    tox = "[tox]\nenvlist =\n    py3{12,11,10,9,8,7}\n    style\n"
    files = {"pyproject.toml": "[project]\nname = 'f'\nrequires-python = '>=3.7'\n"}
    assert infer_repo_config(reader(files), "2023-02-22").python == "3.9"
    cfg = infer_repo_config(reader({**files, "tox.ini": tox}), "2023-02-22")
    assert cfg.python == "3.11" and "tox's envlist name up to 3.12" in cfg.source
    # setup.cfg's [tox:tox] is read the same way.
    cfg = infer_repo_config(
        reader({**files, "setup.cfg": "[tox:tox]\nenvlist = py311\n"}), "2023-02-22"
    )
    assert cfg.python == "3.11"


def test_suite_paths() -> None:
    assert suite_paths(reader({"tests": "tree"})) == ["tests"]
    assert suite_paths(reader({"tests": "t", "setup.cfg": "[tool:pytest]\ntestpaths = t\n"})) == []
    assert suite_paths(reader({})) == []


def test_the_provider_reads_the_repository_at_the_base_commit(tmp_path) -> None:
    repo = git.Repo.init(tmp_path / "calc")
    (tmp_path / "calc" / "setup.py").write_text(SETUP_PY)
    repo.index.add(["setup.py"])
    base = repo.index.commit("base").hexsha
    (tmp_path / "calc" / ".swescale.yaml").write_text("install: [make]\ntest_command: tox\n")
    repo.index.add([".swescale.yaml"])
    later = repo.index.commit("own recipe").hexsha
    source = RepoSource(tmp_path / "cache", url=None, local={"acme/calc": tmp_path / "calc"})
    task = Task(id="acme__calc-1", repo="acme/calc", base_commit=base, problem_statement="p")
    inferred = with_inferred_environment(task, source)
    assert inferred.extra["spec_provider"] == INFERRED
    specs = provider_for(inferred)
    assert specs.setup_steps(inferred, None, [])[-2:] == [PYTEST_SCRIPT, HIDE_UNTRACKED]
    assert task_test_command(inferred) == TEST_COMMAND
    assert specs.log_parser_name(inferred) == "parse_log_pytest"
    # Grading containers get the machine's cores as an explicit quota (a suite reading
    # cgroup v1's cpu.shares would count one core otherwise).
    assert specs.cpus(inferred) == len(os.sched_getaffinity(0))
    assert environment_of(inferred).source.startswith("inferred:")
    # The repository's own .swescale.yaml wins where it exists.
    own = with_inferred_environment(task.model_copy(update={"base_commit": later}), source)
    assert environment_of(own).install == ["make"] and task_test_command(own) == "tox"
    assert specs.problem(task) == "acme__calc-1: no environment inferred from the repository yet"


@pytest.mark.parametrize(
    ("scripts", "pytest_is"),
    [(["py.test"], "py.test"), (["py.test", "pytest"], None), ([], "missing")],
)
def test_an_old_pytest_gets_the_pytest_script_later_ones_have(tmp_path, scripts, pytest_is):
    # pytest 2.8 (pinned by requests' requirements.txt of 2016) installs only py.test.
    from swescale.swebench.layers import VENV

    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in scripts:
        (bin_dir / name).write_text(f"#!/bin/sh\necho {name}\n")
    command = PYTEST_SCRIPT.replace(VENV, str(tmp_path / "venv"))
    subprocess.run(["bash", "-c", command], check=True)
    target = bin_dir / "pytest"
    if pytest_is == "missing":
        assert not target.exists()
    elif pytest_is is None:
        assert not target.is_symlink()
    else:
        assert os.readlink(target) == pytest_is


FAKE_UV = """#!/bin/sh
# Fails as uv does while atomicwrites is held to the commit's date.
case "$*" in
  *"--exclude-newer-package atomicwrites="*) echo "installed: $*"; exit 0;;
  *stubborn*) echo "hint: \\`atomicwrites\\` was filtered by \\`exclude-newer\\` to only ..."; exit 1;;
  *plain*) echo "error: No solution found"; exit 1;;
esac
echo "hint: \\`atomicwrites\\` was filtered by \\`exclude-newer\\` to only include packages"
exit 1
"""


@pytest.mark.parametrize(
    ("argument", "code", "said"),
    [
        ("ok", 0, "installed: --exclude-newer 2020-12-15 ok --exclude-newer-package atomicwrites="),
        ("plain", 1, "error: No solution found"),
    ],
)
def test_a_requirement_gone_from_the_dated_index_is_taken_as_it_is(
    tmp_path, argument, code, said
) -> None:
    from swescale.swebench.specs.infer import LATE_RELEASES

    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    script = f"{LATE_RELEASES} swescale_dated {uv} --exclude-newer 2020-12-15 {argument}"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == code
    assert said in done.stdout
    if code == 0:
        assert "atomicwrites has no release of the commit date" in done.stderr


def test_the_same_late_package_named_again_ends_the_retries(tmp_path) -> None:
    from swescale.swebench.specs.infer import LATE_RELEASES

    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV.replace('*"--exclude-newer-package atomicwrites="*)', "never)"))
    uv.chmod(0o755)
    script = f"{LATE_RELEASES} swescale_dated {uv} stubborn || echo fell-back"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip().endswith("fell-back")
    assert done.stderr.count("atomicwrites has no release") == 1


def test_exact_pins_become_lower_bounds_on_an_interpreter_newer_than_tested() -> None:
    # requests 2.10 (2016): classifiers up to 3.5, requirements.txt pins coverage 4.0.3,
    # which fails at import on Python 3.9, the oldest Debian interpreter here.
    setup = (
        "from setuptools import setup\nsetup(name='requests', classifiers=["
        "'Programming Language :: Python :: 3.4', 'Programming Language :: Python :: 3.5'])\n"
    )
    old = infer_repo_config(
        reader({"setup.py": setup, "requirements.txt": "coverage==4.0.3\npytest==2.8.7\n"}),
        "2016-05-01",
    )
    line = uv_line(old)
    assert "'coverage>=4.0.3'" in line and "'pytest>=2.8.7'" in line and "==" not in line
    assert "exact pins as lower bounds (Python 3.9 is newer than tested)" in old.source
    # A project that names the interpreter it gets keeps its pins.
    tested = setup.replace("3.5'", "3.9'")
    kept = infer_repo_config(
        reader({"setup.py": tested, "requirements.txt": "coverage==5.3\n"}), "2021-01-01"
    )
    assert "coverage==5.3" in uv_line(kept) and "lower bounds" not in kept.source
