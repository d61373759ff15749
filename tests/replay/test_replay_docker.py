"""Replay and branching with the real agent, the scripted model and real Docker."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from swescale.agent.config import AgentConfig
from swescale.agent.graph import run_agent
from swescale.agent.models.scripted import ScriptedModel
from swescale.patches import patch_key
from swescale.record import BlobStore
from swescale.record.trajectory import TrajectoryRecorder, load_trajectory, make_header
from swescale.replay.branching import pick_branch_step
from swescale.replay.own import replay_trajectory

pytestmark = pytest.mark.docker

# Explore (ls, grep, view), edit, check, submit.
SCRIPT = [
    "```bash\nls slugkit tests\n```",
    "```bash\ngrep -n 're.sub' slugkit/core.py\n```",
    "```bash\nsed -n 20,40p slugkit/core.py\n```",
    "```bash\nsed -i 's/\\[^A-Za-z0-9\\]\", sep/[^A-Za-z0-9]+\", sep/' slugkit/core.py && git diff\n```",
    "```bash\npython -m pytest -q -p no:cacheprovider tests 2>&1 | tail -1\n```",
    "```bash\nsubmit\n```",
]


def _record(task, make, path, blobs, image=None):
    header = make_header(path.stem, task.id, image=image)
    with TrajectoryRecorder(path, header) as rec:
        result = run_agent(
            task, make(), ScriptedModel(SCRIPT), AgentConfig(), recorder=rec, blob_store=blobs
        )
    assert result.exit_status == "submitted", result.error
    return result


def test_replay_reproduces_exactly_then_reports_the_first_divergence(
    mini_by_id, sandbox_factory, mini_images, tmp_path
):
    task = mini_by_id["swescale-mini__slugkit-1"]
    make = sandbox_factory(task)
    blobs = BlobStore(tmp_path / "blobs")
    path = tmp_path / "traj.jsonl"
    result = _record(task, make, path, blobs, image=mini_images(task).tag)
    assert patch_key(result.patch) == patch_key(task.gold_patch)

    report = replay_trajectory(path, lambda header: make())
    assert report.identical, report.summary()
    assert report.steps_replayed == len(SCRIPT) and report.replayed_patch == result.patch
    # The command line: the image named by the header, its environment kept.
    from swescale.cli import app

    cli = CliRunner().invoke(app, ["replay", str(path)])
    assert cli.exit_code == 0, cli.output
    assert "every observation matched" in cli.output and "identical" in cli.output

    # Tamper with step 1's recorded observation: replay names that step first.
    lines = path.read_text().splitlines()
    step1 = json.loads(lines[2])
    assert step1["index"] == 1
    step1["observations"][0]["output"] = "29:    text = something else entirely\n"
    lines[2] = json.dumps(step1)
    path.write_text("\n".join(lines) + "\n")
    report = replay_trajectory(path, lambda header: make())
    assert not report.identical and report.first_divergence.step == 1
    assert report.first_divergence.kind == "observation"
    assert report.mismatched_steps == [1] and report.patch_identical
    assert "first divergence: step 1" in report.summary()


def test_branch_at_the_picked_step_continues_to_the_same_fix(mini_by_id, sandbox_factory, tmp_path):
    task = mini_by_id["swescale-mini__slugkit-1"]
    make = sandbox_factory(task)
    blobs = BlobStore(tmp_path / "blobs")
    original_path = tmp_path / "orig.jsonl"
    _record(task, make, original_path, blobs)
    original = load_trajectory(original_path)
    k = pick_branch_step(original.steps, random.Random(3))
    assert 1 <= k <= 2  # explored (ls, grep, view...) and before the edit at step 3
    sandbox = make()
    sandbox.restore(blobs.get(original.steps[k].state.sha256))
    branch_path = tmp_path / "branch.jsonl"
    header = make_header("branch", task.id, parent=("orig", k))
    with TrajectoryRecorder(branch_path, header) as rec:
        resumed = run_agent(
            task,
            sandbox,
            ScriptedModel(SCRIPT),
            AgentConfig(),
            recorder=rec,
            blob_store=blobs,
            resume_steps=original.steps[: k + 1],
        )
    assert resumed.exit_status == "submitted"
    assert resumed.new_steps == len(SCRIPT) - (k + 1)
    branch = load_trajectory(branch_path)
    assert branch.header["parent"] == ["orig", k]
    # The branch's own record replays from scratch to the same patch.
    report = replay_trajectory(branch_path, make)  # a factory without arguments works too
    assert report.identical, report.summary()


def test_replay_cli_on_a_damaged_record(tmp_path):
    from swescale.cli import app

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "step"}\n')
    result = CliRunner().invoke(app, ["replay", str(bad)])
    assert result.exit_code == 2 and "header" in result.output


def test_replay_of_an_unfinished_trajectory_compares_the_steps_only(
    mini_by_id, sandbox_factory, mini_images, tmp_path
):
    """A trajectory killed mid-run has no footer, so no recorded patch: replay says so
    and exits 0 when every step matches; a damaged line is still an error naming it."""
    from swescale.cli import app

    task = mini_by_id["swescale-mini__slugkit-1"]
    path = tmp_path / "traj.jsonl"
    _record(task, sandbox_factory(task), path, BlobStore(tmp_path / "blobs"), mini_images(task).tag)
    lines = path.read_bytes().split(b"\n")[:-1]  # header, steps, footer
    assert json.loads(lines[-1])["type"] == "footer"

    unfinished = tmp_path / "nofooter.jsonl"
    unfinished.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    result = CliRunner().invoke(app, ["replay", str(unfinished)])
    assert result.exit_code == 0, result.output
    assert "no recorded patch" in result.output and "DIFFERENT" not in result.output
    assert f"replayed {len(SCRIPT)}/{len(SCRIPT)} steps" in result.output

    torn = tmp_path / "torn.jsonl"  # killed while writing its last step
    torn.write_bytes(b"\n".join(lines[:-2]) + b"\n" + lines[-2][: len(lines[-2]) // 2])
    result = CliRunner().invoke(app, ["replay", str(torn)])
    assert result.exit_code == 0, result.output
    assert f"replayed {len(SCRIPT) - 1}/{len(SCRIPT) - 1} steps" in result.output
    assert "cut off" in result.output and "no recorded patch" in result.output

    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\n".join([*lines[:3], b"{not json at all \xff\xfe", *lines[3:]]) + b"\n")
    result = CliRunner().invoke(app, ["replay", str(garbage)])
    assert result.exit_code == 2 and f"{garbage}:4: damaged line" in result.output
