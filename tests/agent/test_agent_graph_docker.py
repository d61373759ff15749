"""The real agent graph, driven by the scripted model, on real Docker sandboxes."""

from __future__ import annotations

import json

import pytest

from swescale.agent.config import AgentConfig
from swescale.agent.graph import messages_from_steps, run_agent
from swescale.agent.models.scripted import ScriptedModel
from swescale.agent.prompts import render_prompts
from swescale.agent.tools import REPEATED_CALL_NOTE
from swescale.record import BlobStore
from swescale.record.trajectory import TrajectoryRecorder, load_trajectory, make_header
from swescale.types import Task

pytestmark = pytest.mark.docker

TASK = Task(
    id="calc__1",
    repo="demo/calc",
    base_commit="",
    problem_statement="add(2, 3) returns -1 instead of 5.",
    gold_patch="SECRET GOLD",
    test_patch="SECRET TEST",
)


def bash(command: str) -> str:
    return f"Next step.\n```bash\n{command}\n```"


def call(name: str, **arguments) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


FIX_SCRIPT = [
    bash("cat calc.py"),
    bash("sed -i 's/return a - b/return a + b/' calc.py"),
    bash("printf 'fixed add\\n' > NOTES.txt"),
    bash("python3 -c 'from calc import add; assert add(2, 3) == 5; print(\"ok\")'"),
    bash("sed -i 's/A tiny calculator/A small calculator/' calc.py"),
    bash("submit"),
]


def test_scripted_text_mode_fixes_the_bug_and_submits(repo_sandbox, tmp_path):
    recorder = TrajectoryRecorder(tmp_path / "t.jsonl", make_header("t1", TASK.id))
    result = run_agent(
        TASK,
        repo_sandbox,
        ScriptedModel(FIX_SCRIPT),
        AgentConfig(),
        recorder=recorder,
        blob_store=BlobStore(tmp_path / "blobs"),
    )
    recorder.close()
    assert result.exit_status == "submitted", result.error
    assert "+    return a + b" in result.patch and "-    return a - b" in result.patch
    assert "NOTES.txt" in result.patch  # new files are part of the patch
    assert len(result.steps) == 6 and result.new_steps == 6
    assert "def add(a, b):" in result.steps[0].observations[0].output
    assert result.steps[3].observations[0].output.strip() == "ok"
    assert result.totals.tokens_out > 0
    # The record: every step with the repository state after it, and the footer.
    loaded = load_trajectory(tmp_path / "t.jsonl")
    assert [s.model_dump() for s in loaded.steps] == [s.model_dump() for s in result.steps]
    assert loaded.footer["exit_status"] == "submitted" and loaded.footer["patch"] == result.patch
    assert loaded.steps[0].state.size == 0  # `cat` changed nothing
    assert loaded.steps[1].state.sha256 != loaded.steps[2].state.sha256
    assert all((tmp_path / "blobs" / s.state.sha256).exists() for s in loaded.steps)


def test_scripted_native_mode_uses_every_tool_with_clear_errors(repo_sandbox):
    script = [
        call("search", pattern="def add"),
        call("view", path="calc.py", view_range=[4, 5]),
        call("str_replace", path="calc.py", old_str="return a", new_str="return b"),
        call("str_replace", path="calc.py", old_str="return a ^ b", new_str="x"),
        call("str_replace", path="calc.py", old_str="return a - b", new_str="return a + b"),
        call("create", path="pkg/new_module.py", file_text="VALUE = 1\n"),
        call("create", path="calc.py", file_text="overwrite?"),
        {"tool_calls": [{"name": "bash", "arguments": '{"command": "ls'}]},
        call("view", path="../etc/passwd"),
        call("view", path="missing.py"),
        call("view", path="."),
        call("bash", command="git status --short"),
        call("submit"),
    ]
    result = run_agent(TASK, repo_sandbox, ScriptedModel(script), AgentConfig(), tool_mode="native")
    assert result.exit_status == "submitted", result.error
    obs = [s.observations[0] for s in result.steps]
    assert "calc.py:4:def add(a, b):" in obs[0].output
    assert obs[1].output.splitlines() == ["     4\tdef add(a, b):", "     5\t    return a - b"]
    assert "occurs 2 times" in obs[2].error and "lines 5, 9" in obs[2].error
    assert "was not found in calc.py" in obs[3].error
    assert "Edited calc.py" in obs[4].output and "return a + b" in obs[4].output
    assert obs[5].error is None
    assert "already exists" in obs[6].error
    assert "not valid JSON" in obs[7].error
    assert obs[8].error and "outside" in obs[8].error
    assert "no such file" in obs[9].error
    assert "./calc.py" in obs[10].output and ".git/" not in obs[10].output
    assert " M calc.py" in obs[11].output
    assert "+    return a + b" in result.patch and "pkg/new_module.py" in result.patch
    assert "return b" not in result.patch  # the ambiguous edit changed nothing


