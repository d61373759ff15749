"""``swescale ensemble`` from the command line: clear errors for bad input, and a pool-only
run (no sandboxes) that writes predictions with reasons and the report."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from swescale.cli import app

TASK = "swescale-mini__slugkit-1"


def _row(model: str, patch: str, instance: str = TASK) -> str:
    return json.dumps({"instance_id": instance, "model_name_or_path": model, "model_patch": patch})


def _patch(value: str) -> str:
    return (
        "--- a/slugkit/core.py\n+++ b/slugkit/core.py\n@@ -28,3 +28,3 @@\n"
        f'-    text = re.sub(r"[^A-Za-z0-9]", sep, text)\n+    text = {value}\n'
    )


def invoke(*args: str):
    result = CliRunner().invoke(app, ["ensemble", *args])
    # rich wraps long lines to the terminal's width: compare words, not line breaks.
    result.text = " ".join(result.output.split())
    return result


def test_bad_input_gets_clear_errors(tmp_path):
    preds = tmp_path / "a.jsonl"
    preds.write_text(_row("sysA", _patch("1")) + "\n")
    result = invoke(str(preds), "--dataset", "mini", "-s", "best_guess", "--no-sandbox")
    assert result.exit_code == 2 and "unknown selector 'best_guess'" in result.text
    result = invoke(str(preds), "--dataset", "mini", "--verifiers", "static,magic")
    assert result.exit_code == 2 and "unknown verifier 'magic'" in result.text
    result = invoke(str(tmp_path / "absent.jsonl"), "--dataset", "mini", "--no-sandbox")
    assert result.exit_code == 2 and "not found" in result.text
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = invoke(str(empty), "--dataset", "mini", "--no-sandbox")
    assert result.exit_code == 2 and "no candidates" in result.text
    assert "is empty" in result.text
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(_row("sysA", _patch("1"), instance="nobody__nothing-1") + "\n")
    result = invoke(str(unknown), "--dataset", "mini", "--no-sandbox")
    assert result.exit_code == 2 and "nobody__nothing-1" in result.text
    result = invoke("--dataset", "mini")
    assert result.exit_code == 2 and "give predictions files" in result.text


def test_pool_only_run_writes_predictions_reasons_and_report(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(_row("sysA", _patch("one")) + "\n" + _row("sysA", _patch("one "), "x__y-1") + "\n")
    b.write_text(_row("sysB", _patch("two")) + "\n" + "{broken json\n")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        json.dumps({"instance_id": TASK, "model_name_or_path": "sysA", "resolved": False})
        + "\n"
        + json.dumps({"instance_id": TASK, "model_name_or_path": "sysB", "resolved": True})
        + "\n"
    )
    out = tmp_path / "out"
    result = invoke(
        str(a), str(b), "--dataset", "mini", "--no-sandbox", "--labels", str(labels),
        "--out", str(out), "-s", "evidence,calibrated",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 instance id(s) not in the dataset" in result.text
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert rows[0]["instance_id"] == TASK and rows[0]["swescale"]["selector"] == "evidence"
    assert rows[0]["swescale"]["rationale"]
    report = json.loads((out / "report.json").read_text())
    assert report["labelled"] == 1 and report["mixed_pools"] == 1
    assert {r["selector"] for r in report["rows"]} >= {"oracle (pass@k)", "random pick", "majority"}
    assert report["no_environment"][TASK] == "sandboxes disabled"
    assert any("b.jsonl:2: not valid JSON" in p for p in report["problems"])
    assert (out / TASK / "selection.calibrated.json").exists()


def test_a_configured_model_adds_the_judge_to_the_same_evidence(tmp_path):
    """--judge: the config's model judges every candidate (here the scripted model, over
    the OpenAI-shaped completion with logprobs); hybrid then cuts by model score."""
    turns = tmp_path / "judge.json"
    logprobs = [
        {"token": "YES", "logprob": -0.2, "top_logprobs": [{"token": "NO", "logprob": -1.8}]}
    ]
    turns.write_text(json.dumps([{"content": "ANSWER: YES", "logprobs": logprobs}]))
    a = tmp_path / "a.jsonl"
    a.write_text(_row("sysA", _patch("one")) + "\n" + _row("sysB", _patch("two")) + "\n")
    out = tmp_path / "out"
    result = invoke(
        str(a), "--dataset", "mini", "--no-sandbox", "--judge", "--out", str(out),
        "--set", "model.kind=scripted", "--set", f"model.script={turns}", "-s", "hybrid",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    judged = json.loads((out / TASK / "verdicts" / "judge.json").read_text())
    assert len(judged) == 2
    assert all(v["details"]["method"] == "logprobs" for v in judged.values())
    assert all(abs(v["score"] - 0.832) < 0.01 for v in judged.values())
    pick = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert "by model score" in pick["swescale"]["rationale"]
    bad = invoke(str(a), "--dataset", "mini", "--no-sandbox", "--judge", "--out", str(out),
                 "--set", "model.kind=scripted", "--set", "model.script=")  # fmt: skip
    assert bad.exit_code == 2 and "--judge" in bad.text


@pytest.mark.docker
def test_sandbox_run_from_the_command_line(tmp_path):
    """The default mode (sandboxes of the task's image) through the CLI, as a user runs
    it: a patch that does not apply is judged by the static verifier, and the command
    ends with predictions and a report."""
    a = tmp_path / "a.jsonl"
    stale = "--- a/slugkit/core.py\n+++ b/slugkit/core.py\n@@ -1,1 +1,1 @@\n-no such line\n+x\n"
    a.write_text(_row("sysA", _patch("one")) + "\n" + _row("sysB", stale) + "\n")
    out = tmp_path / "out"
    result = invoke(
        str(a), "--dataset", "mini", "--verifiers", "static", "--out", str(out),
        "--run-id", "cli-sandbox", "-s", "evidence",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    static = json.loads((out / TASK / "verdicts" / "static.json").read_text())
    assert sorted(v["details"]["applied"] for v in static.values()) == [False, True]
    assert (out / "predictions.jsonl").read_text().strip()


def test_a_producer_whose_patch_changes_no_code_is_reported(tmp_path):
    comment_only = (
        "--- a/slugkit/core.py\n+++ b/slugkit/core.py\n@@ -28,3 +28,4 @@\n"
        '     text = re.sub(r"[^A-Za-z0-9]", sep, text)\n+    # a note\n'
    )
    a = tmp_path / "a.jsonl"
    a.write_text(_row("sysA", _patch("one")) + "\n" + _row("sysC", comment_only) + "\n")
    out = tmp_path / "out"
    result = invoke(str(a), "--dataset", "mini", "--no-sandbox", "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert any("sysC's patch changes no code" in p for p in report["problems"])


def _mini_task():
    from swescale.swebench.mini import mini_tasks

    return next(t for t in mini_tasks() if t.id == TASK)


def test_the_dataset_labels_its_own_patches_and_the_output_is_named_after_the_run(
    tmp_path, monkeypatch
):
    """The mini benchmark ships patches of known outcome (gold, alternatives, wrong and
    decoy fixes): a pool of them is labelled without --labels, the accuracy table is
    drawn at 80 columns, and the output directory carries the run id."""
    task = _mini_task()
    gold, wrong = task.gold_patch, task.extra["wrong_patches"][0]
    preds = tmp_path / "pool.jsonl"
    preds.write_text(
        _row("sysA", gold) + "\n" + _row("sysB", wrong) + "\n" + _row("sysC", wrong) + "\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["ensemble", str(preds), "--dataset", "mini", "--no-sandbox"], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
    text = " ".join(result.output.split())
    assert "labels: 2 candidate(s) from the dataset's patches" in text
    assert "accuracy on 1 labelled instances" in text
    found = re.search(r"ensemble (ensemble-pool-[0-9a-f]{8}):", text)
    assert found, text
    out = tmp_path / "ensembles" / found[1]
    report = json.loads((out / "report.json").read_text())
    rows = {r["selector"]: r for r in report["rows"]}
    assert report["labelled"] == 1 and rows["oracle (pass@k)"]["resolved"] == 1
    assert rows["majority"]["resolved"] == 0  # two producers agree on the wrong fix
    # The same inputs again: the same run id, so the same directory (it resumes).
    again = CliRunner().invoke(app, ["ensemble", str(preds), "--dataset", "mini", "--no-sandbox"])
    assert f"ensemble {found[1]}:" in " ".join(again.output.split())
    named = CliRunner().invoke(
        app, ["ensemble", str(preds), "-d", "mini", "--no-sandbox", "--run-id", "mine"]
    )
    assert named.exit_code == 0 and (tmp_path / "ensembles" / "mine" / "report.json").is_file()


def test_no_table_of_zeros_without_labels(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text(_row("sysA", _patch("one")) + "\n" + _row("sysB", _patch("two")) + "\n")
    result = invoke(str(a), "--dataset", "mini", "--no-sandbox", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "no accuracy table: no instance has every candidate labelled" in result.text
    assert "oracle (pass@k)" not in result.text and "0.0%" not in result.text
