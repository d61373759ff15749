"""Grading in real sandboxes on the mini benchmark: verdicts, bad patches, hangs, eval
idempotence, official-image fallback. Images are found by content tag after the first
build, so the whole module costs little once the base image exists."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
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
    assert gold.apply_strategy == "git apply --verbose"
    alone = grader.grade_alone(task)
    assert alone.status == "unresolved" and alone.failing() == task.fail_to_pass
    assert grader.grade(task, "").status == "empty"  # the official empty patch: not run
    wrong = grader.grade(task, task.extra["wrong_patches"][0])
    assert wrong.status == "unresolved" and not wrong.resolved
    # a patch that applies by no official command is an error of the run, with no report
    bad = grader.grade(task, NOT_APPLYING)
    assert bad.status == "error" and bad.error_kind == "patch_apply_failed"
    assert bad.report == {} and bad.verdict is False
    assert "patch --batch --forward --fuzz=5" in bad.apply_output  # every attempt ran
    whitespace = grader.grade(task, "\n")  # only "" and None are empty, as officially
    assert whitespace.error_kind == "patch_apply_failed"
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
    assert result.apply_strategy == "patch --batch --forward --fuzz=5 -p1 -i"
    both = grader.grade(task, task.gold_patch + _binary_file_patch(tmp_path))
    assert both.status == "resolved", both.apply_output
    garbage = grader.grade(task, "\x00\xff not a patch at all")
    assert garbage.error_kind == "patch_apply_failed"


# The fix, then a hunk whose trailing context went stale (it needs fuzz).
STALE_SECOND_HUNK = """@@ -33,3 +33,4 @@ def slugify(
     if max_length is not None:
         text = text[:max_length].rstrip(sep)
     return text.lower()
+# end of slugkit.core
"""
# The fix, then a "Binary files ... differ" stub git cannot apply.
BINARY_STUB = (
    "diff --git a/docs/logo.png b/docs/logo.png\nnew file mode 100644\n"
    "index 0000000..3f4e2a1\nBinary files /dev/null and b/docs/logo.png differ\n"
)


def test_the_apply_fallback_never_reverses_a_fix(grader: Grader, mini) -> None:
    """swebench 4.x ran `git apply --reject` (which applies the fix and rejects the rest)
    and then `patch --batch` on the same tree, which saw the fix, printed "Reversed (or
    previously applied) patch detected! Assuming -R", took the fix out, and for the
    binary stub even exited 0. 5.x resets the tree between attempts and never reverses."""
    task = mini["swescale-mini__slugkit-1"]
    for candidate in (task.gold_patch + STALE_SECOND_HUNK, task.gold_patch + BINARY_STUB):
        result = grader.grade(task, candidate)
        assert result.status == "resolved", result.apply_output
        assert result.apply_strategy == "patch --batch --forward --fuzz=5 -p1 -i"
        assert "Assuming -R" not in result.apply_output


PLANTED = """diff --git a/tests/test_planted.py b/tests/test_planted.py
new file mode 100644
--- /dev/null
+++ b/tests/test_planted.py
@@ -0,0 +1,5 @@
+from slugkit import slugify
+
+
+def test_runs_collapse():
+    assert slugify("Rock & Roll -- Live") == "rock-roll-live"
"""
PLANTER = """diff --git a/tests/test_planted.py b/tests/test_planted.py
new file mode 100644
--- /dev/null
+++ b/tests/test_planted.py
@@ -0,0 +1,2 @@
+def test_runs_collapse():
+    pass
"""


def test_a_candidate_cannot_plant_the_test_file(grader: Grader, mini) -> None:
    """The test patch adds tests/test_planted.py; a candidate that adds an always-passing
    file at that path (and no fix) made `git apply` of the test patch fail ("already
    exists in working directory") and its own file ran instead: resolved. Files the test
    patch creates are removed before it is applied."""
    base = mini["swescale-mini__slugkit-1"]
    task = base.model_copy(
        update={
            "test_patch": PLANTED,
            "fail_to_pass": ["tests/test_planted.py::test_runs_collapse"],
            "pass_to_pass": [],
        }
    )
    planted = grader.grade(task, PLANTER)
    assert planted.status == "unresolved", planted.log[-2000:]
    assert planted.failing() == task.fail_to_pass
    assert any("removed before it is applied" in a for a in planted.adaptations)
    assert grader.grade(task, base.gold_patch + PLANTER).status == "resolved"
    assert grader.grade(task, base.gold_patch).status == "resolved"


def test_a_test_patch_that_does_not_apply_is_an_error_not_a_verdict(grader: Grader, mini) -> None:
    base = mini["swescale-mini__slugkit-1"]
    broken = base.test_patch.replace("def test_empty_string():", "def test_gone_away():")
    task = base.model_copy(update={"test_patch": broken})
    result = grader.grade(task, base.gold_patch)
    assert result.status == "error" and result.error_kind == "test_patch_failed"
    assert result.verdict is None and result.report == {}


def test_hanging_tests_time_out_and_the_container_is_killed(
    docker_client, base_image, mini, tmp_path
) -> None:
    task = mini["swescale-mini__slugkit-1"]
    g = Grader.for_tasks(docker_client, [task], ImagesConfig(), GradingConfig(timeout=8))
    g.labels = {"run": RUN + "-hang"}
    result = g.grade(task, hanging_patch(task))
    # as officially: a timeout is an error of the run (no report; a rerun retries it)
    assert result.status == "error" and result.error_kind == "timeout", result.error
    assert result.report == {} and result.verdict is False
    assert "Timeout error: 8 seconds exceeded." in result.log
    assert _leftover_containers(docker_client, RUN + "-hang") == []


def hanging_patch(task: Task) -> str:
    hang = task.gold_patch.replace(
        '+    text = re.sub(r"[^A-Za-z0-9]+", sep, text)',
        '+    text = re.sub(r"[^A-Za-z0-9]+", sep, text)\n+    __import__("time").sleep(3600)',
    )
    assert hang != task.gold_patch
    return hang.replace("@@ -28,7 +28,7 @@", "@@ -28,7 +28,8 @@")


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
    assert not image.official and image.workdir == "/testbed"
    assert any("official image unavailable" in n for n in image.notes)


def _report_dir(root: Path, run: str, model: str, iid: str) -> Path:
    return root / "logs" / "run_evaluation" / run / model / iid


def test_eval_is_idempotent_and_reports_in_the_official_layout(
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
    root = tmp_path / "ev"
    grading = GradingConfig(eval_dir=root, workers=2, timeout=120)
    data = DatasetConfig(name="mini")
    seen: list[str] = []
    first = evaluate(
        preds,
        data,
        grading,
        ImagesConfig(),
        "r1",
        docker_client,
        lambda m, i, r: seen.append(i),
    )
    report = first.reports["m/x"]
    # the official summary: the dataset's total, patch-apply failures are errors
    assert Path(first.report_paths["m/x"]) == root / "m__x.r1.json"
    assert report["total_instances"] == len(mini) and report["schema_version"] == 2
    assert report["resolved_ids"] == [a.id] and report["unresolved_ids"] == []
    assert report["error_ids"] == [b.id] and report["patch_apply_failed_ids"] == [b.id]
    assert report["empty_patch_ids"] == [c.id]
    assert len(report["incomplete_ids"]) == len(mini) - 3
    assert report["unknown_ids"] == ["nobody__nothing-1"]
    assert "nobody__nothing-1" not in report["submitted_ids"]
    assert any("not valid JSON" in e for e in first.input_errors)
    assert sorted(seen) == sorted([a.id, b.id]) and first.graded_now == 2
    folder = _report_dir(root, "r1", "m__x", a.id)
    for name in ("report.json", "test_output.txt", "patch.diff", "eval.sh", "run_instance.log"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "report.json").read_text())[a.id]["resolved"] is True
    assert not (_report_dir(root, "r1", "m__x", b.id) / "report.json").exists()
    # rerun: the resolved one is kept, the error is retried (and fails again)
    again = evaluate(preds, data, grading, ImagesConfig(), "r1", docker_client)
    assert again.graded_now == 1 and again.reports["m/x"]["resolved_ids"] == [a.id]
    append_prediction(preds, b.id, b.gold_patch, "m/x")
    third = evaluate(preds, data, grading, ImagesConfig(), "r1", docker_client)
    assert third.graded_now == 1 and third.reports["m/x"]["resolved_ids"] == sorted([a.id, b.id])


def test_eval_grades_pools_of_several_models_per_instance(
    docker_client, base_image, mini, tmp_path
) -> None:
    """Patches of several systems for the same instances: one report folder per (model,
    instance) and one run report per model, as pass@k over pools needs."""
    a, b = mini["swescale-mini__slugkit-1"], mini["swescale-mini__slugkit-2"]
    preds = tmp_path / "pool.jsonl"
    for model in ("sys-a", "sys-b", "sys-c"):
        append_prediction(preds, a.id, a.gold_patch if model != "sys-b" else "", model)
        append_prediction(preds, b.id, a.extra["wrong_patches"][0], model)
    other = tmp_path / "more.jsonl"
    append_prediction(other, b.id, b.gold_patch, "sys-d")
    root = tmp_path / "ev"
    out = evaluate(
        [preds, other],
        DatasetConfig(name="mini", instance_ids=[a.id, b.id]),
        GradingConfig(eval_dir=root, workers=2, timeout=120),
        ImagesConfig(),
        "pool",
        docker_client,
    )
    assert set(out.reports) == {"sys-a", "sys-b", "sys-c", "sys-d"}
    assert out.reports["sys-a"]["resolved_ids"] == [a.id]
    assert out.reports["sys-b"]["empty_patch_ids"] == [a.id]
    assert out.reports["sys-d"]["resolved_ids"] == [b.id]
    assert out.reports["sys-d"]["incomplete_ids"] == [a.id]
    assert all(r["total_instances"] == 2 for r in out.reports.values())
    for model in ("sys-a", "sys-c"):
        assert (_report_dir(root, "pool", model, a.id) / "report.json").is_file()
    assert (root / "sys-c.pool.json").is_file()


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
            "--eval-dir",
            str(tmp_path),
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
    assert result.problems[0].startswith("gold: FAIL_TO_PASS failing")


def test_a_stopped_validation_returns_what_finished(grader: Grader, mini) -> None:
    """A stop (Ctrl-C, SIGTERM) after the first task: the tasks not started are left
    out (the command counts them "not run"), nothing raises."""
    import threading

    from swescale.swebench.evaluate import validate

    stop = threading.Event()
    tasks = list(mini.values())
    results = validate(grader, tasks, workers=1, progress=lambda _r: stop.set(), stop=stop)
    # One worker: the task it took up as the first one finished may finish too.
    assert 1 <= len(results) <= 2 < len(tasks)
    assert [r.task_id for r in results] == [t.id for t in tasks[: len(results)]]
    assert all(r.ok for r in results)


def test_eval_bad_inputs_never_crash(docker_client, tmp_path: Path) -> None:
    grading = GradingConfig(eval_dir=tmp_path / "evals")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = evaluate(empty, DatasetConfig(name="mini"), grading, ImagesConfig(), "r", docker_client)
    assert out.reports == {} and "no predictions" in out.input_errors[0]
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
    # a byte order mark (Windows editors) must not cost the first line
    line = json.dumps(
        {"instance_id": task.id, "model_name_or_path": "m", "model_patch": task.gold_patch}
    )
    preds.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n")
    args = [
        "eval",
        str(preds),
        "--dataset",
        "mini",
        "--instance",
        task.id,
        "--run-id",
        "cli",
        "--eval-dir",
        str(tmp_path / "ev"),
        "--workers",
        "1",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "m: 1/1 resolved" in result.output and "warning" not in result.output
    summary = json.loads((tmp_path / "ev" / "m.cli.json").read_text())
    assert summary["resolved_ids"] == [task.id] and summary["completed_instances"] == 1
    elsewhere = ["--eval-dir", str(tmp_path / "ev2")]
    bad = CliRunner().invoke(
        app, ["eval", str(preds), "--dataset", str(tmp_path / "nope.jsonl"), *elsewhere]
    )
    assert bad.exit_code == 2 and "no such file" in bad.output
    gone = CliRunner().invoke(
        app, ["eval", str(tmp_path / "missing.jsonl"), "--dataset", "mini", *elsewhere]
    )
    assert gone.exit_code == 2 and "predictions file not found" in gone.output
    # Nothing gradable at all is an error, not a green run.
    for name, text in (("empty.jsonl", ""), ("junk.jsonl", "{not json\n[1, 2]\n")):
        (tmp_path / name).write_text(text)
        nothing = CliRunner().invoke(
            app, ["eval", str(tmp_path / name), "--dataset", "mini", *elsewhere]
        )
        assert nothing.exit_code == 2 and "no prediction to grade" in nothing.output, name


def _eval_process(preds: Path, root: Path, run: str, timeout: int = 600) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swescale.cli",
            "eval",
            str(preds),
            "--dataset",
            "mini",
            "--run-id",
            run,
            "--eval-dir",
            str(root),
            "--workers",
            "2",
            "--timeout",
            str(timeout),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_containers(client, run: str, want: int, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(_leftover_containers(client, run)) >= want:
            return
        time.sleep(0.5)
    raise AssertionError(f"no grading container of {run} appeared")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_eval_stops_in_seconds_and_leaves_no_container(
    docker_client, base_image, mini, tmp_path, sig
) -> None:
    """A CI job timeout (SIGTERM) or Ctrl-C while a test hangs (the run's timeout is 600 s):
    the command ends within seconds, removes its containers, writes the summary of what
    finished; a rerun grades the rest."""
    done, hanging = mini["swescale-mini__confkit-2"], mini["swescale-mini__slugkit-1"]
    preds = tmp_path / "p.jsonl"
    append_prediction(preds, done.id, "", "m")
    append_prediction(preds, hanging.id, hanging_patch(hanging), "m")
    run = f"{RUN}-{sig.name.lower()}"
    proc = _eval_process(preds, tmp_path / "ev", run)
    _wait_for_containers(docker_client, run, 1)
    time.sleep(2)  # the hanging test is running
    sent = time.monotonic()
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 30, output
    assert proc.returncode == 130, output
    assert _leftover_containers(docker_client, run) == []
    report = json.loads((tmp_path / "ev" / f"m.{run}.json").read_text())
    assert report["empty_patch_ids"] == [done.id]
    assert report["interrupted_ids"] == [hanging.id]
    assert not (_report_dir(tmp_path / "ev", run, "m", hanging.id) / "result.json").exists()
    # What the terminal said about the interruption is in the log file too.
    log = (tmp_path / "ev" / f"swescale.{run}" / "swescale.log").read_text()
    assert f"{sig.name}: stopping" in log and "interrupted: rerun the same command" in log


def test_a_killed_eval_leaves_nothing_a_rerun_does_not_reap(
    docker_client, base_image, mini, tmp_path
) -> None:
    task = mini["swescale-mini__slugkit-1"]
    preds = tmp_path / "p.jsonl"
    append_prediction(preds, task.id, hanging_patch(task), "m")
    run = f"{RUN}-kill9"
    proc = _eval_process(preds, tmp_path / "ev", run)
    _wait_for_containers(docker_client, run, 1)
    proc.kill()
    proc.wait(timeout=30)
    assert _leftover_containers(docker_client, run), "kill -9 runs no cleanup"
    # the next eval (any run) removes containers whose owner process is gone
    from typer.testing import CliRunner

    from swescale.cli import app

    empty = tmp_path / "e.jsonl"
    append_prediction(empty, task.id, "", "m")
    result = CliRunner().invoke(
        app, ["eval", str(empty), "--dataset", "mini", "--eval-dir", str(tmp_path / "e2")]
    )
    assert result.exit_code == 0, result.output
    assert _leftover_containers(docker_client, run) == []
    nets = docker_client.networks.list(filters={"label": "swescale.run=" + run})
    assert nets == []