def test_malformed_turns_get_corrections_then_recover(repo_sandbox):
    script = ["I am not sure what to do.", bash("ls") + "\n" + bash("pwd"), bash("submit")]
    result = run_agent(TASK, repo_sandbox, ScriptedModel(script), AgentConfig(max_format_retries=2))
    assert result.exit_status == "submitted"
    assert "no bash code blocks" in result.steps[0].observations[0].error
    assert "2 bash code blocks" in result.steps[1].observations[0].error
    assert result.steps[0].actions == []


def test_too_many_malformed_turns_in_a_row_end_with_format_error(repo_sandbox):
    script = ["no block", "still none", "nope", bash("submit")]
    result = run_agent(TASK, repo_sandbox, ScriptedModel(script), AgentConfig(max_format_retries=2))
    assert result.exit_status == "format_error"
    assert len(result.steps) == 3


def test_a_call_repeated_from_the_previous_turn_gets_a_note(repo_sandbox):
    script = [bash("ls"), bash("ls"), bash("pwd"), bash("ls"), bash("submit")]
    result = run_agent(TASK, repo_sandbox, ScriptedModel(script), AgentConfig())
    notes = [REPEATED_CALL_NOTE in s.observations[0].output for s in result.steps]
    assert notes == [False, True, False, False, False]
    assert "calc.py" in result.steps[1].observations[0].output  # the call still ran


def test_step_limit_budget_and_model_errors_end_the_trajectory(fresh_repo_sandbox):
    sb = fresh_repo_sandbox()
    many = ScriptedModel([bash(f"echo {i}") for i in range(10)])
    limited = run_agent(TASK, sb, many, AgentConfig(step_limit=3))
    assert limited.exit_status == "step_limit" and len(limited.steps) == 3

    spent: list[int] = []

    def budget(completion) -> bool:
        spent.append(completion.tokens_out)
        return len(spent) < 2

    over = run_agent(TASK, sb, many, AgentConfig(), budget=budget)
    assert over.exit_status == "budget" and len(over.steps) == 2

    short = run_agent(TASK, sb, ScriptedModel([bash("true")]), AgentConfig())
    assert short.exit_status == "model_error" and "no turn 1" in short.error
    assert len(short.steps) == 1


