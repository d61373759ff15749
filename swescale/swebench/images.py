"""Environment and instance images for tasks.

Local build (works offline):
- environment image per (repo, version): base image + a venv at /opt/venv holding the
  spec's dependencies (mini tasks: just pytest, so the whole mini benchmark shares one);
- instance image: environment + the repository at /repo at the base commit + the spec's
  pre-install and install steps (mini tasks: ``pip install -e .``).

Tags carry a hash of their recipe (``content_tag``): an unchanged recipe is never rebuilt,
so grading many candidates of a task builds nothing after the first.

Official images (``GradingConfig.use_official_images``): the prebuilt per-instance image is
pulled and used as is (repository at /testbed, conda env "testbed"); when it cannot be
pulled, the error says so and, with ``fallback_local_build``, the local build is used.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import git
import yaml

from swescale.sandbox import (
    ImagesConfig,
    SandboxConfig,
    build_layer,
    content_tag,
    ensure_base_image,
)
from swescale.sandbox.images import image_exists
from swescale.swebench.config import GradingConfig
from swescale.swebench.repos import RepoSource
from swescale.swebench.specs import SpecError, conda_to_pip, env_plan, is_mini
from swescale.types import Task

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

VENV = "/opt/venv"
CONDA_ENV = {
    "PATH": "/opt/miniconda3/envs/testbed/bin:/opt/miniconda3/bin:/usr/local/sbin:/usr/local/bin:"
    "/usr/sbin:/usr/bin:/sbin:/bin",
    "CONDA_DEFAULT_ENV": "testbed",
}
VENV_ENV = {
    "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "VIRTUAL_ENV": VENV,
}
# Old pins in the specs break on newer setuptools (pkg_resources, setup.py commands).
BOOTSTRAP = f"{VENV}/bin/python -m pip install --upgrade pip wheel 'setuptools<70'"
# Installs the repository only when it is a package; works without network for plain
# setuptools projects because the venv already has setuptools.
MINI_INSTALL = (
    "if [ -f setup.py ] || [ -f pyproject.toml ]; then "
    f"{VENV}/bin/python -m pip install --no-build-isolation -e .; fi"
)


class ImageError(RuntimeError):
    """An image that cannot be provided; the message names the task and why."""


class OfficialImageUnavailable(ImageError):
    """The official prebuilt image could not be pulled (no registry, no such image)."""


@dataclass
class InstanceImage:
    """An image to grade (or solve) a task in, and where its repository lives."""

    tag: str
    workdir: str = "/repo"
    official: bool = False
    notes: list[str] = field(default_factory=list)
    # Environment a sandbox needs on top of SandboxConfig's defaults (the venv or the
    # conda env on PATH): sandboxes set their own PATH, so the image's is not enough.
    env: dict[str, str] = field(default_factory=lambda: dict(VENV_ENV))

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
    requirements: list[str] = conda_to_pip(plan.conda_packages)
    if plan.conda_packages in ("requirements.txt", "environment.yml"):
        if repos is None:
            raise ImageError(f"{task.id}: reading {plan.conda_packages} needs the repository")
        commit = task.environment_setup_commit or task.base_commit
        if plan.conda_packages == "requirements.txt":
            text = requirements_at(repos, task, commit)
            files.append(("/root/swescale-requirements.txt", text.encode()))
            commands.append(f"{VENV}/bin/python -m pip install -r /root/swescale-requirements.txt")
        else:
            requirements += environment_yml_requirements(repos, task, commit)
    if requirements:
        commands.append(
            f"{VENV}/bin/python -m pip install " + " ".join(_quote(r) for r in requirements)
        )
    if plan.pip_packages:
        commands.append(
            f"{VENV}/bin/python -m pip install " + " ".join(_quote(p) for p in plan.pip_packages)
        )
    label = _slug(f"{task.repo.replace('/', '__')}-{plan.version}")
    tag = content_tag("swescale/env", label, base_tag, commands, files)
    return Recipe(base_tag, tag, tuple(commands), tuple(files), plan.notes, plan.suite)


def instance_commands(task: Task, grading: GradingConfig) -> tuple[str, ...]:
    """Setup run in /repo on top of the environment."""
    if is_mini(task):
        return (MINI_INSTALL,)
    plan = env_plan(task, grading.python_by_suite)
    steps = [*plan.pre_install]
    if plan.install:
        steps.append(plan.install)
    # As the official images do: changes the setup makes to tracked files are committed,
    # so a candidate's diff holds only its own changes (HEAD then is one commit past the
    # base commit; grading resets test files to the base commit itself).
    steps.append("git add -u && (git diff --cached --quiet || git commit -q -m 'swescale setup')")
    return tuple(f"cd /repo && {step}" for step in steps)


def _quote(requirement: str) -> str:
    return "'" + requirement.replace("'", "'\\''") + "'"


def _show(repos: RepoSource, task: Task, commit: str, path: str) -> str | None:
    try:
        return git.Repo(repos.ensure_commit(task)).git.show(f"{commit}:{path}")
    except git.GitCommandError:
        return None


def requirements_at(repos: RepoSource, task: Task, commit: str) -> str:
    """The repository's requirements file at ``commit`` (one level of ``-r`` includes
    inlined, editable self-installs dropped), read from the local mirror."""
    from swebench.harness.constants import MAP_REPO_TO_REQS_PATHS

    for path in MAP_REPO_TO_REQS_PATHS.get(task.repo, []):
        text = _show(repos, task, commit, path)
        if text is None:
            continue
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        lines = []
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("-r"):
                included = stripped[2:].strip()
                inner = _show(repos, task, commit, f"{folder}/{included}" if folder else included)
                lines += (inner or "").splitlines()
            elif not stripped.startswith(("-e .", "#", ".[test")):
                lines.append(line)
        return "\n".join(lines) + "\n"
    raise ImageError(f"{task.id}: no requirements file of {task.repo} found at {commit}")


def environment_yml_requirements(repos: RepoSource, task: Task, commit: str) -> list[str]:
    """The conda and pip dependencies of the repository's environment.yml as pip
    requirements (conda-only packages are kept by name; pip may lack a few)."""
    from swebench.harness.constants import MAP_REPO_TO_ENV_YML_PATHS

    for path in MAP_REPO_TO_ENV_YML_PATHS.get(task.repo, []):
        text = _show(repos, task, commit, path)
        if text is None:
            continue
        data = yaml.safe_load(text) or {}
        out: list[str] = []
        for dep in data.get("dependencies", []):
            if isinstance(dep, dict):
                out += [str(p) for p in dep.get("pip", [])]
            elif isinstance(dep, str) and not re.match(r"(python|pip)\b", dep):
                out += conda_to_pip(dep.replace(" ", ""))
        return out
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
            workdir="/repo",
            network=network,
            pip_config=True,
            timeout=timeout,
            log_path=images.cache_dir
            / "logs"
            / f"{recipe.tag.replace('/', '_').replace(':', '_')}.log",
        )


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
) -> str:
    """The environment image tag for the task's (repo, version), built if missing."""
    suite = images.suite if is_mini(task) else env_plan(task, grading.python_by_suite).suite
    base = base_image(client, images, suite)
    recipe = env_recipe(task, base, grading, repos)
    return _build(client, recipe, images, timeout=grading.build_timeout)


