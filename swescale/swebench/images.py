"""Environment and instance images for tasks.

Local build (works offline once built; building needs the package index):
- environment image per (repo, version): base image + a venv at /opt/venv holding the
  spec's dependencies (mini tasks: just pytest, so the whole mini benchmark shares one);
- instance image: environment + the repository at /testbed at the base commit (with the
  tags not newer than it) + one setup script holding the spec's pre-install and install
  steps, run by one bash as the official ``setup_repo.sh`` is, so a variable set in one
  step is seen by the next.

The layout follows the official images (repository at /testbed, setup changes committed
on top of the base commit), so spec commands and eval scripts that name /testbed work.

Tags carry a hash of their recipe (``content_tag``): an unchanged recipe is never rebuilt,
so grading many candidates of a task builds nothing after the first.

Official images (``GradingConfig.use_official_images``): the prebuilt per-instance image is
pulled and used as is (repository at /testbed, conda env "testbed"); when it cannot be
pulled, the error says so and, with ``fallback_local_build``, the local build is used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shlex
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import git
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from swescale.sandbox import (
    ImagesConfig,
    SandboxConfig,
    build_layer,
    content_tag,
    ensure_base_image,
)
from swescale.sandbox.images import image_exists
from swescale.swebench.config import GradingConfig
from swescale.swebench.recipes import recipes
from swescale.swebench.repos import RepoSource, mirror_git
from swescale.swebench.specs import SpecError, conda_to_pip, env_plan, is_mini, official_spec
from swescale.types import Task

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

VENV = "/opt/venv"
# Where the repository lives in every instance image, as in the official images.
REPO_DIR = "/testbed"
CONDA_ENV = {
    "PATH": "/opt/miniconda3/envs/testbed/bin:/opt/miniconda3/bin:/usr/local/sbin:/usr/local/bin:"
    "/usr/sbin:/usr/bin:/sbin:/bin",
    "CONDA_DEFAULT_ENV": "testbed",
}
VENV_ENV = {
    "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "VIRTUAL_ENV": VENV,
}
# pip is pinned to a release of the era the official images were built in: pip 25.3
# removed `--no-use-pep517` and `setup.py develop`, which every scikit-learn install
# command uses, and pip 24.1 stopped accepting the non-PEP 440 versions old pins carry.
PIP_PIN = "pip==24.0"
# Old pins in the specs break on newer setuptools (pkg_resources, setup.py commands).
BOOTSTRAP = f"{VENV}/bin/python -m pip install '{PIP_PIN}' wheel 'setuptools<70'"
# Installs the repository only when it is a package; works without network for plain
# setuptools projects because the venv already has setuptools.
MINI_INSTALL = (
    "if [ -f setup.py ] || [ -f pyproject.toml ]; then "
    f"{VENV}/bin/python -m pip install --no-build-isolation -e .; fi"
)
SETUP_SCRIPT = "/root/setup_repo.sh"
# As the official images do: the setup's changes to tracked files are committed on top
# of the base commit, so a candidate's diff holds only its own changes.
COMMIT_SETUP = "git add -u && git commit --allow-empty -q -m 'SWE-bench setup'"
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


class ImageError(RuntimeError):
    """An image that cannot be provided; the message names the task and why."""


class OfficialImageUnavailable(ImageError):
    """The official prebuilt image could not be pulled (no registry, no such image)."""


@dataclass
class InstanceImage:
    """An image to grade (or solve) a task in, and where its repository lives."""

    tag: str
    workdir: str = REPO_DIR
    official: bool = False
    notes: list[str] = field(default_factory=list)
    # Environment a sandbox needs on top of SandboxConfig's defaults (the venv or the
    # conda env on PATH): sandboxes set their own PATH, so the image's is not enough.
    env: dict[str, str] = field(default_factory=lambda: dict(VENV_ENV))
    # The interpreter the environment runs and the one its spec asks for (None for
    # mini tasks and official images, which run the spec's own).
    python: str | None = None
    python_wanted: str | None = None

    def sandbox_config(self, base: SandboxConfig | None = None, **changes: object) -> SandboxConfig:
        """A SandboxConfig for this image: its workdir and environment over ``base``."""
        cfg = base or SandboxConfig()
        return cfg.model_copy(
            update={"workdir": self.workdir, "env": {**cfg.env, **self.env}, **changes}
        )


@dataclass(frozen=True)
class Recipe:
    """One image layer: what it is built from and how (hashed into its tag)."""

    base: str
    tag: str
    commands: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...] = ()
    notes: tuple[str, ...] = ()
    suite: str = "bookworm"


_build_locks: dict[str, threading.RLock] = {}
_build_locks_guard = threading.Lock()


def _lock_for(tag: str) -> threading.RLock:
    with _build_locks_guard:
        return _build_locks.setdefault(tag, threading.RLock())


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.")[:limit] or "x"


# -- recipes (pure given the repository contents) --------------------------------------


def env_recipe(
    task: Task, base_tag: str, grading: GradingConfig, repos: RepoSource | None
) -> Recipe:
    """The environment layer for ``task`` on ``base_tag``."""
    if is_mini(task):
        packages = ["pytest", "wheel", *task.extra.get("pip_packages", [])]
        commands = (
            f"python3 -m venv {VENV}",
            f"{VENV}/bin/python -m pip install " + " ".join(packages),
        )
        return Recipe(base_tag, content_tag("swescale/env", "mini", base_tag, commands), commands)
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
    label = _slug(f"{task.repo.replace('/', '__')}-{plan.version}")
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


def setup_script(task: Task, grading: GradingConfig, build_requires: list[str] = ()) -> str:
    """The instance's ``setup_repo.sh``: run by one bash in /testbed with the venv active
    and ``set -euxo pipefail``, as the official one is. ``build_requires`` (the project's
    ``[build-system] requires``) are installed after the install step, so the eval
    script's reinstall can run offline without build isolation."""
    lines = ["#!/bin/bash", "set -euxo pipefail", f"cd {REPO_DIR}", f"source {VENV}/bin/activate"]
    if is_mini(task):
        lines.append(MINI_INSTALL)
    else:
        plan = env_plan(task, grading.python_by_suite)
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
    lines += [f"cd {REPO_DIR}", COMMIT_SETUP]
    return "\n".join(lines) + "\n"


