"""Fixtures shared by the verifier and selection tests: mini-benchmark tasks with their
instance images, and fresh sandboxes from them (import them in a conftest)."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture(scope="session")
def mini_by_id():
    from swescale.swebench.mini import mini_tasks

    return {t.id: t for t in mini_tasks()}


@pytest.fixture(scope="session")
def mini_images(docker_client, tmp_path_factory):
    """Instance image of a mini task (built once, then found by its content tag)."""
    from swescale.sandbox.config import ImagesConfig
    from swescale.swebench.config import GradingConfig
    from swescale.swebench.images import instance_image
    from swescale.swebench.specs import repo_source_for

    cache = tmp_path_factory.mktemp("repos")
    made: dict[str, str] = {}

    def image_for(task) -> str:
        if task.id not in made:
            repos = repo_source_for([task], cache)
            made[task.id] = instance_image(
                docker_client, task, images=ImagesConfig(), grading=GradingConfig(), repos=repos
            )
        return made[task.id]

    return image_for


@pytest.fixture
def sandbox_factory(docker_client, mini_images):
    """``factory(task) -> make_sandbox()``: fresh sandboxes of the task's image, each
    counted and all destroyed at the end of the test."""
    from swescale.sandbox import DockerSandbox

    live: list = []
    lock = threading.Lock()
    started = {"count": 0}

    def factory(task, command_timeout: float = 60.0):
        image = mini_images(task)

        def make():
            sb = DockerSandbox.create(
                docker_client,
                image.tag,
                image.sandbox_config(command_timeout=command_timeout),
                labels={"run": "pytest-verifiers", "task": task.id},
                base_commit=task.base_commit,
            )
            with lock:
                live.append(sb)
                started["count"] += 1
            return sb

        make.started = started
        return make

    yield factory
    for sb in live:
        sb.close()
