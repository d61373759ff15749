"""`replay import` on a mini task with real Docker: trajectories of both shell semantics
written in their agents' formats, a planted divergence, hostile commands, damaged files,
and a branch from an imported trajectory with the scripted model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from swescale.config import RunConfig
from swescale.record import RunDir, load_trajectory
from swescale.record.task import read_task_info, read_task_record
from swescale.scaling import imported

pytestmark = pytest.mark.docker

TASK = "swescale-mini__slugkit-1"
SED = "sed -i 's/\\[^A-Za-z0-9\\]\", sep/[^A-Za-z0-9]+\", sep/' slugkit/core.py"


@pytest.fixture(scope="module")
def task(mini_by_id):
    return mini_by_id[TASK]


@pytest.fixture(scope="module")
def gold_diff(docker_client, mini_images, task) -> str:
    """What `git diff` prints after the sed fix, as the agent's submission."""
    from swescale.sandbox import DockerSandbox

    image = mini_images(task)
    with DockerSandbox.create(docker_client, image.tag, image.sandbox_config()) as sb:
        sb.exec_once(SED, workdir=sb.workdir)
        return sb.exec_once("git diff", workdir=sb.workdir).output


def msa_trajectory(submission: str, instance: str = TASK) -> dict:
    """A mini-swe-agent 2.x trajectory: every command in its own `bash -c` in /testbed."""
    steps = [
        ("cd slugkit && export X=1 && pwd", "/testbed/slugkit\n", 0),
        ('pwd; echo "x=$X"', "/testbed\nx=\n", 0),  # cd and export did not persist
        ("cat > repro_bug.py <<'EOF'\nprint('repro')\nEOF\npython repro_bug.py", "repro\n", 0),
        ("printf 'caf\\xe9\\n'", "caf\ufffd\n", 0),  # bytes that are not UTF-8
        ("yes abc | head -c 3000000 | tail -c 8", "abc\nabc\n", 0),
        ("sleep 30", "", -1),  # past the 2 s timeout
        (SED + " && echo edited", "edited\n", 0),
        ("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && git diff", None, None),
    ]
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": "<pr_description>slugify keeps runs of separators</pr_description>",
        },
    ]
    for n, (command, output, code) in enumerate(steps):
        messages.append(
            {
                "role": "assistant",
                "content": f"step {n}",
                "tool_calls": [{"id": f"c{n}", "type": "function", "function": {"name": "bash", "arguments": json.dumps({"command": command})}}],
                "extra": {"actions": [{"command": command, "tool_call_id": f"c{n}"}], "timestamp": 1000.0 + n},
            }
        )  # fmt: skip
        if output is None:
            continue
        extra = {"raw_output": output, "returncode": code, "timestamp": 1000.5 + n}
        if code == -1:
            extra.update(
                exception_info="timed out after 2 seconds", exception_type="TimeoutExpired"
            )
        messages.append(
            {"role": "tool", "tool_call_id": f"c{n}", "content": output, "extra": extra}
        )
    messages.append(
        {
            "role": "exit",
            "content": submission,
            "extra": {"exit_status": "Submitted", "submission": submission},
        }
    )
    return {
        "trajectory_format": "mini-swe-agent-1.1",
        "instance_id": instance,
        "info": {
            "exit_status": "Submitted",
            "submission": submission,
            "config": {
                "model": {"model_name": "test/model"},
                "environment": {"cwd": "/testbed", "timeout": 2, "env": {"PAGER": "cat"}},
            },
        },
        "messages": messages,
    }  # fmt: skip


def swe_agent_trajectory(submission: str) -> dict:
    """A SWE-agent trajectory: one persistent shell, the repository at /swescale-mini__slugkit."""
    root = "/swescale-mini__slugkit"
    return {
        "trajectory": [
            {"response": "go", "action": f"cd {root}/slugkit", "observation": "", "state": json.dumps({"working_dir": root})},
            {"response": "where", "action": "pwd", "observation": f"{root}/slugkit\n", "state": "{}"},
            {"response": "look", "action": "open core.py", "observation": "[File: core.py]", "state": "{}"},
            {"response": "fix", "action": f"cd {root} && {SED}", "observation": "", "state": "{}"},
            {"response": "done", "action": "submit", "observation": submission, "state": "{}"},
        ],
        "info": {"submission": submission, "exit_status": "submitted"},
    }  # fmt: skip


def run_import(tmp_path: Path, docker_client, mini_images, mini_by_id, files: dict[str, object]):
    inputs = tmp_path / "inputs"
    for name, data in files.items():
        path = inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    sources, problems = imported.discover([inputs])
    assert not problems
    cfg = RunConfig()
    rundir = RunDir.open(tmp_path / "runs", "imp", cfg)
    sandboxes = imported.ReplaySandboxes(docker_client, cfg, "imp", network="none")
    importer = imported.Importer(
        rundir,
        mini_by_id,
        image_for=mini_images,
        open_sandbox=sandboxes.open,
        stop=threading.Event(),
    )
    return rundir, importer.run(sources)