def build_requirements(repos: RepoSource, task: Task) -> list[str]:
    """The ``[build-system] requires`` of the repository at the base commit ([] without a
    pyproject.toml or when it cannot be read)."""
    if is_mini(task):
        return []
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


# -- building --------------------------------------------------------------------------


def _build(
    client: docker.DockerClient,
    recipe: Recipe,
    images: ImagesConfig,
    *,
    archives=None,
    network: bool = True,
    timeout: float = 3600.0,
) -> str:
    with _lock_for(recipe.tag):
        if image_exists(client, recipe.tag):
            return recipe.tag
        log.info("building %s", recipe.tag)
        return build_layer(
            client,
            recipe.base,
            recipe.tag,
            list(recipe.commands),
            archives=archives,
            files=dict(recipe.files),
            env=VENV_ENV,
            workdir=REPO_DIR,
            network=network,
            pip_config=True,
            timeout=timeout,
            log_path=build_log_path(images, recipe.tag),
        )


def build_log_path(images: ImagesConfig, tag: str):
    """Where the build log of an image goes (named in every build error)."""
    return images.cache_dir / "logs" / f"{tag.replace('/', '_').replace(':', '_')}.log"


def base_image(client: docker.DockerClient, images: ImagesConfig, suite: str) -> str:
    cfg = images if images.suite == suite else images.model_copy(update={"suite": suite})
    with _lock_for(f"base:{suite}"):
        return ensure_base_image(client, cfg)


def env_image(
    client: docker.DockerClient,
    task: Task,
    *,
    images: ImagesConfig,
    grading: GradingConfig,
    repos: RepoSource | None = None,
) -> Recipe:
    """The environment layer of the task's (repo, version), built if missing (its recipe:
    the tag and the notes on how it differs from the official one)."""
    suite = images.suite if is_mini(task) else env_plan(task, grading.python_by_suite).suite
    base = base_image(client, images, suite)
    recipe = env_recipe(task, base, grading, repos)
    _build(client, recipe, images, timeout=grading.build_timeout)
    return recipe


