"""Publishing locally built instance images to a registry (``swescale images push``).

Two ways, for two kinds of consumer:

- **content tags** (``official_names=False``): the instance image and the environment
  and base images it is built on, each as ``<registry>/<its tag>``. A machine with the
  same recipe computes the same tags before building anything (``planned_recipes``), so
  a local build or a Ray node pulls them instead of building (``images.registry``,
  ``scaling.ray.registry``).
- **official names and layout** (``official_names=True``): one image per task as
  ``<registry>/<official name>`` (``swebench/sweb.eval.x86_64.<key>:latest``, the row's
  ``image`` column when it has one), graded with ``use_official_images`` exactly as an
  official image is: the repository at /testbed and the official eval script run
  unchanged.

The official layout on a local build. Official images keep the task's environment in a
conda env ``testbed``; their eval script begins ``source /opt/miniconda3/bin/activate``
and ``conda activate testbed``, reruns the install step (``pip install -e .`` and the
like), then runs the tests. A local build has the same repository at /testbed and the
environment as a venv at /opt/venv. The layer ``official_layout_recipe`` adds what the
unchanged script needs and nothing else:

- ``/opt/miniconda3/envs/testbed``, a link to the venv (the official ``PATH``,
  ``/opt/miniconda3/envs/testbed/bin`` first, finds its interpreter and tools);
- ``/opt/miniconda3/bin/activate``, which defines ``conda`` as conda's own activate
  script does, as a shell function; ``conda activate ENV`` activates
  ``/opt/miniconda3/envs/ENV`` (the venv);
- ``/opt/venv/pip.conf``, the environment's own pip settings: installs go offline
  without build isolation or dependency resolution. The venv holds every dependency and
  build requirement (the local build installs them for exactly this rerun), and a
  grading container has no package index: the official install line then does what the
  local eval script's adapted one does (``--no-index --no-build-isolation --no-deps``),
  so both paths grade the same. The cost: a candidate that adds a dependency cannot
  install it there (nor in a local build; the official images download it).

Why a layer rather than conda itself: a conda env would be a second, different
environment from the one the task was validated in (and Miniconda cannot be fetched
offline); the venv is the environment, and the layer only gives it the official names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swescale.sandbox import ImagesConfig, build_layer, content_tag
from swescale.sandbox.images import image_exists
from swescale.sandbox.registry import PullProgress, push, qualified
from swescale.swebench.config import GradingConfig
from swescale.swebench.images import (
    CONDA_ENV,
    REPO_DIR,
    VENV,
    InstanceImage,
    Recipe,
    build_log_path,
    official_image_name,
    planned_recipes,
)
from swescale.swebench.layers import slug
from swescale.swebench.repos import RepoSource
from swescale.types import Task

if TYPE_CHECKING:
    import docker

CONDA_PREFIX = "/opt/miniconda3"
ACTIVATE = f"{CONDA_PREFIX}/bin/activate"
ENV_LINK = f"{CONDA_PREFIX}/envs/testbed"

# Sourced by the official eval script (``set -u`` is on: every variable has a default).
ACTIVATE_SCRIPT = f"""\
# The official eval script's `source {ACTIVATE}` then `conda activate testbed`, for an
# image whose environment is the venv at {VENV} ({ENV_LINK} links to it).
conda() {{
  case "${{1:-}}" in
    activate)
      source "{CONDA_PREFIX}/envs/${{2:-testbed}}/bin/activate" || return 1
      export CONDA_DEFAULT_ENV="${{2:-testbed}}" CONDA_PREFIX="{CONDA_PREFIX}/envs/${{2:-testbed}}"
      ;;
    deactivate)
      if declare -F deactivate >/dev/null; then deactivate; fi
      unset CONDA_DEFAULT_ENV CONDA_PREFIX
      ;;
    *)
      echo "conda: this image has a venv, not conda: only 'conda activate ENV' and 'conda deactivate'" >&2
      return 1
      ;;
  esac
}}
"""

# pip reads a "no-..." switch's configured value inverted: "no-build-isolation = false"
# is what turns build isolation off (pip's documentation, "Boolean options").
PIP_CONF = """\
# Installs in this environment run offline: it holds every dependency and build
# requirement, and grading containers reach no package index.
[install]
no-index = true
no-deps = true
no-build-isolation = false
"""


def official_layout_recipe(task: Task, instance_tag: str) -> Recipe:
    """The layer that gives a local instance image the official layout (see the module's
    docstring): its commands, files and content tag."""
    commands = (f"mkdir -p {CONDA_PREFIX}/bin {CONDA_PREFIX}/envs && ln -sfn {VENV} {ENV_LINK}",)
    files = ((ACTIVATE, ACTIVATE_SCRIPT.encode()), (f"{VENV}/pip.conf", PIP_CONF.encode()))
    tag = content_tag("swescale/official", slug(task.id, 80), instance_tag, commands, files)
    return Recipe(instance_tag, tag, commands, files)


def official_layout_image(
    client: docker.DockerClient, task: Task, instance_tag: str, images: ImagesConfig
) -> str:
    """The local image of ``task`` in the official layout (built once, by content tag)."""
    recipe = official_layout_recipe(task, instance_tag)
    if image_exists(client, recipe.tag):
        return recipe.tag
    return build_layer(
        client,
        recipe.base,
        recipe.tag,
        list(recipe.commands),
        files=dict(recipe.files),
        env=dict(CONDA_ENV),
        workdir=REPO_DIR,
        network=False,
        timeout=600,
        log_path=build_log_path(images, recipe.tag),
    )


@dataclass
class Published:
    """One image a push put in the registry."""

    task_id: str
    local: str
    remote: str
    digest: str
    size_bytes: int
    seconds: float


@dataclass
class PublishOutcome:
    published: list[Published] = field(default_factory=list)
    # Task id -> why nothing was published for it.
    failed: dict[str, str] = field(default_factory=dict)


def publish_task(
    client: docker.DockerClient,
    task: Task,
    image: InstanceImage,
    *,
    registry: str,
    official_names: bool,
    images: ImagesConfig,
    grading: GradingConfig,
    repos: RepoSource,
    progress: Callable[[PullProgress], None] | None = None,
) -> list[Published]:
    """Push the task's local instance image (``image``, built) to ``registry``: under
    its official name in the official layout, or under its content tag together with
    the environment and base images it is built on. RegistryError when a push fails."""
    pairs: list[tuple[str, str]]
    if official_names:
        local = official_layout_image(client, task, image.tag, images)
        pairs = [(local, official_image_name(task, grading, registry))]
    else:
        base, env, instance = planned_recipes(task, images, grading, repos)
        names = [t for t in (base, env.tag, instance.tag) if image_exists(client, t)]
        pairs = [(name, qualified(registry, name)) for name in names]
    out = []
    for local, remote in pairs:
        start = time.monotonic()
        digest = push(client, local, remote, retries=images.pull_retries, progress=progress)
        size = int(client.images.get(local).attrs.get("Size", 0))
        out.append(Published(task.id, local, remote, digest, size, time.monotonic() - start))
    return out