def test_resume_from_step_k_gives_the_same_patch(fresh_repo_sandbox, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    model = ScriptedModel(FIX_SCRIPT)
    full_path = tmp_path / "full.jsonl"
    with TrajectoryRecorder(full_path, make_header("full", TASK.id)) as rec:
        full = run_agent(
            TASK, fresh_repo_sandbox(), model, AgentConfig(), recorder=rec, blob_store=blobs
        )
    assert full.exit_status == "submitted"
    original = load_trajectory(full_path)

    for k in (1, 2):
        sb = fresh_repo_sandbox()
        sb.restore(blobs.get(original.steps[k].state.sha256))
        branch_path = tmp_path / f"branch{k}.jsonl"
        header = make_header(f"branch{k}", TASK.id, parent=("full", k))
        with TrajectoryRecorder(branch_path, header) as rec:
            resumed = run_agent(
                TASK,
                sb,
                model,
                AgentConfig(),
                recorder=rec,
                blob_store=blobs,
                resume_steps=original.steps[: k + 1],
            )
        assert resumed.exit_status == "submitted"
        assert resumed.patch == full.patch
        assert resumed.new_steps == len(FIX_SCRIPT) - (k + 1)
        branch = load_trajectory(branch_path)
        assert branch.header["parent"] == ["full", k]
        assert [s.state for s in branch.steps] == [s.state for s in original.steps]

        def outputs(steps):
            return [[(o.output, o.exit_code, o.error) for o in s.observations] for s in steps]

        assert outputs(branch.steps) == outputs(original.steps)


def test_crash_mid_write_then_rerun_finishes_the_same_trajectory(fresh_repo_sandbox, tmp_path):
    blobs = BlobStore(tmp_path / "blobs")
    model = ScriptedModel(FIX_SCRIPT)
    path = tmp_path / "t.jsonl"
    with TrajectoryRecorder(path, make_header("t", TASK.id)) as rec:
        full = run_agent(
            TASK, fresh_repo_sandbox(), model, AgentConfig(), recorder=rec, blob_store=blobs
        )
    lines = path.read_text().splitlines(keepends=True)
    # Crash while writing step 3: header + steps 0..2 survive, step 3 is half a line.
    path.write_text("".join(lines[:4]) + lines[4][:50])
    crashed = load_trajectory(path)
    assert crashed.torn and len(crashed.steps) == 3 and crashed.footer is None

    sb = fresh_repo_sandbox()
    sb.restore(blobs.get(crashed.steps[-1].state.sha256))
    with TrajectoryRecorder(path, make_header("t", TASK.id)) as rec:
        resumed = run_agent(
            TASK,
            sb,
            model,
            AgentConfig(),
            recorder=rec,
            blob_store=blobs,
            resume_steps=crashed.steps,
        )
    assert resumed.patch == full.patch
    final = load_trajectory(path)
    assert not final.torn and final.footer["exit_status"] == "submitted"
    assert [s.index for s in final.steps] == list(range(len(FIX_SCRIPT)))
    assert [json.loads(x)["type"] for x in path.read_text().splitlines()].count("header") == 1


def test_rebuilt_chat_is_what_the_model_was_sent(repo_sandbox):
    class Spy(ScriptedModel):
        sent: list[list[dict]] = []

        def complete(self, messages, tools=None, **kw):
            self.sent.append([dict(m) for m in messages])
            return super().complete(messages, tools=tools, **kw)

    model = Spy(FIX_SCRIPT[:2] + [bash("submit")])
    result = run_agent(TASK, repo_sandbox, model, AgentConfig())
    system, user = render_prompts(
        TASK, "agent", workdir="/repo", step_limit=AgentConfig().step_limit
    )
    for k, sent in enumerate(model.sent):
        assert sent == messages_from_steps(system, user, result.steps[:k])
    assert "SECRET" not in json.dumps(model.sent)


def test_state_tracker_reuses_unchanged_states_and_matches_snapshots(repo_sandbox, tmp_path):
    from swescale.agent.snapshots import StateTracker

    tracker = StateTracker(repo_sandbox, BlobStore(tmp_path / "blobs"))
    commands = [
        "ls",  # first step: always a real snapshot
        "cat calc.py",  # read only: reused
        "sed -i 's/a - b/a + b/' calc.py",  # changed
        "git add -A && git -c user.name=x -c user.email=x@x commit -qm wip",  # same content
        "mkdir -p __pycache__ && echo junk > __pycache__/x.pyc",  # junk: snapshot, same ref
        "cd /tmp",  # the session's cwd moved: same state
        "echo more >> /repo/README.md",  # changed
        "chmod +x /repo/calc.py",  # a mode change is a change
    ]
    refs = []
    for command in commands:
        repo_sandbox.execute(command)
        ref = tracker.state_after_step()
        assert ref == repo_sandbox.snapshot()[0], command
        refs.append(ref)
    assert tracker.snapshots == 8 and tracker.reused == 4
    assert refs[0] == refs[1] and refs[2] == refs[3] == refs[4] == refs[5]
    assert len({refs[0].sha256, refs[2].sha256, refs[6].sha256, refs[7].sha256}) == 4
    # Whatever the model does to its shell, the state is the real work tree's.
    repo_sandbox.execute("export PATH=/nowhere; alias find=true; git() { :; }; set -xC; cd /")
    assert tracker.state_after_step() == refs[7] and tracker.reused == 5
    repo_sandbox.execute("/bin/rm /repo/README.md")
    removed = tracker.state_after_step()
    assert removed not in refs
    # The private index gone (a model cleaning /tmp): rebuilt, and the same state.
    repo_sandbox.execute("/bin/rm -f /tmp/.swescale-state-*")
    assert tracker.state_after_step() == removed


def test_a_container_that_dies_mid_run_ends_with_sandbox_error(repo_sandbox, tmp_path):
    class KillsTheContainer(ScriptedModel):
        def complete(self, messages, tools=None, **kw):
            if sum(m["role"] == "assistant" for m in messages) == 1:
                repo_sandbox.container.remove(force=True)
            return super().complete(messages, tools=tools, **kw)

    model = KillsTheContainer([bash("ls")] * 6)
    path = tmp_path / "t.jsonl"
    with TrajectoryRecorder(path, make_header("t", TASK.id)) as rec:
        result = run_agent(TASK, repo_sandbox, model, AgentConfig(), recorder=rec)
    assert result.exit_status == "sandbox_error" and result.error
    assert len(result.steps) == 2 and result.patch == ""
    assert load_trajectory(path).footer["exit_status"] == "sandbox_error"


def test_resume_refuses_a_finished_record_and_a_record_ahead_of_the_steps(repo_sandbox, tmp_path):
    from swescale.record.trajectory import RecordError

    path = tmp_path / "t.jsonl"
    with TrajectoryRecorder(path, make_header("t", TASK.id)) as rec:
        done = run_agent(
            TASK,
            repo_sandbox,
            ScriptedModel([bash("ls"), bash("submit")]),
            AgentConfig(),
            recorder=rec,
        )
    with (
        TrajectoryRecorder(path, make_header("t", TASK.id)) as rec,
        pytest.raises(RecordError, match="already finished"),
    ):
        run_agent(TASK, repo_sandbox, ScriptedModel([]), AgentConfig(), recorder=rec)
    ahead = tmp_path / "ahead.jsonl"
    with TrajectoryRecorder(ahead, make_header("a", TASK.id)) as rec:
        rec.write_step(done.steps[0])
        with pytest.raises(ValueError, match="holds 1 steps but only 0"):
            run_agent(TASK, repo_sandbox, ScriptedModel([]), AgentConfig(), recorder=rec)
