"""A report from whatever a run holds: each kind of damage a killed or broken run leaves
(a garbage line, bytes that are not UTF-8, a torn candidate line, a cut selection.json, a
trajectory cut mid-line or without its footer, a half-written run.json, all at once) and
fields of the wrong type in every record gives a report that names the damage, in the
terminal and on the overview page, from ``swescale report`` and ``swescale select``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swescale.cli import app
from swescale.report import build_site, load_run
from swescale.report.synthetic import make_run

TASK = "synthetic__task-0"
DAMAGE = ("garbage", "badutf8", "cand_torn", "sel_trunc", "torn", "nofooter", "runjson")
# What the problems list says for each kind (a part of the line naming it).
NAMED = {
    "garbage": f"{TASK}.r0.t00.jsonl:4: not valid JSON",
    "badutf8": f"{TASK}.r0.t00.jsonl:3: not valid UTF-8",
    "cand_torn": "candidates.jsonl:2:",
    "sel_trunc": "selection.json:",
    "torn": "no footer although the task is done",
    "nofooter": "no footer although the task is done",
    "runjson": "run.json: cut off",
}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished, graded run of one task and one trajectory, nothing damaged."""
    run = make_run(tmp_path_factory.mktemp("runs"), candidates=1, trajectories=1, steps=4)
    traj = _trajectory(run)
    data = traj.read_bytes()
    traj.write_bytes(data[: data.rindex(b"\n") + 1])  # the synthetic torn tail, gone
    assert load_run(run, comparison=False).problems == []
    return run


def _flat(text: str) -> str:
    return "".join(text.split())


def _trajectory(run: Path) -> Path:
    return next((run / TASK / "trajectories").glob("*.jsonl"))


