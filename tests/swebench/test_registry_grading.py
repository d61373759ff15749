"""The leaderboard path through a registry of one's own: a mini-benchmark instance image is
published under its official name in the official layout (``swescale images push
--official-names``), the local copy of that name is gone, and ``eval --official-images``,
``validate --official-images`` and a run with ``grading.use_official_images=true`` pull it
from the registry and grade with the official eval script unchanged. An image the
registry lacks is an error naming the image, the registry and the command that
publishes it. The registry is Debian's ``docker-registry`` on a loopback port."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from swescale.cli import app
from swescale.sandbox import ImagesConfig
from swescale.swebench.config import GradingConfig
from swescale.swebench.images import official_image_name, publish_command
from swescale.swebench.publish import (
    ACTIVATE,
    ENV_LINK,
    PIP_CONF,
    official_layout_recipe,
)
from swescale.types import Task

PUBLISHED = "swescale-mini__slugkit-1"
UNPUBLISHED = "swescale-mini__slugkit-2"


@pytest.fixture(scope="module")
def mini() -> dict[str, Task]:
    from swescale.swebench.mini import mini_tasks

    return {t.id: t for t in mini_tasks()}


def test_official_names_in_a_registry(mini) -> None:
    task = mini[PUBLISHED]
    assert (
        official_image_name(task, GradingConfig(), "127.0.0.1:5000")
        == "127.0.0.1:5000/swebench/sweb.eval.x86_64.swescale-mini_1776_slugkit-1:latest"
    )
    row = task.model_copy(update={"extra": {**task.extra, "image": "swebench/own:1"}})
    assert official_image_name(row, GradingConfig(), "r:1") == "r:1/swebench/own:1"
    assert publish_command("r:1", ["a", "b"], "mini") == (
        "swescale images push --registry r:1 --official-names --dataset mini -i a -i b"
    )


def test_the_official_layout_layer(mini) -> None:
    task = mini[PUBLISHED]
    recipe = official_layout_recipe(task, "swescale/instance:x-1")
    files = dict(recipe.files)
    assert recipe.base == "swescale/instance:x-1"
    assert "conda()" in files[ACTIVATE].decode() and ENV_LINK in recipe.commands[0]
    # pip's inverted switch: "false" is what turns build isolation off.
    assert "no-build-isolation = false" in PIP_CONF and "no-index = true" in PIP_CONF
    assert official_layout_recipe(task, "swescale/instance:x-2").tag != recipe.tag


# -- against a real registry -----------------------------------------------------------


def _push(registry: str, *ids: str):
    args = ["images", "push", "--registry", registry, "--official-names", "--dataset", "mini"]
    for iid in ids:
        args += ["-i", iid]
    return CliRunner().invoke(app, args)


def _forget(client, name: str) -> None:
    with contextlib.suppress(Exception):  # not there
        client.images.remove(name, force=True)


@pytest.fixture(scope="module")
def published(docker_client, base_image, module_registry, mini):
    """The registry, with PUBLISHED pushed under its official name and no local copy of
    that name on the engine."""
    result = _push(module_registry, PUBLISHED)
    assert result.exit_code == 0, result.output
    name = official_image_name(mini[PUBLISHED], GradingConfig(), module_registry)
    assert f"-> {name}" in result.output and "1/1 instance(s) published" in result.output
    repository, tag = name.split("/", 1)[1].rsplit(":", 1)
    listed = httpx.get(f"http://{module_registry}/v2/{repository}/tags/list", timeout=5).json()
    assert listed["tags"] == [tag]
    _forget(docker_client, name)
    yield module_registry
    _forget(docker_client, name)


def _preds(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = [
        json.dumps({"instance_id": i, "model_name_or_path": m, "model_patch": p})
        for i, m, p in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.docker
def test_eval_official_images_pulls_from_the_registry(
    docker_client, published, mini, tmp_path
) -> None:
    registry = published
    name = official_image_name(mini[PUBLISHED], GradingConfig(), registry)
    assert not docker_client.images.list(name=name.rsplit(":", 1)[0])
    gold = mini[PUBLISHED].gold_patch
    preds = _preds(
        tmp_path / "preds.jsonl",
        [
            (PUBLISHED, "gold", gold),
            (PUBLISHED, "empty", ""),
            (UNPUBLISHED, "gold", mini[UNPUBLISHED].gold_patch),
        ],
    )
    ev = tmp_path / "ev"
    args = ["eval", str(preds), "--dataset", "mini", "--run-id", "reg", "--eval-dir", str(ev)]
    result = CliRunner().invoke(
        app,
        [*args, "-i", PUBLISHED, "-i", UNPUBLISHED, "--official-images", "--registry", registry],
    )
    assert result.exit_code == 0, result.output
    # Said before grading: what the registry lacks, and how to publish it.
    assert publish_command(registry, [UNPUBLISHED], "mini") in result.output.replace("\n", " ")
    gold_report = json.loads((ev / "gold.reg.json").read_text())
    assert gold_report["resolved_ids"] == [PUBLISHED]
    assert gold_report["error_ids"] == [UNPUBLISHED]
    reason = gold_report["error_reasons"][UNPUBLISHED]
    missing = official_image_name(mini[UNPUBLISHED], GradingConfig(), registry)
    assert missing in reason and f"the registry {registry} does not have it" in reason
    assert "swescale images push" in reason
    empty_report = json.loads((ev / "empty.reg.json").read_text())
    assert empty_report["empty_patch_ids"] == [PUBLISHED]
    log = (ev / "logs/run_evaluation/reg/gold" / PUBLISHED / "run_instance.log").read_text()
    # Graded in the pulled image, with the eval script as the recipe wrote it (no
    # adaptation to a venv: the layout provides what it needs).
    assert f"image: {name}" in log
    assert "venv" not in log and "adaptation: eval script from the mini task's recipe" in log
    assert docker_client.images.list(name=name.rsplit(":", 1)[0])


@pytest.mark.docker
def test_validate_and_run_pull_from_the_registry(docker_client, published, mini, tmp_path) -> None:
    from swescale.config import load_config
    from swescale.scaling.launcher import launch

    registry = published
    name = official_image_name(mini[PUBLISHED], GradingConfig(), registry)
    _forget(docker_client, name)
    result = CliRunner().invoke(
        app,
        [
            "validate",
            "--dataset",
            "mini",
            "-i",
            PUBLISHED,
            "--official-images",
            "--registry",
            registry,
            "--eval-dir",
            str(tmp_path / "val"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1/1 tasks valid" in result.output
    _forget(docker_client, name)
    cfg = load_config(
        "scripted",
        [
            f"dataset.instance_ids=[{PUBLISHED}]",
            "scaling.n_parallel=2",
            "grading.use_official_images=true",
            f"images.registry={registry}",
            f"runs_dir={tmp_path / 'runs'}",
        ],
    )
    outcome = launch(cfg, run_id="registry-run", live=False)
    assert not outcome.failed, outcome.results
    info = json.loads(outcome.run_dir.run_json_path.read_text())
    pulled_id = docker_client.images.get(name).id
    assert info["image_digests"][PUBLISHED] == pulled_id
    grades = json.loads((outcome.run_dir.root / PUBLISHED / "grades.json").read_text())
    assert any(g.get("resolved") for g in grades.values())
    assert all(g.get("image") == name for g in grades.values())


@pytest.mark.docker
def test_an_unreachable_registry_is_a_clear_error(docker_client, mini, tmp_path) -> None:
    from swescale.swebench.evaluate import Grader

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        registry = f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed
    images = ImagesConfig(registry=registry, pull_retries=1)
    grading = GradingConfig(use_official_images=True)
    grader = Grader.for_tasks(docker_client, [mini[PUBLISHED]], images, grading)
    result = grader.grade(mini[PUBLISHED], mini[PUBLISHED].gold_patch)
    assert result.status == "error"
    assert f"Is the registry {registry} up" in result.error


@pytest.mark.docker
def test_a_local_build_takes_its_content_tag_from_the_registry(docker_client, registry) -> None:
    """What ``images push`` without --official-names publishes: ``<registry>/<tag>`` is
    pulled and tagged ``tag``, so the build finds it; a tag the registry lacks is built."""
    import io
    import tarfile
    import uuid

    from swescale.sandbox.registry import push, qualified
    from swescale.swebench.images import pull_built

    tag = f"swescale/test-content-tag:{uuid.uuid4().hex[:12]}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("payload")
        tar.addfile(info, io.BytesIO(b""))
    repository, version = tag.rsplit(":", 1)
    docker_client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=version)
    images = ImagesConfig(registry=registry, pull_retries=1)
    try:
        image_id = docker_client.images.get(tag).id
        push(docker_client, tag, qualified(registry, tag))
        docker_client.images.remove(tag)
        assert pull_built(docker_client, images, tag)
        assert docker_client.images.get(tag).id == image_id
        assert not docker_client.images.list(name=qualified(registry, repository))
        assert not pull_built(docker_client, images, tag + "-never-pushed")
    finally:
        _forget(docker_client, tag)
