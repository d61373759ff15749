"""Environment and instance images for tasks.

Local build (works offline once built; building needs the package index), from what the
task's spec provider (``swescale.swebench.specs``) answers:
- environment image: base image (the provider's Debian suite) + the provider's
  environment layer (SWE-bench: a venv at /opt/venv per (repo, version) holding the
  spec's dependencies; mini tasks: just pytest, so the whole mini benchmark shares one);
- instance image: environment + the repository at /testbed at the base commit (with the
  tags not newer than it) + one setup script holding the provider's set-up steps
  (pre-install and install), run by one bash as the official ``setup_repo.sh`` is, so a
  variable set in one step is seen by the next.

The layout follows the official images (repository at /testbed, setup changes committed
on top of the base commit), so spec commands and eval scripts that name /testbed work.

Tags carry a hash of their recipe (``content_tag``): an unchanged recipe is never rebuilt,
so grading many candidates of a task builds nothing after the first.

Official images (``GradingConfig.use_official_images``): the prebuilt per-instance image is
pulled and used as is (repository at /testbed, conda env "testbed") for tasks whose
provider has one; when it cannot be pulled, the error says so and, with
``fallback_local_build``, the local build is used.

A registry of one's own (``ImagesConfig.registry``, ``--registry HOST:PORT``): official
images are looked up there as ``HOST:PORT/<official name>``, for every task (mini tasks
too, under the same naming scheme), as ``swescale images push --official-names``
publishes them (``swescale.swebench.publish``); an image missing there is an error that
says how to publish it (no fallback: the registry is where this machine's images are
meant to come from). Local builds first look for ``HOST:PORT/<content tag>`` (what
``swescale images push`` without ``--official-names`` publishes) and build only what is
not there. Pulls go through ``swescale.sandbox.registry`` (retries, a rate limit,
progress, the cap on pulled images).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swescale.sandbox import (
    ImagesConfig,
    SandboxConfig,
    build_layer,
    content_tag,
    ensure_base_image,
)
from swescale.sandbox.images import base_image_tag, image_exists, image_ready
from swescale.sandbox.registry import (
    ImageMissing,
    PulledImages,
    RegistryError,
    pull,
    qualified,
)
from swescale.swebench.config import GradingConfig
from swescale.swebench.layers import (
    CONDA_ENV,
    REPO_DIR,
    VENV,
    VENV_ENV,
    ImageError,
    Recipe,
    slug,
)
from swescale.swebench.repos import RepoSource
from swescale.swebench.specs import SpecError, provider_for
from swescale.types import Task

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

__all__ = [
    "CONDA_ENV",
    "REPO_DIR",
    "VENV",
    "VENV_ENV",
    "ImageError",
    "InstanceImage",
    "OfficialImageUnavailable",
    "Recipe",
    "build_requirements",
    "env_image",
    "env_recipe",
    "instance_image",
    "instance_recipe",
    "official_image_name",
    "planned_recipes",
    "publish_command",
    "setup_script",
]

SETUP_SCRIPT = "/root/setup_repo.sh"
# As the official images do: the setup's changes to tracked files are committed on top
# of the base commit, so a candidate's diff holds only its own changes.
COMMIT_SETUP = "git add -u && git commit --allow-empty -q -m 'SWE-bench setup'"


class OfficialImageUnavailable(ImageError):
    """The official prebuilt image could not be pulled (no registry, no such image)."""


@dataclass
class InstanceImage:
    """An image to grade (or solve) a task in, and where its repository lives."""

    tag: str
    workdir: str = REPO_DIR
    official: bool = False
    # Pulled from a registry and governed there (``PulledImages``): users hold it while
    # they start containers from it, so the cap never evicts it under them.
    pulled: bool = False
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


_build_locks: dict[str, threading.RLock] = {}
_build_locks_guard = threading.Lock()


def _lock_for(tag: str) -> threading.RLock:
    with _build_locks_guard:
        return _build_locks.setdefault(tag, threading.RLock())


# -- recipes (pure given the repository contents) --------------------------------------


def env_recipe(
    task: Task, base_tag: str, grading: GradingConfig, repos: RepoSource | None
) -> Recipe:
    """The environment layer for ``task`` on ``base_tag`` (the provider's)."""
    return provider_for(task).environment(task, base_tag, grading, repos)


def setup_script(task: Task, grading: GradingConfig, build_requires: Sequence[str] = ()) -> str:
    """The instance's ``setup_repo.sh``: the provider's set-up steps, run by one bash in
    the repository with the venv active and ``set -euxo pipefail``, as the official one
    is; the changes they make are committed. ``build_requires`` (the project's
    ``[build-system] requires``) are installed after the install step, so the eval
    script's reinstall can run offline without build isolation."""
    specs = provider_for(task)
    workdir = specs.workdir
    lines = ["#!/bin/bash", "set -euxo pipefail", f"cd {workdir}", f"source {VENV}/bin/activate"]
    lines += specs.setup_steps(task, grading, build_requires)
    lines += [f"cd {workdir}", COMMIT_SETUP]
    return "\n".join(lines) + "\n"


def build_requirements(repos: RepoSource, task: Task) -> list[str]:
    """What the provider installs after the set-up steps for the offline reinstall (the
    ``[build-system] requires`` of a SWE-bench repository at the base commit)."""
    return provider_for(task).build_requirements(task, repos)


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
        if image_ready(client, recipe.tag):
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
    suite = provider_for(task).interpreter(task, grading, images.suite).suite
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
        slug(task.id, 80),
        env_tag,
        task.repo,
        task.base_commit,
        provider_for(task).workdir,
        commands,
        files,
    )
    return Recipe(env_tag, tag, commands, files)


