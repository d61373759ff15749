"""Exploration and batch runs on real Docker sandboxes with the real agent graph and
planned scripted trajectories: records, reuse, resume after an interruption, branching,
early stop, budget caps, failures that do not stop the batch."""

from __future__ import annotations

import pytest

from swescale.record.run import read_jsonl
from swescale.record.trajectory import load_trajectory

pytestmark = pytest.mark.docker


def _footers(runner, task_id):
    files = runner.rundir.trajectory_files(task_id)
    return {p.stem: load_trajectory(p) for p in files}


def test_batch_records_trajectories_candidates_and_predictions(make_runner, calc_task):
    runner = make_runner(["scaling.n_parallel=2", "scaling.max_concurrent_sandboxes=2"])
    result = runner.run([calc_task])
    record = result.results[calc_task.id]
    assert record["status"] == "done", record
    records = _footers(runner, calc_task.id)
    assert len(records) == 2 and all(r.finished for r in records.values())
    # plan:mixed: trajectory 0 applies the gold patch, trajectory 1 the known-wrong one.
    patches = {tid: r.footer["patch"] for tid, r in records.items()}
    assert "+    return a + b" in patches["calc__calc-1.r0.t00"]
    assert "+    return b - a" in patches["calc__calc-1.r0.t01"]
    assert (
        records["calc__calc-1.r0.t00"].header["seed"]
        != records["calc__calc-1.r0.t01"].header["seed"]
    )
    assert record["candidates"] == 2
    cands = read_jsonl(runner.rundir.candidates_path(calc_task.id))
    assert sorted(len(c["trajectory_ids"]) for c in cands) == [1, 1]
    predictions = read_jsonl(runner.rundir.predictions_path)
    assert [p["instance_id"] for p in predictions] == [calc_task.id]
    assert predictions[0]["model_patch"] in patches.values()
    assert (runner.rundir.selection_path(calc_task.id)).exists()
    # Every step has a repository state in the task's blob store.
    blobs = runner.rundir.blobs_dir(calc_task.id)
    for rec in records.values():
        assert all(s.state and (blobs / s.state.sha256).exists() for s in rec.steps)
    ledger = runner.ledger.task_cost(calc_task.id)
    assert ledger.tokens_out > 0 and ledger.sandbox_seconds > 0


def test_rerun_reuses_finished_work(make_runner, calc_task):
    first = make_runner(["scaling.n_parallel=2"], run_id="reuse")
    first.run([calc_task])
    before = {p.name: p.read_bytes() for p in first.rundir.trajectory_files(calc_task.id)}
    again = make_runner(["scaling.n_parallel=2"], run_id="reuse")
    result = again.run([calc_task])
    assert result.results[calc_task.id]["status"] == "done"
    after = {p.name: p.read_bytes() for p in again.rundir.trajectory_files(calc_task.id)}
    assert after == before
    assert len(read_jsonl(again.rundir.predictions_path)) == 1


def _interrupted_run(make_runner, calc_task, run_id):
    """A run stopped at its third model turn, as Ctrl-C stops it: both trajectories
    have asked for their first turn and one has recorded its first step."""
    from swescale.scaling.progress import NullProgress

    class StopAfter(NullProgress):
        def __init__(self) -> None:
            self.turns = 0
            self.runner = None

        def spent(self, task_id, cost):
            self.turns += 1
            if self.turns >= 3:
                self.runner.stop.set()

    progress = StopAfter()
    runner = make_runner(["scaling.n_parallel=2"], run_id=run_id, progress=progress)
    progress.runner = runner
    return runner, runner.run([calc_task])


def test_interrupted_trajectories_resume_from_their_last_step(make_runner, calc_task):
    """Stop the run after the first model turns (as Ctrl-C does); the records stay
    unfinished; a new runner finishes them without redoing or losing a step."""
    runner, result = _interrupted_run(make_runner, calc_task, "resume")
    assert result.interrupted
    partial = _footers(runner, calc_task.id)
    assert partial and not all(r.finished for r in partial.values())
    assert runner.rundir.result(calc_task.id) is None
    steps_before = {tid: len(r.steps) for tid, r in partial.items()}

    resumed = make_runner(["scaling.n_parallel=2"], run_id="resume")
    result = resumed.run([calc_task])
    assert result.results[calc_task.id]["status"] == "done"
    done = _footers(resumed, calc_task.id)
    assert len(done) == 2 and all(r.finished for r in done.values())
    for tid, rec in done.items():
        assert [s.index for s in rec.steps] == list(range(len(rec.steps)))
        assert len(rec.steps) == 3  # look, fix, submit: nothing repeated, nothing lost
        assert rec.footer["exit_status"] == "submitted"
        if tid in steps_before:
            assert len(rec.steps) >= steps_before[tid]
    assert "+    return a + b" in done["calc__calc-1.r0.t00"].footer["patch"]


