"""Grading in real sandboxes on the mini benchmark: verdicts, bad patches, hangs, eval
idempotence, official-image fallback. Images are found by content tag after the first
build, so the whole module costs little once the base image exists."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from swescale.sandbox import ImagesConfig
from swescale.swebench.config import DatasetConfig, GradingConfig
from swescale.swebench.evaluate import Grader, evaluate
from swescale.swebench.images import OfficialImageUnavailable, instance_image
from swescale.swebench.predictions import append_prediction
from swescale.swebench.run import grade_patch
from swescale.types import Task

pytestmark = pytest.mark.docker
# Other suites grade the same mini tasks at the same time: our containers carry our run.
RUN = f"pytest-swebench-{uuid.uuid4().hex[:8]}"

NOT_APPLYING = (
    "diff --git a/nowhere.py b/nowhere.py\n--- a/nowhere.py\n+++ b/nowhere.py\n"
    "@@ -1,2 +1,2 @@\n-this line\n+is not there\n context\n"
)


@pytest.fixture(scope="module")
def mini() -> dict[str, Task]:
    from swescale.swebench.mini import mini_tasks

    return {t.id: t for t in mini_tasks()}


@pytest.fixture(scope="module")
def grader(docker_client, base_image, mini) -> Grader:
    grading = GradingConfig(timeout=120, workers=2)
    g = Grader.for_tasks(docker_client, list(mini.values()), ImagesConfig(), grading)
    g.labels = {"run": RUN}
    return g


def _leftover_containers(client, run: str) -> list:
    return client.containers.list(all=True, filters={"label": f"swescale.run={run}"})


def test_verdicts_for_gold_empty_wrong_and_non_applying(
    grader: Grader, mini, docker_client
) -> None:
    task = mini["swescale-mini__slugkit-1"]
    gold = grader.grade(task, task.gold_patch)
    assert gold.status == "resolved" and gold.report[task.id]["patch_successfully_applied"]
    assert gold.passing() == task.fail_to_pass and gold.failing("PASS_TO_PASS") == []
    empty = grader.grade(task, "")
    assert empty.status == "unresolved" and empty.failing() == task.fail_to_pass
    wrong = grader.grade(task, task.extra["wrong_patches"][0])
    assert wrong.status == "unresolved" and not wrong.resolved
    bad = grader.grade(task, NOT_APPLYING)
    assert bad.status == "patch_failed" and not bad.patch_applied
    assert "patch --batch --fuzz=5" in bad.apply_output  # the last of the official attempts ran
    assert bad.report[task.id] == {
        "patch_is_None": False,
        "patch_exists": True,
        "patch_successfully_applied": False,
        "resolved": False,
    }
    none = grader.grade(task, None)
    assert none.report[task.id]["patch_is_None"] is True
    # the one-call form finds the same cached image by its content tag
    direct = grade_patch(docker_client, task, task.gold_patch, GradingConfig(), labels={"run": RUN})
    assert direct.status == "resolved" and direct.image == gold.image
    assert _leftover_containers(docker_client, RUN) == []


def test_decoy_passes_fail_to_pass_but_breaks_pass_to_pass(grader: Grader, mini) -> None:
    task = next(t for t in mini.values() if t.extra["decoy_patches"])
    decoy = grader.grade(task, task.extra["decoy_patches"][0])
    assert decoy.status == "unresolved"
    assert decoy.passing() == task.fail_to_pass and decoy.failing("PASS_TO_PASS")


def _binary_file_patch(tmp_path: Path) -> str:
    """A real git binary patch adding a file with NUL and 0xFF bytes."""
    repo = tmp_path / "bin"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "data.bin").write_bytes(bytes(range(256)) * 4)
    subprocess.run(["git", "add", "data.bin"], cwd=repo, check=True)
    return subprocess.run(
        ["git", "diff", "--cached", "--binary"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_fuzzy_binary_and_garbage_patches(grader: Grader, mini, tmp_path) -> None:
    task = mini["swescale-mini__slugkit-1"]
    # A leading context line that no longer matches: git apply refuses, patch --fuzz takes it.
    fuzzy = task.gold_patch.replace(
        "     text = _ascii_fold(text)\n", "     text = _ascii_fold(text)  # moved\n"
    )
    assert fuzzy != task.gold_patch
    result = grader.grade(task, fuzzy)
    assert result.status == "resolved", result.apply_output
    assert "patch --batch --fuzz=5" in result.apply_output
    both = grader.grade(task, task.gold_patch + _binary_file_patch(tmp_path))
    assert both.status == "resolved", both.apply_output
    garbage = grader.grade(task, "\x00\xff not a patch at all")
    assert garbage.status == "patch_failed"


def test_hanging_tests_time_out_and_the_container_is_killed(
    docker_client, base_image, mini, tmp_path
) -> None:
    task = mini["swescale-mini__slugkit-1"]
    hang = task.gold_patch.replace(
        '+    text = re.sub(r"[^A-Za-z0-9]+", sep, text)',
        '+    text = re.sub(r"[^A-Za-z0-9]+", sep, text)\n+    __import__("time").sleep(3600)',
    )
    assert hang != task.gold_patch
    hang = hang.replace("@@ -28,7 +28,7 @@", "@@ -28,7 +28,8 @@")
    g = Grader.for_tasks(docker_client, [task], ImagesConfig(), GradingConfig(timeout=8))
    g.labels = {"run": RUN + "-hang"}
    result = g.grade(task, hang)
    assert result.status == "timeout", (result.status, result.error, result.apply_output)
    assert not result.resolved and result.report[task.id]["resolved"] is False
    assert any("timed out" in n for n in result.notes)
    assert _leftover_containers(docker_client, RUN + "-hang") == []


def test_official_image_unavailable_is_clear_and_falls_back(
    docker_client, base_image, mini, grader
) -> None:
    task = mini["swescale-mini__slugkit-1"].model_copy(deep=True)
    task.extra["image"] = "localhost:1/swebench/sweb.eval.x86_64.nothing:latest"
    strict = GradingConfig(use_official_images=True, fallback_local_build=False)
    with pytest.raises(
        OfficialImageUnavailable, match="cannot pull the official image localhost:1/"
    ):
        instance_image(
            docker_client, task, images=ImagesConfig(), grading=strict, repos=grader.repos
        )
    lenient = GradingConfig(use_official_images=True, fallback_local_build=True)
    image = instance_image(
        docker_client, task, images=ImagesConfig(), grading=lenient, repos=grader.repos
    )
    assert not image.official and image.workdir == "/repo"
    assert any("official image unavailable" in n for n in image.notes)


def test_eval_is_idempotent_and_reports_in_the_official_schema(
    docker_client, base_image, mini, tmp_path
) -> None:
    a, b, c = (
        mini["swescale-mini__slugkit-1"],
        mini["swescale-mini__slugkit-2"],
        mini["swescale-mini__confkit-1"],
    )
    preds = tmp_path / "predictions.jsonl"
    append_prediction(preds, a.id, a.gold_patch, "m/x")
    append_prediction(preds, b.id, NOT_APPLYING, "m/x")
    append_prediction(preds, c.id, "", "m/x")
    append_prediction(preds, "nobody__nothing-1", "diff", "m/x")
    with open(preds, "a") as fh:
        fh.write("{broken line\n")
    grading = GradingConfig(eval_dir=tmp_path / "evals", workers=2, timeout=120)
    data = DatasetConfig(name="mini")
    seen: list[str] = []
    first = evaluate(
        preds, data, grading, ImagesConfig(), "r1", docker_client, lambda i, r: seen.append(i)
    )
    assert first.resolved_ids == [a.id] and first.unresolved_ids == [b.id]
    assert first.empty_patch_ids == [c.id] and first.error_ids == []
    assert first.patch_failed_ids == [b.id] and first.unknown_ids == ["nobody__nothing-1"]
    assert first.total_instances == 3 and first.submitted_instances == 4 - 1
    assert any("not valid JSON" in e for e in first.input_errors)
    assert sorted(seen) == sorted([a.id, b.id]) and first.graded_now == 2
    report = json.loads((tmp_path / "evals" / "r1" / "m__x" / a.id / "report.json").read_text())
    assert report[a.id]["resolved"] is True and "tests_status" in report[a.id]
    assert (
        json.loads((tmp_path / "evals" / "r1" / "report.json").read_text())["schema_version"] == 2
    )
    # rerun: nothing to grade; a changed patch is graded again
    again = evaluate(preds, data, grading, ImagesConfig(), "r1", docker_client)
    assert again.graded_now == 0 and again.resolved_ids == first.resolved_ids
    append_prediction(preds, b.id, b.gold_patch, "m/x")
    third = evaluate(preds, data, grading, ImagesConfig(), "r1", docker_client)
    assert third.graded_now == 1 and third.resolved_ids == sorted([a.id, b.id])


def test_validate_command_over_the_whole_mini_benchmark(base_image, tmp_path) -> None:
    out = tmp_path / "validate.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "swescale.cli",
            "validate",
            "--dataset",
            "mini",
            "--workers",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results and all(r["ok"] for r in results)
    assert all(
        set(r["checks"])
        >= {"gold_resolves", "empty_does_not_resolve", "fail_to_pass_fail_without_fix"}
        for r in results
    )


def test_validate_fails_on_a_broken_task(grader: Grader, mini) -> None:
    from swescale.swebench.evaluate import validate_task

    task = mini["swescale-mini__slugkit-1"].model_copy(
        update={"gold_patch": mini["swescale-mini__slugkit-1"].extra["wrong_patches"][0]}
    )
    result = validate_task(grader, task)
    assert not result.ok and result.checks["gold_resolves"] is False
    assert result.checks["empty_does_not_resolve"] is True


def test_eval_bad_inputs_never_crash(docker_client, tmp_path: Path) -> None:
    grading = GradingConfig(eval_dir=tmp_path / "evals")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    summary = evaluate(
        empty, DatasetConfig(name="mini"), grading, ImagesConfig(), "r", docker_client
    )
    assert summary.submitted_instances == 0 and summary.total_instances == 0
    missing = evaluate(
        tmp_path / "nope.jsonl",
        DatasetConfig(name="mini"),
        grading,
        ImagesConfig(),
        "r",
        docker_client,
    )
    assert missing.input_errors and "cannot read" in missing.input_errors[0]


def test_eval_command_end_to_end(base_image, mini, tmp_path) -> None:
    from typer.testing import CliRunner

    from swescale.cli import app

    task = mini["swescale-mini__confkit-2"]
    preds = tmp_path / "preds.jsonl"
    append_prediction(preds, task.id, task.gold_patch, "m")
    args = [
        "eval",
        str(preds),
        "--dataset",
        "mini",
        "--run-id",
        "cli",
        "--eval-dir",
        str(tmp_path / "ev"),
        "--workers",
        "1",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1/1 resolved" in result.output and "1 graded now" in result.output
    again = CliRunner().invoke(app, args)
    assert "0 graded now" in again.output
    summary = json.loads((tmp_path / "ev" / "cli" / "report.json").read_text())
    assert summary["resolved_ids"] == [task.id] and summary["completed_instances"] == 1
    bad = CliRunner().invoke(app, ["eval", str(preds), "--dataset", str(tmp_path / "nope.jsonl")])
    assert bad.exit_code == 2 and "no such file" in bad.output
