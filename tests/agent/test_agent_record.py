"""The trajectory record: round trip, crash tolerance, and refusals of bad files."""

from __future__ import annotations

import json

import pytest

from swescale.record.trajectory import (
    HEADER_FIELDS,
    RecordError,
    TrajectoryRecorder,
    load_trajectory,
    make_header,
)
from swescale.types import Action, Observation, StateRef, Step


def _step(index: int) -> Step:
    return Step(
        index=index,
        message={"role": "assistant", "content": f"```bash\necho {index}\n```"},
        actions=[Action(tool="bash", args={"command": f"echo {index}"})],
        observations=[Observation(output=f"{index}\n", exit_code=0, seconds=0.01)],
        state=StateRef(sha256="ab" * 32, size=index),
        tokens_in=10 + index,
        tokens_out=3,
        seconds=0.5,
    )


def test_round_trip_header_steps_footer(tmp_path):
    path = tmp_path / "t.jsonl"
    header = make_header("traj-1", "task-1", parent=("traj-0", 3), seed=7, model="m")
    with TrajectoryRecorder(path, header) as rec:
        for i in range(3):
            rec.write_step(_step(i))
        rec.write_footer("submitted", "diff --git a/x b/x\n", {"steps": 3})
    loaded = load_trajectory(path)
    assert set(HEADER_FIELDS) <= set(loaded.header)
    assert loaded.header["type"] == "header"
    assert loaded.header["parent"] == ["traj-0", 3]
    assert [s.model_dump() for s in loaded.steps] == [_step(i).model_dump() for i in range(3)]
    assert loaded.footer["exit_status"] == "submitted"
    assert loaded.footer["finished_at"]
    assert not loaded.torn
    trajectory = loaded.to_trajectory()
    assert trajectory.parent == ("traj-0", 3)
    assert trajectory.patch.startswith("diff --git")
    kinds = [json.loads(line)["type"] for line in path.read_text().splitlines()]
    assert kinds == ["header", "step", "step", "step", "footer"]


def test_a_footer_says_when_its_patch_is_not_exact(tmp_path):
    note = "patch not exact: bytes that are not UTF-8 in a.py are U+FFFD in the patch"
    for name, notes in (("exact", []), ("inexact", [note])):
        path = tmp_path / f"{name}.jsonl"
        with TrajectoryRecorder(path, make_header(name, "task-1")) as rec:
            rec.write_footer("submitted", "diff --git a/a.py b/a.py\n", {}, patch_notes=notes)
        footer = load_trajectory(path).footer
        assert footer.get("patch_notes", []) == notes
        assert ("patch_notes" in footer) == bool(notes)


def test_torn_last_line_is_ignored_and_cut_on_reopen(tmp_path):
    path = tmp_path / "t.jsonl"
    with TrajectoryRecorder(path, make_header("traj-1", "task-1")) as rec:
        rec.write_step(_step(0))
        rec.write_step(_step(1))
    # A crash in the middle of writing step 2: half a line, no newline.
    line = json.dumps({"type": "step", **_step(2).model_dump(mode="json")})
    with open(path, "a") as fh:
        fh.write(line[: len(line) // 2])
    loaded = load_trajectory(path)
    assert loaded.torn
    assert [s.index for s in loaded.steps] == [0, 1]
    assert loaded.footer is None

    with TrajectoryRecorder(path, make_header("traj-1", "task-1")) as rec:
        assert rec.steps_recorded == 2
        rec.write_step(_step(2))
        rec.write_footer("step_limit", "", {})
    again = load_trajectory(path)
    assert not again.torn
    assert [s.index for s in again.steps] == [0, 1, 2]
    assert again.finished


def test_complete_json_without_newline_counts_as_torn(tmp_path):
    path = tmp_path / "t.jsonl"
    with TrajectoryRecorder(path, make_header("t", "task")) as rec:
        rec.write_step(_step(0))
    with open(path, "a") as fh:
        fh.write(json.dumps({"type": "step", **_step(1).model_dump(mode="json")}))
    loaded = load_trajectory(path)
    assert loaded.torn and len(loaded.steps) == 1


def test_damage_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "t.jsonl"
    with TrajectoryRecorder(path, make_header("t", "task")) as rec:
        rec.write_step(_step(0))
        rec.write_step(_step(1))
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:20]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match=":2: damaged line"):
        load_trajectory(path)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty trajectory file"),
        ('{"type": "step", "index": 0, "message": {}}\n', "first line must be the header"),
        ('{"type": "header"}\n{"type": "nonsense"}\n', "unknown line type"),
        ('{"type": "header"}\n{"type": "step", "index": 1, "message": {}}\n', "expected 0"),
        ('{"type": "header"}\n{"type": "step", "index": "x"}\n', "invalid step"),
        (
            '{"type": "header"}\n{"type": "footer"}\n{"type": "step", "index": 0, "message": {}}\n',
            "after the footer",
        ),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(RecordError, match=message):
        load_trajectory(path)


def test_missing_file_is_a_record_error(tmp_path):
    with pytest.raises(RecordError, match="cannot read"):
        load_trajectory(tmp_path / "nope.jsonl")


def test_recorder_refuses_other_trajectory_out_of_order_and_after_footer(tmp_path):
    path = tmp_path / "t.jsonl"
    with TrajectoryRecorder(path, make_header("a", "task")) as rec:
        with pytest.raises(RecordError, match="expected 0"):
            rec.write_step(_step(1))
        rec.write_footer("submitted", "", {})
        with pytest.raises(RecordError, match="already has a footer"):
            rec.write_step(_step(0))
    with pytest.raises(RecordError, match="holds trajectory 'a'"):
        TrajectoryRecorder(path, make_header("b", "task"))
    with pytest.raises(RecordError, match="needs trajectory_id"):
        TrajectoryRecorder(tmp_path / "x.jsonl", {"task_id": "t"})


def test_bad_parent_is_refused():
    with pytest.raises(RecordError, match="parent"):
        make_header("a", "t", parent=["only-one"])


def test_torn_header_starts_over(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"type": "header", "trajectory_id": "a", "ta')
    with TrajectoryRecorder(path, make_header("a", "task")) as rec:
        assert rec.steps_recorded == 0
        rec.write_step(_step(0))
    assert load_trajectory(path).header["trajectory_id"] == "a"
