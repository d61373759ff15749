"""The parts of the Ray executor that need no Ray: records shipped from a node to the run
directory, the run store (fencing of superseded attempts, the one ledger, stop), the
cluster-wide endpoint counter, and the executor settings in the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swescale.agent.config import ModelConfig
from swescale.config import ConfigError, load_config
from swescale.record.run import RunDir
from swescale.scaling.cluster.balance import BalancedModel, LeastLoaded
from swescale.scaling.cluster.mirror import (
    FileChange,
    MirrorError,
    TaskMirror,
    apply_changes,
    read_task_files,
)
from swescale.scaling.cluster.node import DirectStore, NodeSession, replay_events
from swescale.scaling.cluster.store import RunStore, StaleAttempt
from swescale.scaling.config import BudgetConfig
from swescale.types import Cost

TASK = "owner__repo-1"


def _line(index: int) -> str:
    return json.dumps({"type": "step", "index": index}) + "\n"


# ------------------------------------------------------------------ the mirror
def test_appends_ship_complete_lines_only(tmp_path: Path) -> None:
    node, driver = tmp_path / "node", tmp_path / "driver"
    mirror = TaskMirror(node, lambda changes: apply_changes(driver, changes))
    record = node / "trajectories" / "t0.jsonl"
    record.parent.mkdir(parents=True)
    record.write_text(_line(0) + '{"type": "st')  # a line being written
    mirror.flush()
    assert (driver / "trajectories" / "t0.jsonl").read_text() == _line(0)
    with record.open("a") as fh:
        fh.write('ep", "index": 1}\n' + _line(2))
    changes = mirror.scan()
    assert [(c.op, c.offset) for c in changes] == [("append", len(_line(0)))]
    apply_changes(driver, changes)
    shipped = (driver / "trajectories" / "t0.jsonl").read_text().splitlines()
    assert [json.loads(x)["index"] for x in shipped] == [0, 1, 2]
    assert mirror.scan() == []  # nothing new: nothing shipped


def test_rewrites_deletes_and_hidden_files(tmp_path: Path) -> None:
    node, driver = tmp_path / "node", tmp_path / "driver"
    mirror = TaskMirror(node, lambda changes: apply_changes(driver, changes))
    (node / "blobs").mkdir(parents=True)
    (node / "blobs" / "abc").write_bytes(b"\x00\x01state")
    (node / "blobs" / ".tmp-123").write_bytes(b"half a blob")
    (node / "selection.json").write_text('{"a": 1}')
    record = node / "trajectories" / "t0.jsonl"
    record.parent.mkdir()
    record.write_text(_line(0) + _line(1))
    mirror.flush()
    assert read_task_files(driver) == {
        "blobs/abc": b"\x00\x01state",
        "selection.json": b'{"a": 1}',
        "trajectories/t0.jsonl": (_line(0) + _line(1)).encode(),
    }
    # A damaged record is set aside and started over (new file, shorter): shipped whole.
    record.rename(record.with_name("t0.jsonl.damaged"))
    record.write_text(_line(0))
    (node / "selection.json").write_text('{"a": 2}')
    (node / "blobs" / "abc").unlink()
    mirror.flush()
    files = read_task_files(driver)
    assert files["trajectories/t0.jsonl"] == _line(0).encode()
    assert files["trajectories/t0.jsonl.damaged"] == (_line(0) + _line(1)).encode()
    assert files["selection.json"] == b'{"a": 2}'
    assert "blobs/abc" not in files


def test_a_repeated_append_is_applied_once_and_a_gap_is_sent_whole(tmp_path: Path) -> None:
    driver = tmp_path / "driver"
    apply_changes(driver, [FileChange("t.jsonl", "put", _line(0).encode())])
    again = FileChange("t.jsonl", "append", _line(1).encode(), len(_line(0)))
    assert apply_changes(driver, [again, again]) == []
    assert (driver / "t.jsonl").read_text() == _line(0) + _line(1)
    gap = FileChange("t.jsonl", "append", _line(5).encode(), 10_000)
    assert apply_changes(driver, [gap]) == ["t.jsonl"]

    # The mirror answers a gap with the whole file.
    node = tmp_path / "node"
    record = node / "trajectories" / "t.jsonl"
    record.parent.mkdir(parents=True)
    record.write_text(_line(0))
    other = tmp_path / "other"
    mirror = TaskMirror(node, lambda changes: apply_changes(other, changes))
    mirror.seed({"trajectories/t.jsonl": _line(0).encode()})  # believes the driver has it
    with record.open("a") as fh:
        fh.write(_line(1))
    mirror.flush()
    assert (other / "trajectories" / "t.jsonl").read_text() == _line(0) + _line(1)


def test_a_record_rewritten_in_place_is_shipped_whole(tmp_path: Path) -> None:
    node, driver = tmp_path / "node", tmp_path / "driver"
    mirror = TaskMirror(node, lambda changes: apply_changes(driver, changes))
    record = node / "trajectories" / "t.jsonl"
    record.parent.mkdir(parents=True)
    record.write_text(_line(0))
    mirror.flush()
    with record.open("r+") as fh:  # same file, other content, longer
        fh.write(json.dumps({"type": "step", "index": 7}) + "\n" + _line(8))
    (change,) = mirror.scan()
    assert change.op == "put"
    apply_changes(driver, [change])
    assert (driver / "trajectories" / "t.jsonl").read_text() == record.read_text()


@pytest.mark.parametrize("path", ["../run.json", "/etc/passwd", "a/../../b", ""])
def test_paths_outside_the_task_directory_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(MirrorError, match="not inside the task directory"):
        apply_changes(tmp_path, [FileChange(path, "put", b"x")])


# ------------------------------------------------------------------ the store
def _store(tmp_path: Path, **budget: float) -> tuple[RunStore, RunDir]:
    cfg = load_config("scripted")
    rundir = RunDir.open(tmp_path / "runs", "r1", cfg)
    return RunStore(str(rundir.root), BudgetConfig(**budget)), rundir


def _session(store: RunStore, tmp_path: Path, attempt: str, **kw) -> NodeSession:
    return NodeSession(
        DirectStore(store),
        TASK,
        attempt,
        budget=store.ledger.budget,
        root=tmp_path / attempt / "r1",
        **kw,
    )


def test_a_resumed_attempt_starts_from_what_the_first_shipped(tmp_path: Path) -> None:
    store, rundir = _store(tmp_path)
    first = _session(store, tmp_path, "a1")
    first.begin()
    record = first.rundir.trajectory_path(TASK, "t0")
    record.parent.mkdir(parents=True)
    record.write_text(_line(0) + _line(1))
    first.flush()
    record.write_text(_line(0) + _line(1) + _line(2))  # never shipped: the node dies

    second = _session(store, tmp_path, "a2")
    second.begin()
    local = second.rundir.trajectory_path(TASK, "t0")
    assert local.read_text() == _line(0) + _line(1)
    with local.open("a") as fh:
        fh.write(_line(2))
    second.flush()
    assert rundir.trajectory_path(TASK, "t0").read_text() == _line(0) + _line(1) + _line(2)
    assert rundir.run_json()["tasks"][TASK]["attempts"] == 2

    # The first attempt was superseded: what it ships is dropped, its result refused,
    # and it is told to stop.
    stopped = []
    first.on_stop = lambda: stopped.append(True)
    with record.open("a") as fh:
        fh.write(_line(3))
    first.flush()
    assert first.stale and stopped == [True]
    assert 'index": 3' not in rundir.trajectory_path(TASK, "t0").read_text()
    with pytest.raises(StaleAttempt):
        first.rundir.write_result(TASK, {"task_id": TASK, "status": "done"})
    assert rundir.result(TASK) is None
    second.rundir.write_result(TASK, {"task_id": TASK, "status": "done"})
    assert rundir.result(TASK) == {"task_id": TASK, "status": "done"}


def test_run_level_records_go_to_the_driver(tmp_path: Path) -> None:
    store, rundir = _store(tmp_path)
    session = _session(store, tmp_path, "a1")
    session.begin()
    node = session.rundir
    assert node.add_prediction(TASK, "m", "diff") is True
    assert node.add_prediction(TASK, "m", "diff") is False
    node.record_failure(TASK, "trajectory", "boom", trajectory="t1")
    node.set_task_state(TASK, status="running")
    node.update_run_json(lambda r: r.setdefault("image_digests", {}).update({TASK: "sha"}))
    assert [(f["task_id"], f["trajectory"]) for f in rundir.failures()] == [(TASK, "t1")]
    assert rundir.prediction_ids() == {TASK}
    info = rundir.run_json()
    assert info["tasks"][TASK]["status"] == "running"
    assert info["image_digests"][TASK] == "sha"
    assert not (session.rundir.root / "run.json").exists()  # nothing run-level on the node


def test_caps_hold_across_nodes(tmp_path: Path) -> None:
    """Two nodes charge one task: each stays under the cap alone, together they reach it."""
    store, _ = _store(tmp_path, task_tokens=1000)
    a = _session(store, tmp_path, "a1")
    b = _session(store, tmp_path, "b1")
    a.ledger.charge(TASK, Cost(tokens_in=600), "agent")
    assert a.ledger.exceeded(TASK) is None
    b.ledger.charge(TASK, Cost(tokens_in=400), "agent")
    assert "task tokens" in (b.ledger.exceeded(TASK) or "")
    assert "task tokens" in (a.ledger.exceeded(TASK) or "")
    assert a.ledger.task_cost(TASK).tokens_in == 1000
    assert store.save_ledger()["by_task"][TASK]["total"]["tokens_in"] == 1000


def test_charges_are_batched_and_priced_once(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    calls: list[str] = []

    class Counting(DirectStore):
        def call(self, method, *args):
            calls.append(method)
            return super().call(method, *args)

    session = NodeSession(
        Counting(store),
        TASK,
        "a1",
        budget=BudgetConfig(),
        prices={"m": (1.0, 2.0)},
        root=tmp_path / "node",
    )
    for _ in range(5):
        charged = session.ledger.charge(TASK, Cost(tokens_in=1_000_000, tokens_out=0), model="m")
        assert charged.dollars == 1.0
        assert session.ledger.exceeded(TASK) is None  # no caps: no call
    assert calls == []
    session.flush()
    assert calls == ["sync"]
    assert store.ledger.task_cost(TASK).dollars == 5.0


def test_stop_reaches_running_tasks_and_progress_reaches_the_driver(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    stopped: list[bool] = []
    session = _session(store, tmp_path, "a1", on_stop=lambda: stopped.append(True))
    session.begin()
    session.progress.trajectories_planned(TASK, 2)
    session.progress.spent(TASK, Cost(tokens_out=7))
    session.flush()
    assert stopped == []
    store.stop()
    session.flush()
    assert stopped == [True]

    seen: list[tuple] = []

    class Sink:
        def trajectories_planned(self, task_id, count):
            seen.append(("planned", task_id, count))

        def spent(self, task_id, cost):
            seen.append(("spent", task_id, cost.tokens_out))

    replay_events(store.drain_events(), Sink())
    assert seen == [("planned", TASK, 2), ("spent", TASK, 7)]
    assert store.drain_events() == []


# ------------------------------------------------------------------ balancing
def test_least_loaded_counts_every_client() -> None:
    counter = LeastLoaded(3)
    first = [counter.acquire() for _ in range(3)]
    assert sorted(first) == [0, 1, 2]  # one each before any gets a second
    counter.release(first[0])
    assert counter.acquire() == first[0]  # the only one with a free slot
    assert counter.acquire([2]) == 2  # restricted to the ready ones
    assert counter.counts()["in_flight"][2] == 2
    with pytest.raises(ValueError):
        LeastLoaded(0)


def test_balanced_clients_share_one_count() -> None:
    """Two nodes' clients over the same two servers: the second node's request goes to
    the server the first node is not using, and a cooled-down server is avoided."""
    counter = LeastLoaded(2)
    cfg = ModelConfig(
        kind="openai", name="m", endpoints=["http://127.0.0.1:1", "http://127.0.0.1:2"]
    )
    node_a = BalancedModel(cfg, cfg.endpoints, counter.acquire, counter.release)
    node_b = BalancedModel(cfg, cfg.endpoints, counter.acquire, counter.release)
    try:
        ea = node_a._acquire()
        eb = node_b._acquire()
        assert ea.url != eb.url
        node_a._release(ea, failed=True)  # ea cools down on node a
        assert counter.counts()["in_flight"] == [0, 1] if eb.url.endswith(":2/v1") else [1, 0]
        again = node_a._acquire()
        assert again.url == eb.url  # the cooled-down one is skipped although less loaded
        node_a._release(again, failed=False)
        node_b._release(eb, failed=False)
        assert counter.counts()["in_flight"] == [0, 0]
        assert sum(counter.counts()["served"]) == 3
    finally:
        node_a.close()
        node_b.close()


# ------------------------------------------------------------------ config
def test_executor_settings_do_not_change_the_digest() -> None:
    local = load_config("scripted")
    on_ray = load_config(
        "scripted",
        [
            "scaling.executor=ray",
            "scaling.ray.address=10.0.0.1:6379",
            "scaling.ray.placement=spread",
            "scaling.ray.resources_per_task={docker: 2}",
        ],
    )
    assert on_ray.digest() == local.digest()
    assert load_config("scripted", ["scaling.n_parallel=9"]).digest() != local.digest()


@pytest.mark.parametrize(
    "override, message",
    [
        ("scaling.executor=slurm", "executor"),
        ("scaling.ray.address=ray://head:10001", "Ray Client"),
        ("scaling.ray.placement=random", "placement"),
        ("scaling.ray.sync_interval=0", "sync_interval"),
        ("scaling.ray.storage=s3", "storage"),
        ("scaling.ray.nodes=3", "nodes"),
    ],
)
def test_bad_executor_settings_are_clear_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("scripted", [override])


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch) -> None:
    import sys

    from swescale.scaling.cluster.executor import ClusterError, import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ClusterError, match=r"swescale\[ray\]"):
        import_ray()


def test_an_address_where_nothing_listens_is_a_clear_error() -> None:
    import socket

    from swescale.scaling.cluster import ClusterError
    from swescale.scaling.cluster.executor import check_reachable

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nothing listens there
    with pytest.raises(ClusterError, match="no Ray head node answers"):
        check_reachable(f"127.0.0.1:{port}")


# ------------------------------------------------------------------ executor on resume
def _finished_run(tmp_path: Path, executor: str, done: int = 2, total: int = 2) -> RunDir:
    """A run directory as a session with ``executor`` leaves it: ``done`` of ``total``
    tasks finished."""
    from swescale.scaling.launcher import _record_executor

    cfg = load_config("scripted", [f"runs_dir={tmp_path}", "dataset.slice=0:2"])
    rundir = RunDir.open(tmp_path, "r1", cfg)
    tasks = {f"t{i}": {"status": "done" if i < done else "running"} for i in range(total)}
    rundir.update_run_json(lambda r: r.update(tasks=tasks, total_tasks=total))
    rundir.update_run_json(lambda r: _record_executor(r, executor))
    return rundir


def test_which_executor_ran_is_part_of_what_a_resume_checks(tmp_path: Path) -> None:
    from swescale.scaling.launcher import ExecutorChanged, executor_change, executor_of

    info = _finished_run(tmp_path, "local").run_json()
    assert executor_of(info) == "local" and executor_change(info, "local") == ""
    with pytest.raises(
        ExecutorChanged,
        match="finished with executor=local .2 of 2 tasks done.; executor=ray would run nothing",
    ):
        executor_change(info, "ray")
    unfinished = {**info, "tasks": {"t0": {"status": "done"}, "t1": {"status": "running"}}}
    note = executor_change(unfinished, "ray")
    assert "run with executor=local (1 of 2 tasks done); resuming it with executor=ray" in note
    # Runs recorded before the executor was kept: a cluster entry means Ray.
    assert executor_of({"sessions": 1, "cluster": {"executor": "ray"}}) == "ray"
    assert executor_of({"sessions": 1}) == "local" and executor_of({}) == ""


def test_a_finished_local_run_resumed_on_ray_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from swescale.cli import app

    rundir = _finished_run(tmp_path, "local")
    command = [
        "run", "-c", "scripted", "-o", f"runs_dir={tmp_path}", "-o", "dataset.slice=0:2",
        "-o", "scaling.executor=ray", "-o", "scaling.ray.address=127.0.0.1:1",
        "--run-id", "r1", "--no-live", "--no-report",
    ]  # fmt: skip
    result = CliRunner().invoke(app, command, env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "cannot run: run r1 finished with executor=local" in result.output
    assert "give another --run-id" in result.output
    info = rundir.run_json()
    assert info["sessions"] == 1 and info["executor"] == "local"  # no session was opened
