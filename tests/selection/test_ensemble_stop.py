"""``run_ensemble`` stopped mid-way (Ctrl-C, SIGTERM): the instances in flight finish, the
rest are reported interrupted and get no record, and a rerun does them. Pool signals
only (no sandbox), so no container is involved."""

from __future__ import annotations

import threading
from pathlib import Path

from swescale.selection.candidates import candidates_from
from swescale.selection.ensemble import EnsembleConfig, run_ensemble
from swescale.swebench.config import DatasetConfig
from swescale.swebench.datasets import load_tasks


def test_a_stopped_ensemble_reports_the_rest_interrupted_and_a_rerun_does_them(
    tmp_path: Path,
) -> None:
    tasks = load_tasks(DatasetConfig(name="mini"))[:4]
    pools = {
        t.id: candidates_from(t.id, {}, {"sysA": t.gold_patch or "", "sysB": t.gold_patch or ""})
        for t in tasks
    }
    cfg = EnsembleConfig(verifiers=["static", "behaviour"], workers=1)
    stop = threading.Event()
    shown: list[str] = []

    def environment_for(task):
        stop.set()  # the signal comes while the first instance is in flight
        return "no environment: stopped"

    out = tmp_path / "out"
    results = run_ensemble(
        tasks, pools, out, environment_for, cfg, stop, lambda tid, _info: shown.append(tid)
    )
    first, rest = tasks[0].id, [t.id for t in tasks[1:]]
    # The instance in flight saw the stop, said so in its record and was shown.
    assert shown == [first] and results[first]["interrupted"] is True
    assert (out / first / "ensemble.json").exists()
    # The others never started: no record, reported interrupted.
    assert {tid: results[tid] for tid in rest} == {tid: {"interrupted": True} for tid in rest}
    assert not any((out / tid).exists() for tid in rest)

    again = run_ensemble(tasks, pools, out, None, cfg, threading.Event(), None)
    assert all("interrupted" not in again[t.id] for t in tasks)
    assert all((out / t.id / "verdicts" / "static.json").exists() for t in tasks)
