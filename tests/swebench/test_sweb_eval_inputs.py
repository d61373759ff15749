"""What ``swescale eval`` grades against when the command line does not say: a run's
predictions are graded against the run's own dataset, inside the run directory, under a
run id of their own; other predictions need ``--dataset``; a model with nothing among
the selected instances is reported as such while the others are graded. Empty patches
throughout, so nothing runs in a container."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from swescale.cli import app
from swescale.report.synthetic import make_run

SLUG, CONF = "swescale-mini__slugkit-1", "swescale-mini__confkit-2"


def _predictions(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"instance_id": i, "model_name_or_path": m, "model_patch": ""}) + "\n"
            for i, m in rows
        )
    )
    return path


def _run_with_predictions(runs: Path, run_id: str, instances: list[str]) -> Path:
    """A run directory (run.json, config.yaml) whose config selects ``instances`` of the
    mini benchmark, with a predictions file for them."""
    run = make_run(runs, run_id=run_id, candidates=1, trajectories=1, steps=2)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["dataset"]["instance_ids"] = instances
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    _predictions(run / "predictions.jsonl", [(i, "swescale__scripted") for i in instances])
    return run


def test_default_run_ids_name_the_predictions(tmp_path: Path) -> None:
    from swescale.swebench import eval_inputs

    run = _run_with_predictions(tmp_path / "runs", "alpha", [SLUG])
    assert eval_inputs.default_run_id([run / "predictions.jsonl"]) == "eval-alpha"
    majority = _predictions(run / "predictions.majority.jsonl", [(SLUG, "m")])
    assert eval_inputs.default_run_id([majority]) == "eval-alpha.majority"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _predictions(tmp_path / "a" / "predictions.jsonl", [(SLUG, "m")])
    second = _predictions(tmp_path / "b" / "predictions.jsonl", [(SLUG, "m")])
    ids = {eval_inputs.default_run_id([p]) for p in (first, second)}
    assert len(ids) == 2 and all(i.startswith("eval-predictions-") for i in ids)
    assert eval_inputs.default_run_id([first]) == eval_inputs.default_run_id([first])


def test_predictions_of_no_run_need_a_dataset(tmp_path: Path) -> None:
    preds = _predictions(tmp_path / "preds.jsonl", [(SLUG, "m")])
    result = CliRunner().invoke(app, ["eval", str(preds), "--eval-dir", str(tmp_path / "ev")])
    assert result.exit_code == 2, result.output
    assert "--dataset" in result.output and "not a run's" in result.output
    assert not (tmp_path / "ev").exists()


@pytest.mark.docker
def test_a_model_with_nothing_to_grade_is_reported_and_the_others_graded(
    tmp_path: Path, docker_client
) -> None:
    preds = _predictions(tmp_path / "two.jsonl", [(SLUG, "m1"), (CONF, "m2")])
    args = ["eval", str(preds), "--dataset", "mini", "-i", SLUG, "--run-id", "filter"]
    result = CliRunner().invoke(app, [*args, "--eval-dir", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "m1: 0/1 resolved" in text and "1 empty" in text
    assert "m2: nothing to grade among the selected instances" in text
    assert "1 outside the selected instances" in text and "unknown instance" not in text
    report = json.loads((tmp_path / "ev" / "m1.filter.json").read_text())
    assert report["empty_patch_ids"] == [SLUG]
    assert not (tmp_path / "ev" / "m2.filter.json").exists()

    unknown = _predictions(tmp_path / "unknown.jsonl", [(SLUG, "m1"), ("nosuch__repo-1", "m2")])
    args = ["eval", str(unknown), "--dataset", "mini", "--run-id", "unknown"]
    result = CliRunner().invoke(app, [*args, "--eval-dir", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "prediction for unknown instance 'nosuch__repo-1'" in text
    assert "m2: nothing to grade" in text and "the dataset does not have" in text
    assert (tmp_path / "ev" / "m1.unknown.json").is_file()


@pytest.mark.docker
def test_two_runs_evals_keep_to_their_own_dataset_and_directory(
    tmp_path: Path, docker_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # whatever is written to the working directory stays here
    first = _run_with_predictions(tmp_path / "runs", "first", [SLUG])
    second = _run_with_predictions(tmp_path / "runs", "second", [SLUG, CONF])
    for run in (first, second):
        result = CliRunner().invoke(app, ["eval", str(run / "predictions.jsonl")])
        assert result.exit_code == 0, result.output
    # Each run's own dataset (its config's instance filter), not the built-in default.
    for run, total in ((first, 1), (second, 2)):
        report = json.loads((run / "eval" / f"swescale__scripted.eval-{run.name}.json").read_text())
        assert report["total_instances"] == total and report["run_id"] == f"eval-{run.name}"
        assert report["empty_patch_instances"] == total
    assert not list(tmp_path.glob("*.json")) and not (tmp_path / "logs").exists()
    # The first run's report still describes the first run, and links only inside it.
    page = first / "report" / "eval.html"
    text = page.read_text()
    assert "eval-first" in text and "eval-second" not in text
    for href in (h for h in _hrefs(text) if not h.startswith("#")):
        target = (page.parent / href.split("#")[0]).resolve()
        assert target.is_relative_to(first.resolve()) and target.exists(), href
    for html in (first / "report").rglob("*.html"):
        assert str(tmp_path) not in html.read_text(), html
    # The evaluation logged to the run's own log, not to a folder of the working directory.
    assert (first / "swescale.log").is_file() and not list(tmp_path.glob("swescale.*"))


def _hrefs(html: str) -> list[str]:
    import re

    return re.findall(r'href="([^"]+)"', html)


def test_a_run_config_this_version_cannot_read_asks_for_a_dataset(tmp_path: Path) -> None:
    run = _run_with_predictions(tmp_path / "runs", "old", [SLUG])
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["scaling"]["a_knob_of_another_version"] = 1
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["eval", str(run / "predictions.jsonl")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "the run's config cannot be used" in text and "pass --dataset" in text


def test_eval_of_a_directory_says_what_to_give(tmp_path) -> None:
    from typer.testing import CliRunner

    from swescale.cli import app

    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--dataset", "mini"])
    assert result.exit_code == 2
    assert "a directory, not a predictions file" in " ".join(result.output.split())


def test_a_cut_predictions_line_names_its_column(tmp_path) -> None:
    from swescale.swebench.predictions import read_predictions

    path = tmp_path / "p.jsonl"
    path.write_text('{"instance_id": "a", "model_patch": "x", "model_name_or_path": "m"}\n{"inst')
    _, errors = read_predictions(path)
    assert errors == [f"{path}:2: not valid JSON (Unterminated string starting at: column 2)"]