def official_image_name(task: Task, grading: GradingConfig, registry: str = "") -> str:
    """The official prebuilt image: the row's ``image`` column, else the name pattern;
    in ``registry`` when one is given (``host:port/<name>``)."""
    if isinstance(task.extra.get("image"), str) and task.extra["image"]:
        name = task.extra["image"]
    else:
        key = task.id.lower().replace("__", "_1776_")
        name = grading.official_image.format(
            arch=grading.arch, instance_key=key, instance_id=task.id
        )
    return qualified(registry, name)


def publish_command(registry: str, task_ids: Sequence[str], dataset: str = "DATASET") -> str:
    """The command that publishes these tasks' images under their official names."""
    ids = " ".join(f"-i {i}" for i in task_ids)
    return f"swescale images push --registry {registry} --official-names --dataset {dataset} {ids}"


def pull_official_image(
    client: docker.DockerClient, task: Task, grading: GradingConfig, images: ImagesConfig
) -> str:
    """The task's official image present on the engine (pulled when missing, through
    ``PulledImages``: retries, rate limit, the cap); OfficialImageUnavailable says why
    not and, for a registry of one's own, how to publish it."""
    registry = images.registry
    name = official_image_name(task, grading, registry)
    try:
        return PulledImages.for_config(client, images).ensure(name)
    except ImageMissing as exc:
        if registry:
            raise OfficialImageUnavailable(
                f"{task.id}: cannot pull the official image {name}: the registry {registry} "
                f"does not have it. Publish it from a machine that has built it: "
                f"`{publish_command(registry, [task.id])}`"
            ) from exc
        raise OfficialImageUnavailable(
            f"{task.id}: cannot pull the official image {name} ({exc}). Without it, set "
            "grading.use_official_images=false (or keep fallback_local_build=true) to build "
            "locally, or publish it to a registry of your own (swescale images push)."
        ) from exc
    except RegistryError as exc:
        where = (
            f"Is the registry {registry} up (http://{registry}/v2/)?"
            if registry
            else (
                "Is a registry reachable? Without one, set grading.use_official_images=false "
                "(or keep fallback_local_build=true) to build locally."
            )
        )
        raise OfficialImageUnavailable(
            f"{task.id}: cannot pull the official image {name} ({exc}). {where}"
        ) from exc


def planned_recipes(
    task: Task, images: ImagesConfig, grading: GradingConfig, repos: RepoSource
) -> tuple[str, Recipe, Recipe]:
    """(base tag, environment recipe, instance recipe) of the task's local build, known
    before anything is built (the repository must hold the base commit)."""
    suite = provider_for(task).interpreter(task, grading, images.suite).suite
    suite_cfg = images if images.suite == suite else images.model_copy(update={"suite": suite})
    base = base_image_tag(suite_cfg)
    env = env_recipe(task, base, grading, repos)
    return base, env, instance_recipe(task, env.tag, grading, repos)


def pull_built(client: docker.DockerClient, images: ImagesConfig, tag: str) -> bool:
    """``<registry>/<tag>`` pulled and tagged ``tag`` (what ``swescale images push``
    publishes without ``--official-names``); False when the registry lacks it or does
    not answer (the caller builds)."""
    remote = qualified(images.registry, tag)
    try:
        pull(client, remote, retries=images.pull_retries, rate=images.pull_rate)
    except ImageMissing:
        return False
    except RegistryError as exc:
        log.warning("%s; building it instead", exc)
        return False
    repository, _, version = tag.rpartition(":")
    client.images.get(remote).tag(repository, version)
    with contextlib.suppress(Exception):  # the local tag keeps the image
        client.images.remove(remote, noprune=True)
    return True


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
    try:
        specs = provider_for(task)
    except SpecError as exc:
        raise ImageError(str(exc)) from exc
    if grading.use_official_images and (images.registry or specs.has_official_image(task)):
        try:
            return InstanceImage(
                pull_official_image(client, task, grading, images),
                REPO_DIR,
                official=True,
                pulled=True,
                env=dict(CONDA_ENV),
            )
        except OfficialImageUnavailable as exc:
            if images.registry or not grading.fallback_local_build:
                raise
            log.warning("%s; building locally instead", exc)
            notes.append(f"official image unavailable, built locally: {exc}")
    # The repository first: a missing commit is a quick, clear error, before any build.
    repos.ensure_commit(task)
    try:
        _, env, recipe = planned_recipes(task, images, grading, repos)
        with _lock_for(recipe.tag):
            fetched = (
                images.registry
                and not image_exists(client, recipe.tag)
                and pull_built(client, images, recipe.tag)
            )
        if not fetched:
            env = env_image(client, task, images=images, grading=grading, repos=repos)
    except SpecError as exc:
        raise ImageError(str(exc)) from exc
    notes += list(env.notes)
    interpreter = specs.interpreter(task, grading, images.suite)
    image = InstanceImage(
        recipe.tag,
        specs.workdir,
        notes=notes,
        python=interpreter.python,
        python_wanted=interpreter.wanted,
    )
    # Notes on how the checkout differs from a full one (an incomplete mirror) outlive
    # the build in a file beside the build logs.
    notes_file = build_log_path(images, recipe.tag).with_suffix(".notes.json")
    with _lock_for(recipe.tag):
        if not image_ready(client, recipe.tag):
            archive = repos.checkout_tar(task, root=specs.workdir.lstrip("/"))
            _build(client, recipe, images, archives=[("/", archive)], timeout=grading.build_timeout)
            notes_file.parent.mkdir(parents=True, exist_ok=True)
            notes_file.write_text(json.dumps(repos.notes.get(task.id, [])))
    with contextlib.suppress(OSError, ValueError):
        image.notes += list(json.loads(notes_file.read_text()))
    return image
