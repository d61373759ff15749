"""Loading tasks from the official parquet files, JSON and JSONL copies, and bad rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from swescale.swebench.config import DatasetConfig
from swescale.swebench.datasets import (
    DatasetError,
    load_tasks,
    parse_slice,
    published_name,
    read_tasks,
    task_from_row,
)

DATA = Path("/work/shared/data/swebench")
PARQUETS = sorted(DATA.glob("*.parquet"))
needs_data = pytest.mark.skipif(not PARQUETS, reason="shared SWE-bench parquet files not present")


@needs_data
@pytest.mark.parametrize("path", PARQUETS, ids=lambda p: p.stem)
def test_every_shared_parquet_loads_every_row(path: Path) -> None:
    rows = pq.read_table(path).num_rows
    taskset = read_tasks(DatasetConfig(name=str(path)))
    assert taskset.errors == []
    assert len(taskset.tasks) == rows
    for task in taskset.tasks:
        assert task.fail_to_pass, task.id  # every official row has at least one
        assert task.test_patch and task.gold_patch
        assert len(task.base_commit) == 40
        assert task.version
        # v5 columns kept aside, core columns not duplicated there
        assert "FAIL_TO_PASS" not in task.extra and "patch" not in task.extra
        assert task.extra["log_parser"].startswith("parse_log_")


@needs_data
def test_field_parsing_of_a_known_verified_row() -> None:
    cfg = DatasetConfig(
        name=str(DATA / "SWE-bench_Verified-test.parquet"), instance_ids=["astropy__astropy-12907"]
    )
    (task,) = load_tasks(cfg)
    assert task.repo == "astropy/astropy"
    assert task.base_commit == "d16bfe05a744909de4b27f5875fe0d4ed41ce607"
    assert task.version == "4.3"
    assert task.fail_to_pass == [
        "astropy/modeling/tests/test_separable.py::test_separable[compound_model6-result6]",
        "astropy/modeling/tests/test_separable.py::test_separable[compound_model9-result9]",
    ]
    assert "astropy/modeling/tests/test_separable.py::test_cdot" in task.pass_to_pass
    assert task.environment_setup_commit == "298ccb478e6bf092953bca67a3d29dc6c35f6752"
    assert task.extra["image"].startswith("swebench/sweb.eval.x86_64.astropy_1776_astropy-12907")
    assert task.extra["difficulty"] == "15 min - 1 hour"


@needs_data
def test_json_and_jsonl_copies_with_list_or_string_test_names(tmp_path: Path) -> None:
    rows = pq.read_table(DATA / "SWE-bench_Lite-dev.parquet").to_pylist()
    as_lists = [{**r, "FAIL_TO_PASS": json.loads(r["FAIL_TO_PASS"])} for r in rows]
    (tmp_path / "lite.json").write_text(json.dumps(as_lists))
    (tmp_path / "lite.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    from_json = load_tasks(DatasetConfig(name=str(tmp_path / "lite.json"), strict=True))
    from_jsonl = load_tasks(DatasetConfig(name=str(tmp_path / "lite.jsonl"), strict=True))
    from_parquet = load_tasks(DatasetConfig(name=str(DATA / "SWE-bench_Lite-dev.parquet")))
    assert [t.fail_to_pass for t in from_json] == [t.fail_to_pass for t in from_parquet]
    assert [t.pass_to_pass for t in from_jsonl] == [t.pass_to_pass for t in from_parquet]
    assert [t.id for t in from_json] == [t.id for t in from_jsonl] == [t.id for t in from_parquet]


def _row(iid: str, **kw: object) -> dict:
    row = {
        "instance_id": iid,
        "repo": "o/r",
        "base_commit": "a" * 40,
        "problem_statement": "it breaks",
        "FAIL_TO_PASS": '["t::a"]',
        "PASS_TO_PASS": [],
        "version": 1.0,
    }
    row.update(kw)
    return row


def test_malformed_rows_are_reported_by_row_and_skipped(tmp_path: Path) -> None:
    lines = [
        json.dumps(_row("o__r-1")),
        "{not json",
        json.dumps(_row("o__r-2", FAIL_TO_PASS="[broken")),
        json.dumps(_row("o__r-3", base_commit=None)),
        json.dumps(_row("o__r-4", FAIL_TO_PASS=[1, 2])),
        json.dumps(["a list"]),
        json.dumps(_row("o__r-1")),  # duplicate
        json.dumps(_row("o__r-5")),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    taskset = read_tasks(DatasetConfig(name=str(path)))
    assert [t.id for t in taskset.tasks] == ["o__r-1", "o__r-5"]
    messages = [str(e) for e in taskset.errors]
    assert len(messages) == 6
    assert any("row 1" in m and "not valid JSON" in m for m in messages)
    assert any(
        "o__r-2" in m and "FAIL_TO_PASS" in m.lower() or "fail_to_pass" in m for m in messages
    )
    assert any("o__r-3" in m and "base_commit" in m for m in messages)
    assert any("duplicate" in m for m in messages)
    # version floats become strings the specs are keyed by
    assert taskset.tasks[0].version == "1.0"
    with pytest.raises(DatasetError) as err:
        load_tasks(DatasetConfig(name=str(path), strict=True))
    assert "6 bad row(s)" in str(err.value) and "o__r-3" in str(err.value)


def test_filters_ids_regex_slice(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(_row(f"o__r-{i}")) for i in range(10)))
    cfg = DatasetConfig(name=str(path), slice="2:5")
    assert [t.id for t in load_tasks(cfg)] == ["o__r-2", "o__r-3", "o__r-4"]
    cfg = DatasetConfig(name=str(path), regex=r"-[13579]$", slice="1:")
    assert [t.id for t in load_tasks(cfg)] == ["o__r-3", "o__r-5", "o__r-7", "o__r-9"]
    cfg = DatasetConfig(name=str(path), instance_ids=["o__r-8", "o__r-0", "nope"])
    taskset = read_tasks(cfg)
    assert [t.id for t in taskset.tasks] == ["o__r-0", "o__r-8"]
    assert any("'nope' is not in the dataset" in str(e) for e in taskset.errors)
    assert parse_slice("3") == slice(3, 4)
    for bad in ("a:b", "1:2:0", "1:2:3:4"):
        with pytest.raises(DatasetError):
            parse_slice(bad)
    with pytest.raises(DatasetError, match="regex"):
        load_tasks(DatasetConfig(name=str(path), regex="(unclosed"))


def test_unusable_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_tasks(DatasetConfig(name=str(tmp_path / "missing.parquet")))
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DatasetError, match="expected a .parquet"):
        load_tasks(DatasetConfig(name=str(tmp_path / "x.csv")))
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match="not a readable parquet"):
        load_tasks(DatasetConfig(name=str(tmp_path / "x.parquet")))
    (tmp_path / "x.json").write_text("[{")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_tasks(DatasetConfig(name=str(tmp_path / "x.json")))


def test_published_names_map_to_hub_ids() -> None:
    assert published_name("verified") == "princeton-nlp/SWE-bench_Verified"
    assert published_name("Lite") == "princeton-nlp/SWE-bench_Lite"
    assert published_name("full") == "princeton-nlp/SWE-bench"
    assert published_name("SWE-bench/SWE-bench_Lite") == "SWE-bench/SWE-bench_Lite"
    assert published_name("data/tasks.jsonl") is None
    assert published_name("whatever") is None


def test_published_dataset_without_network_is_a_clear_error() -> None:
    # Offline mode makes the hub client fail at once instead of retrying for minutes.
    code = (
        "from swescale.swebench.datasets import load_tasks, DatasetError\n"
        "from swescale.swebench.config import DatasetConfig\n"
        "try:\n"
        "    load_tasks(DatasetConfig(name='lite', split='test'))\n"
        "except DatasetError as e:\n"
        "    print('ERR', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.stdout.startswith("ERR cannot load published dataset 'princeton-nlp/SWE-bench_Lite'")
    assert "local parquet" in out.stdout


def test_task_from_row_names_the_missing_field() -> None:
    with pytest.raises(ValueError, match="problem_statement"):
        task_from_row({"instance_id": "x", "repo": "o/r", "base_commit": "a" * 40})


def test_mini_dataset_loads_with_filters() -> None:
    tasks = load_tasks(DatasetConfig(name="mini"))
    assert len(tasks) >= 8 and all(t.repo.startswith("swescale-mini/") for t in tasks)
    assert all(t.extra["log_parser"] == "pytest" and t.gold_patch and t.test_patch for t in tasks)
    some = load_tasks(DatasetConfig(name="mini", regex="slugkit", slice=":1"))
    assert [t.id for t in some] == [tasks[0].id]


def test_tasks_command_lists_and_flags_problems(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from swescale.cli import app

    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(_row("o__r-1")) + "\n{bad\n")
    result = CliRunner().invoke(app, ["tasks", "--dataset", str(path), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert rows[0]["instance_id"] == "o__r-1" and "has no spec" in rows[0]["spec_problem"]
    mini = CliRunner().invoke(app, ["tasks", "--dataset", "mini"], env={"COLUMNS": "80"})
    assert mini.exit_code == 0 and "swescale-mini__slugkit-1" in mini.stdout
    assert all(len(line) <= 80 for line in mini.stdout.splitlines())
    flagged = CliRunner().invoke(app, ["tasks", "--dataset", str(path)], env={"COLUMNS": "80"})
    assert "o__r-1" in flagged.stdout and "has no spec" in flagged.stdout
    missing = CliRunner().invoke(app, ["tasks", "--dataset", str(tmp_path / "none.parquet")])
    assert missing.exit_code == 2 and "no such file" in missing.output
