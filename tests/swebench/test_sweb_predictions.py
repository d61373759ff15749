"""predictions.jsonl reading and appending, including bad and torn lines."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from swescale.swebench.predictions import (
    Prediction,
    append_prediction,
    latest_by_instance,
    read_predictions,
    write_predictions,
)


def test_round_trip_and_unicode(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    patch = 'diff --git a/x b/x\n+é ✓ \\ "quoted"\n'
    append_prediction(path, "a__b-1", patch, "model/x")
    append_prediction(path, "a__b-2", None)
    append_prediction(path, "a__b-3", "")
    preds, errors = read_predictions(path)
    assert errors == []
    assert [p.instance_id for p in preds] == ["a__b-1", "a__b-2", "a__b-3"]
    assert preds[0].model_patch == patch and preds[0].model_name_or_path == "model/x"
    assert preds[1].model_patch is None and preds[1].is_empty and preds[2].is_empty
    write_predictions(tmp_path / "copy.jsonl", preds)
    assert read_predictions(tmp_path / "copy.jsonl")[0] == preds


def test_bad_lines_are_reported_and_good_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    lines = [
        json.dumps({"instance_id": "ok-1", "model_patch": "d", "model_name_or_path": "m"}),
        "{torn",
        json.dumps({"model_patch": "d"}),
        json.dumps({"instance_id": "x", "model_patch": 3}),
        json.dumps([1, 2]),
        "",
        json.dumps({"instance_id": "ok-2", "model_patch": "e", "model_name_or_path": 7}),
    ]
    path.write_text("\n".join(lines) + "\n")
    preds, errors = read_predictions(path)
    assert [p.instance_id for p in preds] == ["ok-1", "ok-2"]
    assert preds[1].model_name_or_path == "7"
    assert len(errors) == 4
    assert f"{path}:2: not valid JSON" in errors[0]
    assert "missing or empty 'instance_id'" in errors[1]
    assert "(x): 'model_patch' must be a string" in errors[2]
    assert "expected a JSON object" in errors[3]


def test_json_list_and_dict_files_and_duplicates(tmp_path: Path) -> None:
    rows = [{"instance_id": "a", "model_patch": "1"}, {"instance_id": "a", "model_patch": "2"}]
    (tmp_path / "l.json").write_text(json.dumps(rows, indent=2))
    preds, errors = read_predictions(tmp_path / "l.json")
    assert errors == [] and len(preds) == 2  # a foreign file may carry several candidates
    assert latest_by_instance(preds)["a"].model_patch == "2"
    (tmp_path / "d.json").write_text(
        json.dumps({"a": rows[0], "b": {"instance_id": "b"}}, indent=1)
    )
    preds, errors = read_predictions(tmp_path / "d.json")
    assert [p.instance_id for p in preds] == ["a", "b"] and errors == []
    assert read_predictions(tmp_path / "missing.jsonl")[1][0].endswith(
        "cannot read: [Errno 2] No such file or directory: '"
        + str(tmp_path / "missing.jsonl")
        + "'"
    )
    (tmp_path / "broken.json").write_text("[{")
    assert "not valid JSON" in read_predictions(tmp_path / "broken.json")[1][0]


def test_append_after_a_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"instance_id": "a", "model_patch": "x"}) + '\n{"instance_id": "b", "mod'
    )
    append_prediction(path, "c", "y")
    preds, errors = read_predictions(path)
    assert [p.instance_id for p in preds] == ["a", "c"] and len(errors) == 1


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    big = "+" + "x" * 200_000 + "\n"

    def write(i: int) -> None:
        append_prediction(path, f"t-{i}", big)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    preds, errors = read_predictions(path)
    assert errors == [] and sorted(p.instance_id for p in preds) == [f"t-{i}" for i in range(8)]
    assert all(p.model_patch == big for p in preds)
    assert isinstance(preds[0], Prediction)
