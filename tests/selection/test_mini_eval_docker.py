"""Selector accuracy on mini-benchmark tasks, end to end (real sandboxes and grading)."""

from __future__ import annotations

import pytest

from swescale.record.task import read_task_record, task_dirs
from swescale.selection.mini_eval import produced_patches, run_mini_eval

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_produced_mix_is_seeded(mini_by_id):
    import random

    task = mini_by_id["swescale-mini__confkit-1"]
    a = produced_patches(task, random.Random("0:x"))
    assert a == produced_patches(task, random.Random("0:x")) and a


def test_selectors_on_two_mini_tasks(tmp_path):
    ids = ["swescale-mini__slugkit-1", "swescale-mini__confkit-1"]
    rows = {r["selector"]: r for r in run_mini_eval(tmp_path, ids, seed=0)}
    assert rows["test_vote"]["labelled"] == 2
    for name in ("test_vote", "hybrid", "calibrated"):
        assert rows[name]["accuracy"] >= rows["majority"]["accuracy"]
    records = {r.task_id: r for r in map(read_task_record, task_dirs(tmp_path))}
    for record in records.values():
        labels = [c.resolved for c in record.candidates]
        assert None not in labels and any(labels)
        for cand in record.candidates:
            repro = cand.verdicts["repro"]
            # Whatever resolves passes the reproduction tests; broken patches are failed.
            if cand.resolved:
                assert repro.passed is True
            if repro.details.get("applied") is False:
                assert cand.resolved is False and repro.score == 0.0
