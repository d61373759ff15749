"""Batch runs on the bundled mini benchmark: the scripted model solves tasks end to end
through the real agent graph, real Docker sandboxes, verifiers, selection and the
grader; the tiny real model completes a demo run, whatever it emits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swescale.config import load_config
from swescale.record.run import read_jsonl
from swescale.report import build_site, load_run
from swescale.scaling.launcher import launch


@pytest.mark.docker
def test_scripted_gold_resolves_mini_tasks(tmp_path: Path, docker_client, leak_check) -> None:
    cfg = load_config(
        "scripted",
        [
            "dataset.slice=0:2",
            "model.script=plan:gold",
            "scaling.n_parallel=1",
            "scaling.grade=selected",
            "verifiers.enabled=[]",
            f"runs_dir={tmp_path}",
        ],
    )
    leak_check.append("mini-gold")
    result = launch(cfg, run_id="mini-gold", live=False)
    assert not result.failed and not result.interrupted
    assert len(result.results) == 2
    for task_id, record in result.results.items():
        assert record["status"] == "done", record
        assert record["resolved"] is True, (task_id, record)
    predictions = read_jsonl(result.run_dir.predictions_path)
    assert {p["instance_id"] for p in predictions} == set(result.results)
    assert all(p["model_patch"].startswith("diff --git") for p in predictions)
    summary = load_run(result.run_dir.root)
    assert summary.resolve_rate == 1.0
    assert 'id="resolve-rate">2/2' in build_site(result.run_dir.root).index.read_text()
    info = json.loads(result.run_dir.run_json_path.read_text())
    assert set(info["image_digests"]) == set(result.results)
    assert info["ledger"]["by_kind"]["grading"]["sandbox_seconds"] > 0


@pytest.mark.docker
@pytest.mark.slow
def test_scripted_mixed_with_regression_verifier_all_mini_tasks(
    tmp_path: Path, docker_client, leak_check
) -> None:
    """Every mini task, right and wrong candidates, verifiers and grading of all of them."""
    cfg = load_config("scripted", [f"runs_dir={tmp_path}"])
    leak_check.append("mini-mixed")
    result = launch(cfg, run_id="mini-mixed", live=False)
    assert not result.failed
    summary = load_run(result.run_dir.root)
    # plan:mixed puts the gold patch in every task's candidates: pass@4 is 1.
    assert summary.pass_at()[-1] == (4, 1.0)
    assert all(t.candidates >= 2 for t in summary.tasks)


@pytest.mark.docker
@pytest.mark.llm
@pytest.mark.slow
def test_demo_with_the_tiny_real_model(tmp_path: Path, docker_client, leak_check) -> None:
    """The default preset (SmolLM2 via a llama.cpp server started for the run) completes
    its trajectories without crashing, whatever the model emits."""
    pytest.importorskip("llama_cpp")
    cfg = load_config(
        "default",
        [
            "dataset.slice=0:1",
            "scaling.n_parallel=2",
            "agent.step_limit=2",
            "model.max_tokens=64",
            "model.n_threads=2",
            f"runs_dir={tmp_path}",
        ],
    )
    leak_check.append("demo-llm")
    result = launch(cfg, run_id="demo-llm", live=False)
    assert not result.failed
    (record,) = result.results.values()
    assert record["status"] == "done"
    assert len(record["exit_statuses"]) == 2
    assert set(record["exit_statuses"].values()) <= {
        "submitted",
        "step_limit",
        "format_error",
        "budget",
    }
    assert load_run(result.run_dir.root).tasks[0].cost["tokens_out"] > 0


@pytest.mark.docker
def test_scripted_hard_run_selects_by_model_free_evidence(
    tmp_path: Path, docker_client, leak_check
) -> None:
    """The scripted-hard preset: the most frequent patch is wrong (two decoys that pass
    the issue's tests but break others); the run's own hybrid selection, with no model
    verdicts, ranks by static checks, tests and behaviour classes and picks right."""
    from swescale.selection.metrics import selection_comparison

    cfg = load_config(
        "scripted-hard",
        ["dataset.instance_ids=[swescale-mini__confkit-1]", f"runs_dir={tmp_path}"],
    )
    assert cfg.verifiers.enabled == ["static", "regression", "harvest", "issue", "behaviour"]
    leak_check.append("mini-hard")
    result = launch(cfg, run_id="mini-hard", live=False)
    assert not result.failed
    (record,) = result.results.values()
    assert record["status"] == "done" and record["resolved"] is True, record
    task_dir = result.run_dir.root / next(iter(result.results))
    selection = json.loads((task_dir / "selection.json").read_text())
    assert "no model verdicts" in selection["rationale"]
    verdicts = {p.stem for p in (task_dir / "verdicts").glob("*.json")}
    assert {"static", "regression", "issue", "behaviour"} <= verdicts
    # The issue's session reproduces on base: its checks judged every candidate.
    issue = json.loads((task_dir / "verdicts" / "issue.json").read_text())
    assert all(v["details"]["checks"] for v in issue.values())
    rows = {r["selector"]: r for r in selection_comparison(result.run_dir.root)}
    assert rows["majority"]["accuracy"] == 0.0 and rows["run"]["accuracy"] == 1.0