def instance_image_tag(task: Task, env_tag: str, grading: GradingConfig) -> str:
    commands = instance_commands(task, grading)
    return content_tag(
        "swescale/instance", _slug(task.id, 80), env_tag, task.repo, task.base_commit, commands
    )


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
                pull_official_image(client, task, grading), "/testbed", official=True
            )
        except OfficialImageUnavailable as exc:
            if not grading.fallback_local_build:
                raise
            log.warning("%s; building locally instead", exc)
            notes.append(f"official image unavailable, built locally: {exc}")
    # The repository first: a missing commit is a quick, clear error, before any build.
    repos.ensure_commit(task)
    try:
        env_tag = env_image(client, task, images=images, grading=grading, repos=repos)
    except SpecError as exc:
        raise ImageError(str(exc)) from exc
    tag = instance_image_tag(task, env_tag, grading)
    if not is_mini(task):
        notes += list(env_plan(task, grading.python_by_suite).notes)
    with _lock_for(tag):
        if image_exists(client, tag):
            return InstanceImage(tag, notes=notes)
        recipe = Recipe(env_tag, tag, instance_commands(task, grading))
        archive = repos.checkout_tar(task, root="repo")
        _build(client, recipe, images, archives=[("/", archive)], timeout=grading.build_timeout)
    return InstanceImage(tag, notes=notes)
