"""Instance images on cluster nodes: present, pulled from a shared registry, or built.

Every node provides the images of the tasks it runs. Tags are content-addressed (a hash
of the recipe: base image, environment, repository commit, setup commands), so a node
computes the tag a task needs *before* building anything, and two nodes that build it
produce the same image under the same tag. For each task a node then:

1. uses the image when its engine already has the tag (never rebuilt);
2. with a registry (``scaling.ray.registry``, else ``images.registry``), pulls
   ``<registry>/<tag>`` and tags it locally;
3. otherwise builds it (base, environment and instance layers, each only when missing)
   and, with a registry, pushes it so the other nodes pull instead of building.

With ``grading.use_official_images`` the node pulls the task's official image instead
(``<images.registry>/<official name>`` when a registry is set, as ``swescale images push
--official-names`` publishes it): nothing is built on the node.

Builds of one tag are serialized per host with a file lock, so the worker processes of a
host (or several Ray nodes sharing one Docker engine, as in a test cluster) never build
the same image twice at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from swescale.config import RunConfig
from swescale.types import Task

log = logging.getLogger(__name__)

PRESENT = "present"
PULLED = "pulled"
BUILT = "built"


class RegistryError(RuntimeError):
    """A push to the configured registry failed; the message says which image and why."""


def planned_tags(task: Task, cfg: RunConfig, repos: Any) -> tuple[str, str, str]:
    """(base, environment, instance) tags that :func:`~swescale.swebench.images.instance_image`
    gives ``task`` (local build), computed without building anything. Reads the
    repository where the recipes need its files."""
    from swescale.swebench.images import planned_recipes

    base, env, instance = planned_recipes(task, cfg.images, cfg.grading, repos)
    return base, env.tag, instance.tag


def planned_instance_tag(task: Task, cfg: RunConfig, repos: Any) -> str:
    """The instance image tag of ``task`` (see :func:`planned_tags`)."""
    return planned_tags(task, cfg, repos)[2]


def registry_name(registry: str, tag: str) -> str:
    """``host:port[/prefix]`` and ``swescale/instance:x`` -> ``host:port[/prefix]/swescale/instance:x``."""
    from swescale.sandbox.registry import qualified

    return qualified(registry, tag)


@contextlib.contextmanager
def host_lock(lock_dir: Path, key: str) -> Iterator[None]:
    """An exclusive lock shared by every process of this host (a file lock)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(key.encode()).hexdigest()[:24]
    with open(lock_dir / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pull_from_registry(client: Any, registry: str, tag: str, retries: int = 4) -> bool:
    """Pull ``tag`` from ``registry`` (retried while transient) and tag it locally;
    False when the registry lacks it or cannot be reached (the caller then builds)."""
    from swescale.sandbox.registry import RegistryError, pull, split_name

    remote = registry_name(registry, tag)
    try:
        pull(client, remote, retries=retries)
    except RegistryError as exc:
        log.info("%s not pulled from %s: %s", tag, registry, str(exc)[:200])
        return False
    repository, version = split_name(tag)
    client.images.get(remote).tag(repository, version)
    return True


def push_to_registry(client: Any, registry: str, tag: str) -> None:
    """Push the local image ``tag`` to ``registry`` (as ``<registry>/<tag>``)."""
    from swescale.sandbox.registry import RegistryError as PushFailed
    from swescale.sandbox.registry import push

    try:
        push(client, tag, registry_name(registry, tag))
    except PushFailed as exc:
        raise RegistryError(str(exc)) from exc


def ensure_image(
    client: Any,
    tag: str,
    build: Callable[[], Any],
    *,
    registry: str = "",
    lock_dir: Path,
    layers: tuple[str, ...] = (),
) -> str:
    """Make image ``tag`` present on this engine; returns how: ``present``, ``pulled`` or
    ``built``. ``build()`` must produce it; it runs at most once per host at a time, and
    not at all when the image is present or pullable. ``layers`` are the tags ``tag`` is
    built on (base, environment): pushed and pulled with it, so a node that pulls has
    every tag a local build looks for and builds nothing. A failed push is logged, not
    raised: this node has its image, the others build theirs."""
    from swescale.sandbox.images import image_exists

    if image_exists(client, tag):
        return PRESENT
    with host_lock(lock_dir, tag):
        if image_exists(client, tag):
            return PRESENT
        if registry and pull_from_registry(client, registry, tag):
            for layer in layers:
                if not image_exists(client, layer):
                    pull_from_registry(client, registry, layer)
            return PULLED
        build()
        if registry:
            try:
                for name in (*layers, tag):
                    if image_exists(client, name):
                        push_to_registry(client, registry, name)
            except RegistryError as exc:
                log.warning("%s", exc)
        return BUILT


class NodeImages:
    """The instance image of a task on this node (``image_for`` of the batch runner):
    the locally built image, found, pulled from the registry, or built and pushed."""

    def __init__(self, client: Any, cfg: RunConfig, registry: str = "") -> None:
        from swescale.scaling.stages import ImageProvider

        self.client = client
        self.cfg = cfg
        # The executor's registry, else the one every command pulls from.
        self.registry = registry or cfg.images.registry
        self.local = ImageProvider(client, cfg)
        self.lock_dir = Path(cfg.images.cache_dir) / "locks"
        # How each task's image was obtained on this node (task id -> present/pulled/built).
        self.how: dict[str, str] = {}

    def prepare(self, tasks: list[Task]) -> None:
        self.local.prepare(tasks)

    def __call__(self, task: Task) -> Any:
        from swescale.swebench.specs import provider_for

        grading = self.cfg.grading
        registry = self.cfg.images.registry
        if grading.use_official_images and (
            registry or provider_for(task).has_official_image(task)
        ):
            # Official images come from their registry (``images.registry``, else the
            # public one); the local provider pulls them, with retries and the cap.
            from swescale.sandbox.images import image_exists
            from swescale.swebench.images import official_image_name

            name = official_image_name(task, grading, registry)
            self.how[task.id] = PRESENT if image_exists(self.client, name) else PULLED
            return self.local(task)
        repos = self.local.repos(task)
        repos.ensure_commit(task)
        base, env, instance = planned_tags(task, self.cfg, repos)
        self.how[task.id] = ensure_image(
            self.client,
            instance,
            lambda: self.local(task),
            registry=self.registry,
            lock_dir=self.lock_dir,
            layers=(base, env),
        )
        # Every layer is present now: the local provider builds nothing and describes the
        # image exactly as in a local run.
        return self.local(task)
