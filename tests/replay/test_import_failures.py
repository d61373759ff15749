"""Trajectories that cannot be read: each is its own error, recorded once however often
the import is rerun (no sandbox is ever opened for them)."""

from __future__ import annotations

import json
import threading

from swescale.config import RunConfig
from swescale.record import RunDir
from swescale.scaling import imported


def _never(*_args, **_kwargs):
    raise AssertionError("no sandbox or image for a trajectory that cannot be read")


def test_unreadable_trajectories_are_recorded_once_across_reruns(tmp_path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "list.traj.json").write_text(json.dumps([1, 2]))
    (inputs / "cut.traj.json").write_text('{"messages": [{"role": "sys')
    (inputs / "bytes.traj.json").write_bytes(b"\xff\xfe\x00garbage")
    sources, problems = imported.discover([inputs])
    assert not problems and len(sources) == 3
    rundir = RunDir.open(tmp_path / "runs", "imp", RunConfig())
    for _ in range(2):
        result = imported.Importer(
            rundir, {}, image_for=_never, open_sandbox=_never, stop=threading.Event()
        ).run(sources)
        assert [o.status for o in result.outcomes] == ["error"] * 3
        # Each error names its file once, at the start.
        for outcome in result.outcomes:
            assert outcome.error.count(str(outcome.source.path)) <= 1
    assert len(rundir.failures()) == 3
