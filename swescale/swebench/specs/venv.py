"""The local build of an official SWE-bench recipe: a venv at /opt/venv on a Debian base
image where the official images have a conda env on Ubuntu.

The environment layer installs the recipe's packages with pip: conda package lists by the
same names and versions, ``requirements.txt`` files read from the repository at the
environment setup commit and cleaned by the official rules, ``environment.yml`` files with
conda-only names mapped to PyPI. Caps for tasks older than a breaking release (``ERA_CAPS``)
and exact pins relaxed for another interpreter keep old code running; every such choice is
a note of the recipe.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Callable, Sequence

import git
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from swescale.sandbox.images import content_tag
from swescale.swebench.config import GradingConfig
from swescale.swebench.layers import VENV, ImageError, Recipe, slug
from swescale.swebench.recipes import recipes
from swescale.swebench.repos import RepoSource, mirror_git
from swescale.swebench.specs.tables import conda_to_pip, env_plan, official_spec
from swescale.types import Task

# pip is pinned to a release of the era the official images were built in: pip 25.3
# removed `--no-use-pep517` and `setup.py develop`, which every scikit-learn install
# command uses, and pip 24.1 stopped accepting the non-PEP 440 versions old pins carry.
PIP_PIN = "pip==24.0"
# Old pins in the specs break on newer setuptools (pkg_resources, setup.py commands).
BOOTSTRAP = f"{VENV}/bin/python -m pip install '{PIP_PIN}' wheel 'setuptools<70'"
# Packages a spec leaves unpinned whose newest release drops what older test suites use,
# capped for instances created before that release: (name, release date, cap, why).
# pytest 8.0 stopped calling nose-style ``setup``/``teardown`` methods, which the tests of
# pydicom 1.x-2.x (and others) rely on; their FAIL_TO_PASS/PASS_TO_PASS lists were made
# with pytest 7.
ERA_CAPS: tuple[tuple[str, str, str, str], ...] = (
    ("pytest", "2024-01-27", "pytest<8", "pytest 8 no longer runs nose-style setup methods"),
    (
        "numpy",
        "2024-06-16",
        "numpy<2",
        "numpy 2.0 removed aliases such as np.Inf and np.float_ and changed the C ABI",
    ),
    (
        "cython",
        "2023-07-17",
        "cython<3",
        "Cython 3.0 changed the language defaults that older extension sources rely on",
    ),
    (
        "docutils",
        "2025-07-29",
        "docutils<0.22",
        "docutils 0.22 removed modules such as docutils.utils.roman that old Sphinx imports",
    ),
    (
        "zarr",
        "2025-01-09",
        "zarr<3",
        "zarr 3 needs numpy.dtypes (numpy 1.25) and changed the storage API old xarray uses",
    ),
)
# `tox --current-env` (sphinx's test command) links the running interpreter into
# .tox/<env>/bin. A conda env's python found that way still has the env's packages; a
# venv's does not (it finds its venv by the pyvenv.cfg beside the path it was started
# from, and falls back to the base installation's prefix). So, for those test commands,
# the base interpreter loads the venv's site-packages (its .pth files, editable installs
# included) from a .pth file of its own.
BASE_SEES_VENV = (
    "d=$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])') && "
    'mkdir -p "$d" && '
    f"{VENV}/bin/python -c 'import sysconfig; "
    'print("import site; site.addsitedir(%r)" % sysconfig.get_paths()["purelib"])\' '
    '>"$d/swescale-venv.pth"'
)
# The caps in force, as a pip constraints file the venv's own pip.conf names: constraints
# reach transitive dependencies too (pvlib's numpy comes from its setup.py, not a list).
CONSTRAINTS_FILE = f"{VENV}/constraints.txt"
VENV_PIP_CONF = f"{VENV}/pip.conf"
# conda-only names of environment.yml files, as their PyPI distribution, or None where
# nothing on PyPI is the same thing (C libraries, compilers, GUI toolkits the wheels of
# their users bundle or the tests skip without).
CONDA_TO_PYPI: dict[str, str | None] = {
    "dask-core": "dask",
    "matplotlib-base": "matplotlib",
    "iris": "scitools-iris",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "pyqt": None,
    "hdf5": None,
    "cdms2": None,
    "c-compiler": None,
    "cxx-compiler": None,
    "fortran-compiler": None,
    "compilers": None,
    "pkg-config": None,
    "gtk4": None,
    "gtk3": None,
    "pygobject": None,
    "wxpython": None,
    "ffmpeg": None,
    "graphviz": None,
    "imagemagick": None,
    "ghostscript": None,
    "inkscape": None,
    "cairo": None,
    "libgdal": None,
    "proj": None,
    "geos": None,
    "eccodes": None,
    "python-eccodes": "eccodes",
}


def venv_environment(
    task: Task, base_tag: str, grading: GradingConfig, repos: RepoSource | None
) -> Recipe:
    """The environment layer of an official recipe on ``base_tag``: a venv with the
    recipe's packages (``repos`` is read for ``requirements.txt``/``environment.yml``
    recipes; ImageError without it, or where the local build cannot work)."""
    plan = env_plan(task, grading.python_by_suite)
    if plan.unsupported:
        raise ImageError(f"{task.id}: no local build: {plan.unsupported}")
    files: list[tuple[str, bytes]] = []
    commands = [f"python3 -m venv {VENV}", BOOTSTRAP]
    notes = list(plan.notes)
    requirements: list[str] = conda_to_pip(plan.conda_packages)
    file_requirements: list[str] = []
    if plan.conda_packages in ("requirements.txt", "environment.yml"):
        if repos is None:
            raise ImageError(f"{task.id}: reading {plan.conda_packages} needs the repository")
        commit = task.environment_setup_commit or task.base_commit
        if plan.conda_packages == "requirements.txt":
            text = requirements_at(repos, task, commit)
            file_requirements = text.split("\n")
            files.append(("/root/requirements.txt", text.encode()))
            commands.append(f"{VENV}/bin/python -m pip install -r /root/requirements.txt")
        else:
            found, skipped = environment_yml_requirements(repos, task, commit)
            requirements += found
            if skipped:
                notes.append(
                    "environment.yml packages with no PyPI equivalent skipped: "
                    + ", ".join(skipped)
                )
    # The conda lists' exact pins name a release conda builds for every Python it ships;
    # on PyPI that release often has no wheel for the interpreter (numpy 1.19.2 and
    # scipy 1.5.2 have none for 3.9) and no longer builds from source, where a later patch
    # release of the same minor has one. The spec's pip pins are pip's own: relaxed only
    # on an interpreter other than the spec's.
    requirements, relaxed = relax_exact_pins(requirements)
    pip_packages = list(plan.pip_packages)
    relaxed_pip: list[str] = []
    if plan.other_python:
        pip_packages, relaxed_pip = relax_exact_pins(pip_packages)
    if relaxed or relaxed_pip:
        notes.append(
            f"exact pins relaxed to the same minor for pip on Python {plan.python}: "
            + ", ".join([*relaxed, *relaxed_pip])
        )
    install_tokens = " ".join([*plan.pre_install, plan.install]).split()
    constraints, capped = era_constraints(
        task, [*requirements, *pip_packages, *file_requirements, *install_tokens]
    )
    if constraints:
        files.append((CONSTRAINTS_FILE, ("\n".join(constraints) + "\n").encode()))
        files.append((VENV_PIP_CONF, f"[global]\nconstraint = {CONSTRAINTS_FILE}\n".encode()))
        # One line: which releases the task predates (the reasons are in ERA_CAPS/docs).
        notes.append("constraints for a task older than these releases: " + ", ".join(constraints))
    if requirements:
        commands.append(
            f"{VENV}/bin/python -m pip install " + " ".join(_quote(r) for r in requirements)
        )
    if pip_packages:
        commands.append(
            f"{VENV}/bin/python -m pip install " + " ".join(_quote(p) for p in pip_packages)
        )
    if "--current-env" in str(official_spec(task).get("test_cmd", "")):
        commands.append(BASE_SEES_VENV)
        notes.append("tox --current-env: the base interpreter loads the venv's packages")
    label = slug(f"{task.repo.replace('/', '__')}-{plan.version}")
    tag = content_tag("swescale/env", label, base_tag, commands, files)
    return Recipe(base_tag, tag, tuple(commands), tuple(files), tuple(notes), plan.suite)


def requirement_name(line: str) -> tuple[str, bool] | None:
    """(normalized name, pinned) of one requirement line, None when it is not one (an
    option, a path, a comment); pinned means it carries a version specifier (pure)."""
    line = line.split("#", 1)[0].strip()
    if len(line) > 1 and line[0] == line[-1] and line[0] in "'\"":
        line = line[1:-1]  # a shell-quoted spec entry
    if not line or line.startswith(("-", ".", "/")) or "://" in line:
        return None
    try:
        req = Requirement(line)
    except InvalidRequirement:
        return None
    return canonicalize_name(req.name), bool(req.specifier) or bool(req.url)


def era_constraints(task: Task, requirements: list[str]) -> tuple[list[str], list[str]]:
    """(constraint lines, reasons): the ``ERA_CAPS`` in force for a task created before the
    release that broke old code, except for names the requirements pin themselves (a pin
    is the spec's own choice and a constraint against it would only fail the install) and
    the repository's own package (pure). Stands in for the official images' install date: they were built before
    those releases."""
    created = str(task.extra.get("created_at") or "")[:10]
    if not created:
        return [], []
    pinned = {parsed[0] for parsed in map(requirement_name, requirements) if parsed and parsed[1]}
    # The repository's own package is what the task installs: never capped (pytest's tasks).
    pinned.add(canonicalize_name(task.repo.rsplit("/", 1)[-1]))
    lines, why = [], []
    for name, date, cap, reason in ERA_CAPS:
        if created < date and canonicalize_name(name) not in pinned:
            lines.append(cap)
            why.append(f"{name} capped as {cap!r} (the task predates it): {reason}")
    return lines, why


def relax_exact_pins(requirements: list[str]) -> tuple[list[str], list[str]]:
    """(requirements, relaxed): ``name==X.Y.Z`` as ``name==X.Y.*`` (pure). For an
    interpreter newer than the spec's, where the pinned release often has no wheel and
    no longer builds from source (numpy 1.19.2 and scipy 1.5.2 on Python 3.9), while a
    later patch release of the same minor has one."""
    out, relaxed = [], []
    for requirement in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*(\d+\.\d+)\.\d+\s*", requirement)
        if match:
            requirement = f"{match[1]}=={match[2]}.*"
            relaxed.append(f"{match[0].strip()} as {requirement}")
        out.append(requirement)
    return out, relaxed


def venv_setup_steps(
    task: Task, grading: GradingConfig, build_requires: Sequence[str] = ()
) -> list[str]:
    """The official set-up steps (the repository's install step, the spec's
    ``pre_install`` and ``install``) for one bash with the venv active; ``build_requires``
    (the project's ``[build-system] requires``) are installed after the install step, so
    the eval script's reinstall can run offline without build isolation."""
    plan = env_plan(task, grading.python_by_suite)
    lines: list[str] = []
    repo_install = recipes().repo_install.get(task.repo)
    if repo_install:
        lines.append(repo_install)
    lines += list(plan.pre_install)
    if plan.install:
        lines.append(plan.install)
    if build_requires:
        lines.append(
            f"{VENV}/bin/python -m pip install " + " ".join(_quote(r) for r in build_requires)
        )
    return lines


def build_requirements(repos: RepoSource, task: Task) -> list[str]:
    """The ``[build-system] requires`` of the repository at the base commit ([] without a
    pyproject.toml or when it cannot be read)."""
    text = _show(repos, task, task.base_commit, "pyproject.toml")
    if not text:
        return []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    requires = data.get("build-system", {}).get("requires", [])
    return [str(r) for r in requires if isinstance(r, str)]


def _quote(requirement: str) -> str:
    return shlex.quote(requirement)


def _show(repos: RepoSource, task: Task, commit: str, path: str) -> str | None:
    try:
        return mirror_git(repos.ensure_commit(task)).show(f"{commit}:{path}")
    except git.GitCommandError:
        return None


def clean_requirements_text(
    text: str, read_include: Callable[[str], str | None] | None = None
) -> str:
    """A requirements file as the official build installs it (``get_requirements_by_commit``
    and ``clean_requirements`` of swebench 4.1.0): ``-r`` includes inlined (read with
    ``read_include(name)``), comments and self-installs (``-e .``, ``.[test]``) dropped,
    yanked packages replaced."""
    rules = recipes()
    kept: list[str] = []
    included: list[str] = []
    for line in text.split("\n"):
        if line.strip().startswith("-r"):
            inner = read_include(line.strip()[2:].strip()) if read_include else None
            for extra in (inner or "").split("\n"):
                if not rules.requirements_line_dropped(extra):
                    included.append(extra)
        elif not rules.requirements_line_dropped(line):
            kept.append(line)
    return rules.clean_requirements("\n".join([*included, *kept]) + "\n")


def requirements_at(repos: RepoSource, task: Task, commit: str) -> str:
    """The repository's requirements file at ``commit``, cleaned as the official build
    cleans it (see ``clean_requirements_text``), read from the local mirror."""
    for path in recipes().reqs_paths.get(task.repo, []):
        text = _show(repos, task, commit, path)
        if text is None:
            continue
        folder = path.rsplit("/", 1)[0] if "/" in path else ""

        def include(name: str, folder: str = folder) -> str | None:
            return _show(repos, task, commit, f"{folder}/{name}" if folder else name)

        return clean_requirements_text(text, include)
    raise ImageError(f"{task.id}: no requirements file of {task.repo} found at {commit}")


def environment_yml_to_pip(text: str) -> tuple[list[str], list[str]]:
    """(pip requirements, skipped conda names) of an environment.yml: conda-only names
    mapped to their PyPI distribution (``dask-core`` -> ``dask``) or skipped when PyPI
    has no equivalent (``hdf5``, compilers, ``pyqt``); ``python`` and ``pip`` themselves
    dropped, every other name (``python-dateutil`` included) kept; the ``pip:`` list as is."""
    data = yaml.safe_load(text) or {}
    out: list[str] = []
    skipped: list[str] = []
    for dep in data.get("dependencies", []) or []:
        if isinstance(dep, dict):
            out += [str(p) for p in dep.get("pip", []) or []]
            continue
        if not isinstance(dep, str):
            continue
        spec = dep.replace(" ", "")
        name = re.match(r"[A-Za-z0-9_.\-]+", spec)
        if not name:
            continue
        base = name.group(0)
        key = base.lower()
        if key in ("python", "pip"):
            continue
        if key in CONDA_TO_PYPI:
            mapped = CONDA_TO_PYPI[key]
            if mapped is None:
                skipped.append(base)
                continue
            spec = mapped + spec[len(base) :]
        out += conda_to_pip(spec)
    return out, skipped


def environment_yml_requirements(
    repos: RepoSource, task: Task, commit: str
) -> tuple[list[str], list[str]]:
    """The repository's environment.yml at ``commit`` as pip requirements (see
    ``environment_yml_to_pip``), cleaned of yanked packages as the official build does."""
    for path in recipes().env_yml_paths.get(task.repo, []):
        text = _show(repos, task, commit, path)
        if text is None:
            continue
        return environment_yml_to_pip(recipes().module.clean_environment_yml(text))
    raise ImageError(f"{task.id}: no environment.yml of {task.repo} found at {commit}")