def test_both_shell_semantics_replay_faithfully(
    tmp_path, docker_client, mini_images, mini_by_id, gold_diff
) -> None:
    rundir, result = run_import(
        tmp_path,
        docker_client,
        mini_images,
        mini_by_id,
        {
            "msa/swescale-mini__slugkit-1/swescale-mini__slugkit-1.traj.json": msa_trajectory(gold_diff),
            "sweagent/swescale-mini__slugkit-1.traj": swe_agent_trajectory(gold_diff),
        },
    )  # fmt: skip
    by_label = {o.source.label: o for o in result.outcomes}
    msa, swe = by_label["msa"].replay, by_label["sweagent"].replay
    assert by_label["msa"].status == "replayed", by_label["msa"].error
    # Every step of the subshell agent: identical, or (the timeout) equal after masking.
    assert msa.step_fidelity == ["identical"] * 5 + ["masked"] + ["identical"] * 2, msa.actions
    assert msa.patch_fidelity == "identical" and msa.first_divergence is None
    assert "repro_bug.py" in msa.scratch_paths
    # The persistent shell: `cd` persisted; its own tool was not run; the repository
    # root is mapped both ways.
    assert swe.step_fidelity == [
        "identical",
        "identical",
        "not_replayed",
        "identical",
        "not_replayed",
    ]
    assert swe.patch_fidelity == "identical"
    # The record: our trajectory format with the source named, states per step, the
    # submitted patch byte for byte, one candidate produced by both, the predictions.
    task_dir = rundir.task_dir(TASK)
    record = load_trajectory(rundir.trajectory_path(TASK, by_label["msa"].trajectory_id))
    assert record.header["source_format"] == "mini-swe-agent-1.1"
    assert record.header["model"] == "test/model" and record.footer["patch"] == gold_diff
    assert all(s.state is not None for s in record.steps) and record.steps[0].chat
    candidates = read_task_record(task_dir).candidates
    assert len(candidates) == 1 and len(candidates[0].trajectory_ids) == 2
    rows = [json.loads(x) for x in rundir.predictions_path.read_text().splitlines()]
    assert {r["model_name_or_path"] for r in rows} == {"test/model@msa", "unknown@sweagent"}
    assert set(read_task_info(task_dir, "replay")) == {o.trajectory_id for o in result.outcomes}
    rows = imported.summarize(result.outcomes, lambda _: "slugkit")
    assert imported.summary_line(rows) == (
        "replayed 2 trajectories, 11 steps: 10 identical, 1 equal after masking, 0 differ; "
        "patches reproduced 2/2"
    )

    # The reproduction script the agent wrote (and never submitted) is found in its
    # recorded states, for the harvest verifier of `ensemble --run`.
    from swescale.selection.ensemble import read_pools
    from swescale.selection.trajectory_tests import created_along_the_way

    made = created_along_the_way(task_dir)
    assert made[by_label["msa"].trajectory_id]["repro_bug.py"] == ("script", "print('repro')\n")
    pools = read_pools([mini_by_id[TASK]], [], [rundir.root])
    (test,) = pools.trajectory_tests[TASK]
    assert test.path == "repro_bug.py" and test.sources == (candidates[0].id,)
    assert (
        read_pools([mini_by_id[TASK]], [], [rundir.root], trajectory_tests=False).trajectory_tests
        == {}
    )

    # A rerun reuses what is done: nothing replayed twice.
    sources, _ = imported.discover([tmp_path / "inputs"])
    again = imported.Importer(
        rundir,
        mini_by_id,
        image_for=mini_images,
        open_sandbox=imported.ReplaySandboxes(
            docker_client, RunConfig(), "imp", network="none"
        ).open,
    ).run(sources)
    assert {o.status for o in again.outcomes} == {"reused"}
    # The report reads it as any run: the task done, the replay's sandbox time in the
    # ledger once (the rerun reused everything and charged nothing).
    from swescale.report.summary import load_run

    summary = load_run(rundir.root, comparison=False)
    assert [t.status for t in summary.tasks] == ["done"]
    spent = rundir.run_json()["ledger"]["by_task"][TASK]["by_kind"]
    assert spent["other"]["sandbox_seconds"] == pytest.approx(msa.seconds + swe.seconds, rel=0.01)
    # Each trajectory's page says how it replayed, step by step.
    from swescale.report.site import write_report

    write_report(rundir.root)
    page = (
        rundir.root / "report" / "trajectory" / f"{by_label['msa'].trajectory_id}.html"
    ).read_text()
    assert 'id="replay-fidelity">7 step(s) identical, 1 equal after masking' in page
    assert "patch identical" in page and page.count('class="small replay-identical"') == 7