def test_a_resume_without_its_repository_state_starts_over(make_runner, calc_task):
    import shutil

    runner, result = _interrupted_run(make_runner, calc_task, "lostblobs")
    assert result.interrupted
    assert any(load_trajectory(p).steps for p in runner.rundir.trajectory_files(calc_task.id))
    shutil.rmtree(runner.rundir.blobs_dir(calc_task.id))
    resumed = make_runner(["scaling.n_parallel=2"], run_id="lostblobs")
    assert resumed.run([calc_task]).results[calc_task.id]["status"] == "done"
    done = _footers(resumed, calc_task.id)
    assert len(done) == 2 and all(r.finished and len(r.steps) == 3 for r in done.values())
    folder = resumed.rundir.trajectories_dir(calc_task.id)
    assert list(folder.glob("*.damaged"))  # the unusable records are kept aside


def test_second_round_branches_from_the_archive(make_runner, calc_task):
    runner = make_runner(
        [
            "scaling.n_parallel=1",
            "scaling.rounds=2",
            "scaling.branch_probability=1.0",
            "model.script=plan:gold",
        ],
        run_id="branch",
    )
    result = runner.run([calc_task])
    assert result.results[calc_task.id]["status"] == "done"
    records = _footers(runner, calc_task.id)
    child = records["calc__calc-1.r1.t00"]
    parent_id, k = child.header["parent"]
    assert parent_id == "calc__calc-1.r0.t00"
    parent = records[parent_id]
    # The branch's record is complete on its own: the parent's first k+1 steps, then its own.
    assert [s.message for s in child.steps[: k + 1]] == [s.message for s in parent.steps[: k + 1]]
    assert child.finished and "+    return a + b" in child.footer["patch"]
    # Round 1 was prompted with round 0's patch (EvoScale-style feedback).
    feedback = (runner.rundir.task_dir(calc_task.id) / "feedback" / "round-1.md").read_text()
    assert "Attempt 1" in feedback and "+    return a + b" in feedback
    assert child.header["feedback_text"] == feedback
    assert records[parent_id].header["feedback_text"] == ""


def test_early_stop_once_trajectories_agree(make_runner, calc_task):
    runner = make_runner(
        [
            "scaling.n_parallel=4",
            "scaling.max_concurrent_sandboxes=1",
            "scaling.early_stop_agree=2",
            "model.script=plan:gold",
        ],
        run_id="early",
    )
    record = runner.run([calc_task]).results[calc_task.id]
    assert record["trajectories"] == {"ran": 2, "skipped": 2}
    assert "early stop" in record["stop_reason"]
    assert len(runner.rundir.trajectory_files(calc_task.id)) == 2


def test_budget_cap_skips_the_rest_of_the_task(make_runner, calc_task):
    runner = make_runner(
        ["scaling.n_parallel=3", "scaling.max_concurrent_sandboxes=1", "budget.task_tokens=1"],
        run_id="budget",
    )
    record = runner.run([calc_task]).results[calc_task.id]
    # The first trajectory spends past the cap at its first turn and stops ("budget");
    # the others never start.
    assert record["trajectories"] == {"ran": 1, "skipped": 2}
    (rec,) = _footers(runner, calc_task.id).values()
    assert rec.footer["exit_status"] == "budget"


def test_a_failing_task_does_not_stop_the_batch(make_runner, calc_task, calc_image):
    bad = calc_task.model_copy(update={"id": "calc__broken-1"})

    def image_for(task):
        if task.id == bad.id:
            return "swescale/no-such-image:missing"
        return calc_image[0]

    runner = make_runner(["scaling.n_parallel=1"], run_id="fail", image_for=image_for)
    result = runner.run([bad, calc_task])
    assert result.results[bad.id]["status"] == "failed"
    assert "no-such-image" in result.results[bad.id]["reason"]
    assert result.results[calc_task.id]["status"] == "done"
    failures = runner.rundir.failures()
    assert any(f["task_id"] == bad.id for f in failures)
    assert runner.rundir.run_json()["tasks"][bad.id]["status"] == "failed"


def test_a_model_error_ends_the_trajectory_not_the_batch(make_runner, calc_task):
    from swescale.agent.models.scripted import ScriptedModel

    def model_for(task, spec):
        # A script with no turns: the model fails at its first request.
        return ScriptedModel([])

    runner = make_runner(["scaling.n_parallel=1"], run_id="modelerr", model_for=model_for)
    record = runner.run([calc_task]).results[calc_task.id]
    assert record["status"] == "done"
    assert list(record["exit_statuses"].values()) == ["model_error"]
    assert record["candidates"] == 0 and record["selected"] is None
    assert read_jsonl(runner.rundir.predictions_path)[0]["model_patch"] == ""