def instance_recipe(task: Task, env_tag: str, grading: GradingConfig, repos: RepoSource) -> Recipe:
    """The instance layer: the setup script as a file, run once by bash."""
    script = setup_script(task, grading, build_requirements(repos, task))
    commands = (f"bash {SETUP_SCRIPT}",)
    files = ((SETUP_SCRIPT, script.encode()),)
    tag = content_tag(
        "swescale/instance",
        _slug(task.id, 80),
        env_tag,
        task.repo,
        task.base_commit,
        REPO_DIR,
        commands,
        files,
    )
    return Recipe(env_tag, tag, commands, files)


def official_image_name(task: Task, grading: GradingConfig) -> str:
    """The official prebuilt image: the row's ``image`` column, else the name pattern."""
    if isinstance(task.extra.get("image"), str) and task.extra["image"]:
        return task.extra["image"]
    key = task.id.lower().replace("__", "_1776_")
    return grading.official_image.format(arch=grading.arch, instance_key=key, instance_id=task.id)


def pull_official_image(client: docker.DockerClient, task: Task, grading: GradingConfig) -> str:
    import docker.errors

    name = official_image_name(task, grading)
    if image_exists(client, name):
        return name
    try:
        client.images.pull(name)
    except docker.errors.DockerException as exc:
        raise OfficialImageUnavailable(
            f"{task.id}: cannot pull the official image {name} ({exc.__class__.__name__}: "
            f"{str(exc)[:300]}). Is a registry reachable? Without one, set "
            "grading.use_official_images=false (or keep fallback_local_build=true) to build locally."
        ) from exc
    return name


def instance_image(
    client: docker.DockerClient,
    task: Task,
    *,
    images: ImagesConfig,
    grading: GradingConfig,
    repos: RepoSource,
) -> InstanceImage:
    """The image a task is graded in: official when configured and pullable, else built
    locally (environment first, then the instance layer; each only when missing)."""
    notes: list[str] = []
    # Mini tasks have no official image unless their row names one.
    if grading.use_official_images and (not is_mini(task) or task.extra.get("image")):
        try:
            return InstanceImage(
                pull_official_image(client, task, grading),
                REPO_DIR,
                official=True,
                env=dict(CONDA_ENV),
            )
        except OfficialImageUnavailable as exc:
            if not grading.fallback_local_build:
                raise
            log.warning("%s; building locally instead", exc)
            notes.append(f"official image unavailable, built locally: {exc}")
    # The repository first: a missing commit is a quick, clear error, before any build.
    repos.ensure_commit(task)
    try:
        env = env_image(client, task, images=images, grading=grading, repos=repos)
    except SpecError as exc:
        raise ImageError(str(exc)) from exc
    recipe = instance_recipe(task, env.tag, grading, repos)
    notes += list(env.notes)
    python = wanted = None
    if not is_mini(task):
        plan = env_plan(task, grading.python_by_suite)
        python, wanted = plan.python, plan.python_wanted
    image = InstanceImage(recipe.tag, notes=notes, python=python, python_wanted=wanted)
    # Notes on how the checkout differs from a full one (an incomplete mirror) outlive
    # the build in a file beside the build logs.
    notes_file = build_log_path(images, recipe.tag).with_suffix(".notes.json")
    with _lock_for(recipe.tag):
        if not image_exists(client, recipe.tag):
            archive = repos.checkout_tar(task, root=REPO_DIR.lstrip("/"))
            _build(client, recipe, images, archives=[("/", archive)], timeout=grading.build_timeout)
            notes_file.parent.mkdir(parents=True, exist_ok=True)
            notes_file.write_text(json.dumps(repos.notes.get(task.id, [])))
    with contextlib.suppress(OSError, ValueError):
        image.notes += list(json.loads(notes_file.read_text()))
    return image