def damage(source: Path, target: Path, kinds: tuple[str, ...]) -> Path:
    """A damaged copy of ``source`` (the kinds of the shared corruption script)."""
    shutil.copytree(source, target)
    shutil.rmtree(target / "report", ignore_errors=True)
    task = target / TASK
    traj = _trajectory(target)
    lines = [line for line in traj.read_bytes().split(b"\n") if line]
    footer, body = lines[-1], lines[:-1]
    if "garbage" in kinds:
        body.insert(3, b"{not json at all \xff\xfe")
    if "badutf8" in kinds:
        assert b"looking" in body[2]
        body[2] = body[2].replace(b"looking", b"lo\xffoking", 1)
    out = body if {"nofooter", "torn"} & set(kinds) else [*body, footer]
    data = b"\n".join(out) + b"\n"
    if "torn" in kinds:
        data = b"\n".join(out[:-1]) + b"\n" + out[-1][: len(out[-1]) // 2]
    traj.write_bytes(data)
    if "cand_torn" in kinds:
        with open(task / "candidates.jsonl", "ab") as fh:
            fh.write(b'{"id": "deadbeef", "patch": "diff --git a/x')
    if "sel_trunc" in kinds:
        text = (task / "selection.json").read_bytes()
        (task / "selection.json").write_bytes(text[: len(text) // 2])
    if "runjson" in kinds:
        text = (target / "run.json").read_bytes()
        (target / "run.json").write_bytes(text[: len(text) // 2])
    return target


@pytest.mark.parametrize("kind", [*DAMAGE, "all"])
def test_each_kind_of_damage_gets_a_report_that_names_it(clean_run, tmp_path, kind) -> None:
    kinds = DAMAGE if kind == "all" else (kind,)
    run = damage(clean_run, tmp_path / f"r-{kind}", kinds)
    site = build_site(run)
    overview = site.index.read_text()
    assert 'id="problems"' in overview
    for k in kinds:
        assert any(NAMED[k] in p for p in site.problems), (k, site.problems)
    shown = overview[overview.index('id="problems"') :]
    assert NAMED[kinds[0]] in shown[: shown.index("</div>")]
    # Every page the run has is there.
    assert (site.root / "task" / f"{TASK}.html").is_file()
    assert (site.root / "trajectory" / f"{TASK}.r0.t00.html").is_file()

    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    text = _flat(result.output)  # the terminal wraps long lines anywhere
    assert _flat("not written") not in text
    assert _flat(f"report: {run / 'report' / 'index.html'}") in text
    assert _flat("damaged, missing or unreadable record part(s)") in text
    assert _flat(NAMED[kinds[0]]) in text


def test_select_on_a_damaged_run_writes_the_report(clean_run, tmp_path) -> None:
    run = damage(clean_run, tmp_path / "r-all", DAMAGE)
    result = CliRunner().invoke(app, ["select", "--run", str(run), "-s", "all"])
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "skipped:" in text and _flat("not written") not in text
    assert _flat(f"report: {run / 'report' / 'index.html'}") in text
    assert 'id="problems"' in (run / "report" / "index.html").read_text()


def _wrong_type(value: object) -> object:
    """A value of another JSON type than ``value``'s."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return "many"
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return {"0": value}
    if isinstance(value, dict):
        return 7
    return {"unexpected": None}


def _mangle_json(path: Path) -> None:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        data = {k: _wrong_type(v) for k, v in data.items()}
    elif isinstance(data, list):
        data = [
            {k: _wrong_type(v) for k, v in item.items()} if isinstance(item, dict) else 7
            for item in data
        ]
    path.write_text(json.dumps(data))


def _mangle_jsonl(path: Path) -> None:
    out = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            out.append(line)  # the synthetic run's torn line stays torn
            continue
        # Keep what a line is (header, step, footer), change the type of all the rest.
        out.append(json.dumps({k: v if k == "type" else _wrong_type(v) for k, v in row.items()}))
    path.write_text("".join(line + "\n" for line in out))


def test_fields_of_the_wrong_type_in_every_record_never_stop_the_report(tmp_path) -> None:
    run = make_run(tmp_path / "runs", candidates=3, trajectories=3, steps=4)
    from swescale.report.evaluations import entry, record_evaluation

    summary = {"resolved_ids": [TASK], "resolved_instances": 1, "submitted_instances": 1}
    record_evaluation(run, entry("e1", "m", summary, run / "run.json", {TASK: run / TASK}, run))
    mangled = []
    for path in sorted(run.rglob("*.json")):
        _mangle_json(path)
        mangled.append(path.name)
    for path in sorted(run.rglob("*.jsonl")):
        _mangle_jsonl(path)
        mangled.append(path.name)
    assert {"run.json", "result.json", "selection.json", "evaluations.json"} <= set(mangled)
    assert {"failures.jsonl", "candidates.jsonl"} <= set(mangled)
    site = build_site(run)
    assert site.index.is_file() and (site.root / "task" / f"{TASK}.html").is_file()
    assert site.problems  # the records that could not be read are named
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "not written" not in result.output


def test_a_run_still_going_is_not_called_damaged(tmp_path) -> None:
    """A trajectory without its footer is normal while its task runs."""
    run = make_run(tmp_path / "runs", candidates=1, trajectories=1, steps=4)
    traj = _trajectory(run)
    lines = traj.read_bytes().split(b"\n")
    traj.write_bytes(b"\n".join(lines[:-3]) + b"\n")  # the footer and the torn tail gone
    info = json.loads((run / "run.json").read_text())
    info["tasks"][TASK]["status"] = "running"
    (run / "run.json").write_text(json.dumps(info))
    (run / TASK / "result.json").unlink()
    summary = load_run(run, comparison=False)
    assert summary.tasks[0].status == "running" and summary.tasks[0].finished == 0
    assert summary.problems == []
    site = build_site(run)
    assert "unfinished" in (site.root / "trajectory" / f"{TASK}.r0.t00.html").read_text()


def test_report_refuses_a_directory_no_run_wrote(tmp_path) -> None:
    # A checkout or a home folder: nothing is written into it.
    checkout = tmp_path / "calc"
    (checkout / "src").mkdir(parents=True)
    (checkout / "README.md").write_text("calc\n")
    result = CliRunner().invoke(app, ["report", str(checkout)])
    assert result.exit_code == 2
    assert "is not a run directory" in " ".join(result.output.split())
    assert sorted(p.name for p in checkout.iterdir()) == ["README.md", "src"]
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nosuch")])
    assert missing.exit_code == 2 and "no such directory" in " ".join(missing.output.split())


def test_a_run_without_ground_truth_says_the_resolve_rate_is_unknown(tmp_path) -> None:
    # `solve` runs with scaling.grade none: no pass@k of 0%, no "0/2" resolving.
    from rich.console import Console

    from swescale.report import print_summary

    run = make_run(tmp_path / "runs", run_id="solve-x", candidates=1, trajectories=2, steps=2)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("  grade: all\n", "  grade: none\n"))
    assert "grade: none" in config.read_text()
    for folder in run.iterdir():
        if (folder / "result.json").exists():
            (folder / "candidates.jsonl").write_text("")
    console = Console(width=100, record=True)
    print_summary(load_run(run), console)
    assert "resolve rate: unknown (no ground truth)" in console.export_text()
