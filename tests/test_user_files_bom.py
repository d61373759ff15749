"""Every reader of a user's file keeps the first line when the file starts with a UTF-8
byte order mark (as files saved by some Windows editors do)."""

from __future__ import annotations

import json
from pathlib import Path

BOM = b"\xef\xbb\xbf"


def write(path: Path, text: str) -> Path:
    path.write_bytes(BOM + text.encode())
    return path


def test_predictions_jsonl_and_json(tmp_path: Path) -> None:
    from swescale.swebench.predictions import read_predictions

    line = {"instance_id": "a__b-1", "model_name_or_path": "m", "model_patch": "d"}
    rows, errors = read_predictions(write(tmp_path / "p.jsonl", json.dumps(line) + "\n"))
    assert errors == [] and [r.instance_id for r in rows] == ["a__b-1"]
    rows, errors = read_predictions(write(tmp_path / "p.json", json.dumps([line])))
    assert errors == [] and len(rows) == 1


def test_dataset_files(tmp_path: Path) -> None:
    from swescale.swebench.config import DatasetConfig
    from swescale.swebench.datasets import read_tasks

    row = {
        "instance_id": "a__b-1",
        "repo": "a/b",
        "base_commit": "c" * 40,
        "problem_statement": "p",
    }
    for name, text in (("d.jsonl", json.dumps(row) + "\n"), ("d.json", json.dumps([row]))):
        taskset = read_tasks(DatasetConfig(name=str(write(tmp_path / name, text))))
        assert taskset.errors == [] and [t.id for t in taskset.tasks] == ["a__b-1"], name


def test_config_files(tmp_path: Path) -> None:
    from swescale.config import load_config

    cfg = load_config(str(write(tmp_path / "c.yaml", "run_id: bom\nscaling:\n  n_parallel: 3\n")))
    assert cfg.run_id == "bom" and cfg.scaling.n_parallel == 3


def test_scripted_model_file(tmp_path: Path) -> None:
    from swescale.agent.models.scripted import load_script

    turns = load_script(write(tmp_path / "s.json", json.dumps(["first turn", "second"])))
    assert [t.text for t in turns][:1] == ["first turn"]


def test_ci_event_file(tmp_path: Path) -> None:
    from swescale.ci.events import read_event_file

    payload = read_event_file(write(tmp_path / "e.json", json.dumps({"action": "opened"})))
    assert payload == {"action": "opened"}


def test_ci_repo_config() -> None:
    from swescale.ci.repo_config import parse_repo_config

    cfg = parse_repo_config("\ufeffinstall:\n  - pip install -e .\n")
    assert cfg.install == ["pip install -e ."]
