"""scripts/leaderboard_pool.py on small results files as published."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "leaderboard_pool.py"


def _module():
    spec = importlib.util.spec_from_file_location("leaderboard_pool", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_results_file_with_trailing_commas_is_read(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(
        '{\n "no_generation": [\n  "a__b-1",\n ],\n "resolved": [\n  "a__b-2",\n ],\n}\n'
    )
    preds = tmp_path / "all_preds.jsonl"
    rows = [{"instance_id": i, "model_name_or_path": "m", "model_patch": "--- a/x\n+++ b/x\n"}
            for i in ("a__b-2", "a__b-3")]  # fmt: skip
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    module = _module()
    assert module.resolved_ids(results) == {"a__b-2"}
    assert module.main([str(tmp_path / "out"), f"sys={preds}:{results}"]) == 0
    labels = [json.loads(x) for x in (tmp_path / "out" / "labels.jsonl").read_text().splitlines()]
    assert {(x["instance_id"], x["resolved"]) for x in labels} == {
        ("a__b-2", True),
        ("a__b-3", False),
    }


def test_a_results_file_that_is_not_json_stops_with_its_name(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text("{resolved: oops")
    with pytest.raises(SystemExit, match="results.json: not JSON"):
        _module().resolved_ids(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(SystemExit, match="expected a JSON object"):
        _module().resolved_ids(bad)