def test_planted_divergence_is_named_with_both_texts(
    tmp_path, docker_client, mini_images, mini_by_id, gold_diff
) -> None:
    traj = msa_trajectory(gold_diff)
    for message in traj["messages"]:
        if message.get("extra", {}).get("raw_output") == "repro\n":
            message["extra"]["raw_output"] = "repro failed: ImportError\n"
    _, result = run_import(
        tmp_path, docker_client, mini_images, mini_by_id, {"a/x.traj.json": traj}
    )
    replay = result.outcomes[0].replay
    first = replay.first_divergence
    assert first is not None and first.step == 2 and "repro_bug.py" in first.command
    assert first.recorded == "repro failed: ImportError\n" and first.replayed == "repro\n"
    assert replay.step_fidelity[2] == "differs" and replay.patch_fidelity == "identical"


def test_a_submission_curated_by_hand_is_reproduced_as_printed(
    tmp_path, docker_client, mini_images, mini_by_id, gold_diff
) -> None:
    # The agent keeps its patch in patch.txt, changes the tree further for its own
    # tests, and submits `cat patch.txt`: the tree differs from the submission by its
    # choice; the replay printed the submission byte for byte.
    traj = msa_trajectory(gold_diff)
    for message in traj["messages"]:
        for action in message.get("extra", {}).get("actions", []):
            if action["command"].startswith("echo COMPLETE_TASK"):
                action["command"] = (
                    "git diff > patch.txt && echo 'NOTE = 1' >> slugkit/core.py && "
                    "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat patch.txt"
                )
                call = message["tool_calls"][0]["function"]
                call["arguments"] = json.dumps({"command": action["command"]})
    _, result = run_import(
        tmp_path, docker_client, mini_images, mini_by_id, {"a/x.traj.json": traj}
    )
    replay = result.outcomes[0].replay
    assert replay.patch_fidelity == "printed"
    assert "NOTE = 1" in replay.derived_patch and "NOTE = 1" not in gold_diff
    row = imported.summarize(result.outcomes, lambda _: "mini")[0]
    assert row.patches_reproduced == 1


def view_trajectory(submission: str, base_commit: str) -> dict:
    """A mini-swe-agent trajectory recorded in an official image's base env: what its
    non-login `bash -c` saw there."""
    traj = msa_trajectory(submission)
    seen = [
        ('python -c "import sys; print(sys.prefix)"', "/opt/miniconda3\n"),
        ("python -m pip --version | cut -d' ' -f1,2", "pip 23.3.1\n"),
        ('python -c "import wheel; print(wheel.__version__)"', "0.41.2\n"),
        # Installs land where conda's interpreter puts them, not in Debian's dist-packages.
        ("python -c \"import setuptools, sysconfig; print(sysconfig.get_paths()['purelib'])\"; "
         "python -W ignore -c \"from setuptools.dist import Distribution as D; "
         "c = D().get_command_obj('install'); c.finalize_options(); print(c.install_lib)\"",
         "/opt/miniconda3/lib/python3.11/site-packages\n/opt/miniconda3/lib/python3.11/site-packages/\n"),
        # The official setup's own commit on the base, by the identity it configures.
        ("git log -1 --format='%an <%ae> %s' && git rev-parse HEAD~1",
         f"SWE-bench <setup@swebench.config> SWE-bench\n{base_commit}\n"),
        # The container's variables and the agent's own, none of swescale's.
        # (bash itself sets an unexported TERM=dumb, there as here: `env` is what counts.)
        ("env | grep -cE '^(LANG|LC_ALL|TERM|PYTHONDONTWRITEBYTECODE)='; echo $PAGER $TZ",
         "0\ncat Etc/UTC\n"),
        ("stat -c %a slugkit", "777\n"),
        (SED + " && echo edited", "edited\n"),
    ]  # fmt: skip
    head = traj["messages"][:2]
    tail = traj["messages"][-2:]  # the submission and the exit
    body = []
    for n, (command, output) in enumerate(seen):
        call = {
            "id": f"c{n}",
            "type": "function",
            "function": {"name": "bash", "arguments": json.dumps({"command": command})},
        }
        body.append(
            {
                "role": "assistant",
                "content": f"step {n}",
                "tool_calls": [call],
                "extra": {
                    "actions": [{"command": command, "tool_call_id": f"c{n}"}],
                    "timestamp": 1000.0 + n,
                },
            }
        )
        body.append({"role": "tool", "tool_call_id": f"c{n}", "content": output,
                     "extra": {"raw_output": output, "returncode": 0, "timestamp": 1000.5 + n}})  # fmt: skip
    traj["messages"] = head + body + tail
    image = "docker.io/swebench/sweb.eval.x86_64.swescale-mini_1776_slugkit-1:latest"
    traj["info"]["config"]["environment"].update(image=image, timeout=60)
    return traj


def test_the_official_base_view_shows_what_the_agent_saw(
    tmp_path, docker_client, mini_images, mini_by_id, task, gold_diff
) -> None:
    _, result = run_import(
        tmp_path,
        docker_client,
        mini_images,
        mini_by_id,
        {"base/x.traj.json": view_trajectory(gold_diff, task.base_commit)},
    )
    (outcome,) = result.outcomes
    assert outcome.status == "replayed", outcome.error
    replay = outcome.replay
    assert replay.first_divergence is None, replay.first_divergence
    assert set(replay.step_fidelity[:-1]) == {"identical"}, replay.actions
    assert replay.patch_fidelity == "identical"


def test_bad_trajectories_never_stop_the_batch(
    tmp_path, docker_client, mini_images, mini_by_id, gold_diff
) -> None:
    good = msa_trajectory(gold_diff)
    text = json.dumps(good).encode()
    killer = msa_trajectory(gold_diff)
    # A command that takes the whole container down: the replay of that trajectory
    # ends with an error, the others go on.
    killer["messages"][4]["extra"]["actions"][0]["command"] = "kill -9 -1; sleep 1; kill -9 1"
    rundir, result = run_import(
        tmp_path,
        docker_client,
        mini_images,
        mini_by_id,
        {
            "ok/x.traj.json": good,
            "cut/x.traj.json": text[: len(text) // 2],
            "odd/x.traj.json": {"hello": "world"},
            "lost/x.traj.json": msa_trajectory(gold_diff, instance="nosuch__repo-1"),
            "kill/x.traj.json": killer,
        },
    )
    status = {o.source.label: (o.status, o.error) for o in result.outcomes}
    assert status["ok"][0] == "replayed"
    assert status["cut"][0] == "error" and "truncated" in status["cut"][1]
    assert status["odd"][0] == "error" and "unknown trajectory format" in status["odd"][1]
    assert status["lost"][0] == "error" and "not in the dataset" in status["lost"][1]
    assert status["kill"][0] in ("error", "replayed")
    failures = rundir.failures()
    assert {f["source"].split("/inputs/")[1].split("/")[0] for f in failures} >= {
        "cut",
        "odd",
        "lost",
    }
    leftover = docker_client.containers.list(all=True, filters={"label": "swescale.run=imp"})
    assert leftover == []


def test_branch_from_an_imported_trajectory(
    tmp_path, docker_client, mini_images, mini_by_id, gold_diff
) -> None:
    """A run branches from step k of the imported trajectory (its state restored, its
    recorded chat resumed) and the scripted model goes on from there."""
    from swescale.agent.models.scripted import ScriptedModel
    from swescale.config import load_config
    from swescale.scaling.batch import BatchRunner

    archive, result = run_import(
        tmp_path,
        docker_client,
        mini_images,
        mini_by_id,
        {"msa/x.traj.json": msa_trajectory(gold_diff)},
    )
    assert result.outcomes[0].status == "replayed"
    cfg = load_config(
        "scripted",
        [
            "scaling.n_parallel=1",
            "scaling.branch_probability=1.0",
            f"scaling.archive_runs=[{archive.root}]",
            "verifiers.enabled=[]",
            "selection.selector=majority",
            "scaling.grade=none",
            "model.script=",
            "agent.step_limit=30",
            f"runs_dir={tmp_path / 'runs2'}",
        ],
    )
    seen: list[list[dict]] = []

    class Recording(ScriptedModel):
        def complete(self, messages, **kw):  # type: ignore[override]
            seen.append(messages)
            return super().complete(messages, **kw)

    # The scripted model answers turn i with script[i] (i = assistant turns so far):
    # whatever step the branch starts after, it looks once more, then submits.
    model = Recording(["```bash\ngit status --short\n```"] * 9 + ["```bash\nsubmit\n```"])
    rundir = RunDir.open(tmp_path / "runs2", "branch", cfg)
    runner = BatchRunner(cfg, rundir, model=model, client=docker_client, image_for=mini_images)
    out = runner.run([mini_by_id[TASK]])
    assert out.results[TASK]["status"] == "done", out.results
    (path,) = rundir.trajectory_files(TASK)
    record = load_trajectory(path)
    parent_id, k = record.header["parent"]
    assert parent_id == result.outcomes[0].trajectory_id
    # The branch's first k+1 steps are the imported ones, their states copied here.
    assert [s.chat is not None for s in record.steps[: k + 1]] == [True] * (k + 1)
    assert all((rundir.blobs_dir(TASK) / s.state.sha256).exists() for s in record.steps[: k + 1])
    # The model was sent the other agent's own prompt and messages.
    assert seen and seen[0][0]["content"] == "You are a helpful assistant."
    assert record.footer["exit_status"] == "submitted"
