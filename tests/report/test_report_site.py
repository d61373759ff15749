"""The report site on a synthetic run written through the run's own writers: every page
and link, long outputs folded, 64 candidates and 100-step trajectories, branches, damage,
grading links, the CLI."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swescale.cli import app
from swescale.report import build_site
from swescale.report.evaluations import entry, record_evaluation
from swescale.report.synthetic import F2P, make_run

STEPS = 100
CANDIDATES = 64


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.open_details = 0
        self.details = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if tag in ("img", "link") and (found.get("src") or found.get("href")):
            self.images.append(str(found.get("src") or found.get("href")))
        if tag == "details":
            self.details += 1
            self.open_details += "open" in found


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    run = make_run(
        tmp_path_factory.mktemp("runs"), candidates=CANDIDATES, trajectories=6, steps=STEPS
    )
    return build_site(run)


def test_every_page_exists_and_every_local_link_resolves(site) -> None:
    pages = sorted(site.root.rglob("*.html"))
    assert len(pages) == site.pages
    # overview + 1 task + 64 candidates + 6 trajectories
    assert site.pages == 1 + 1 + CANDIDATES + 6
    for page in pages:
        parsed = _parse(page)
        for href in parsed.links + parsed.images:
            if href.startswith(("http:", "https:", "//")):
                pytest.fail(f"{page.name} links outside: {href}")
            target = href.split("#", 1)[0]
            if target:
                assert (page.parent / target).resolve().exists(), (page, href)


def test_a_long_trajectory_stays_readable(site) -> None:
    page = site.root / "trajectory" / "synthetic__task-0.r0.t00.html"
    text = page.read_text()
    parsed = _parse(page)
    # Every tenth step printed 300 lines: each shows a head and a tail, the rest folded.
    assert text.count("… 282 more lines …") == STEPS // 10
    assert parsed.details >= STEPS // 10 and parsed.open_details < parsed.details
    assert len(re.findall(r'<section class="step', text)) == STEPS
    # Failing commands (every seventh step) are marked in the step index and the steps.
    assert len(re.findall(r'<tr class="problem', text)) == len(range(6, STEPS, 7))
    assert page.stat().st_size < 1_500_000


def test_the_task_page_shows_the_pool_the_pick_and_the_truth(site) -> None:
    page = site.root / "task" / "synthetic__task-0.html"
    text = page.read_text()
    parsed = _parse(page)
    assert text.count('class="candidate-link"') >= CANDIDATES
    # One patch per candidate, folded except the picked one.
    assert text.count('<details class="patch"') == CANDIDATES and parsed.open_details == 1
    assert "synthetic: the most voted among the finalists" in text
    # The graded-truth matrix: the tests and the two broken ones, the rest counted.
    for test in F2P:
        assert test in text
    assert "18 PASS_TO_PASS tests pass with every candidate" in text
    assert "repro: test outcomes" in text and "regression: existing tests broken" in text
    # The branch sits under its parent in the trajectory tree.
    assert "synthetic__task-0.r0.t00 @ 3" in text


def test_the_overview_flags_the_selection_miss_and_the_failure(site) -> None:
    text = site.index.read_text()
    assert "Selection missed on 1 task(s)" in text and 'class="miss"' in text
    assert "verifier:judge" in text and "synthetic failure" in text
    assert 'id="resolve-rate">0/1' in text


def test_a_candidate_page_shows_producers_verdicts_and_truth(site) -> None:
    page = site.root / "candidate" / "synthetic__task-0.c000.html"
    text = page.read_text()
    assert "synthetic__task-0.r0.t00" in text and "synthetic__task-0.r0.t05" in text
    assert "passes 2/2 tests" in text and "resolves" in text
    wrong = (site.root / "candidate" / "synthetic__task-0.c003.html").read_text()
    assert "breaks 2 of 20 passing tests" in wrong and "does not resolve" in wrong
    assert F2P[1] in wrong  # the FAIL_TO_PASS test it leaves failing


def test_branches_damage_and_unknown_fields_are_shown(site) -> None:
    child = (site.root / "trajectory" / "synthetic__task-0.r0.t01.html").read_text()
    assert "at step 3 (steps 0–3 are the parent's)" in child
    assert child.count("the parent's, before the branch") == 4
    parent = (site.root / "trajectory" / "synthetic__task-0.r0.t00.html").read_text()
    assert "synthetic__task-0.r0.t01.html" in parent
    # A header field this version does not know is listed as recorded.
    assert "decoding_mode" in parent
    torn = (site.root / "trajectory" / "synthetic__task-0.r0.t05.html").read_text()
    assert "cut off mid-write" in torn
    assert any("cut off mid-write" in p for p in site.problems)


def test_the_repository_diff_after_a_step(site) -> None:
    text = (site.root / "trajectory" / "synthetic__task-0.r0.t02.html").read_text()
    # Step 9 is the first to change the repository: its diff is on the page.
    step9 = text[text.index('id="step-9"') : text.index('id="step-10"')]
    assert "repository after step 9" in step9 and "return x + 9" in step9
    step8 = text[text.index('id="step-8"') : text.index('id="step-9"')]
    assert "repository after" not in step8


def test_plots_are_drawn_or_their_absence_explained(site, tmp_path, monkeypatch) -> None:
    from swescale.report import plots

    if plots.available():
        for name in ("resolve-vs-samples", "selectors", "resolve-vs-cost"):
            svg = (site.root / "img" / f"{name}.svg").read_text()
            assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    monkeypatch.setattr(plots, "available", lambda: False)
    other = build_site(make_run(tmp_path, candidates=2, trajectories=2, steps=3))
    assert not other.plots and "pip install" in other.index.read_text()


def test_damaged_records_do_not_stop_the_report(tmp_path) -> None:
    run = make_run(tmp_path, candidates=3, trajectories=3, steps=4)
    task = run / "synthetic__task-0"
    traj = task / "trajectories" / "synthetic__task-0.r0.t01.jsonl"
    lines = traj.read_text().splitlines()
    lines.insert(2, "{not json")
    traj.write_text("\n".join(lines) + "\n")
    (task / "candidates.jsonl").write_text((task / "candidates.jsonl").read_text() + '{"id": 5}\n')
    for blob in (task / "blobs").iterdir():
        blob.unlink()
    (task / "grades.json").write_text("[1, 2")
    result = build_site(run)
    assert any("not valid JSON" in p for p in result.problems)
    page = (result.root / "trajectory" / "synthetic__task-0.r0.t01.html").read_text()
    assert "state not stored" in page
    assert (result.root / "task" / "synthetic__task-0.html").is_file()


@pytest.mark.parametrize("inside", [True, False])
def test_grading_results_link_to_test_output_inside_the_run_only(tmp_path, inside: bool) -> None:
    """Results kept in the run directory are linked from its pages; results kept
    elsewhere are listed without a link (a report never points outside its run, nor
    names this machine's paths)."""
    run = make_run(tmp_path / "runs", candidates=2, trajectories=2, steps=2)
    root = run / "eval" if inside else tmp_path / "eval"
    folder = root / "e1" / "swescale__scripted" / "synthetic__task-0"
    folder.mkdir(parents=True)
    (folder / "test_output.txt").write_text("PASSED tests/test_core.py::test_fixed_a\n")
    (folder / "report.json").write_text("{}")
    summary = {"resolved_ids": ["synthetic__task-0"], "resolved_instances": 1,
               "submitted_instances": 1}  # fmt: skip
    report = root / "e1" / "report.json"
    report.write_text(json.dumps(summary))
    record_evaluation(
        run, entry("e1", "swescale__scripted", summary, report, {"synthetic__task-0": folder}, run)
    )
    site = build_site(run)
    page = site.root / "eval.html"
    parsed = _parse(page)
    outputs = [h for h in parsed.links if h.endswith("test_output.txt")]
    assert "eval.html#e1" in site.index.read_text()
    assert "resolved" in page.read_text()
    task_page = site.root / "task" / "synthetic__task-0.html"
    links = [h for h in _parse(task_page).links if h.endswith("test_output.txt")]
    for html in site.root.rglob("*.html"):
        assert str(tmp_path) not in html.read_text(), html
    if not inside:
        assert outputs == [] and links == []
        return
    assert len(outputs) == 1
    assert (page.parent / outputs[0]).resolve() == (folder / "test_output.txt").resolve()
    # The task's own page says how it was graded, one click from the test output.
    assert [(task_page.parent / h).resolve() for h in links] == [
        (folder / "test_output.txt").resolve()
    ]
    # The record names the results by their place in the run: the run can move.
    recorded = json.loads((run / "evaluations.json").read_text())[0]
    assert recorded["instances"]["synthetic__task-0"]["dir"] == (
        "eval/e1/swescale__scripted/synthetic__task-0"
    )


def test_report_command_writes_the_site(tmp_path) -> None:
    run = make_run(tmp_path, candidates=2, trajectories=2, steps=2)
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert str(run / "report" / "index.html") in result.output.replace("\n", "")
    assert "report/index.html" in (run / "report.html").read_text()


@pytest.mark.parametrize("in_run", [True, False])
def test_eval_links_its_results_into_a_report(tmp_path, in_run: bool) -> None:
    """What ``swescale eval`` does after grading, on a literal outcome: predictions from
    a run directory join that run's report; others get a report beside the results."""
    from swescale.record.evaluation import ours_dir as swescale_dir
    from swescale.report.evaluations import report_evaluation
    from swescale.swebench.evaluate import EvalOutcome, instance_dir
    from swescale.swebench.predictions import Prediction

    run = make_run(tmp_path / "runs", candidates=2, trajectories=2, steps=2)
    folder = run if in_run else tmp_path / "elsewhere"
    folder.mkdir(exist_ok=True)
    predictions = folder / "predictions.jsonl"
    pred = Prediction(instance_id="synthetic__task-0", model_name_or_path="m", model_patch="x")
    predictions.write_text(pred.model_dump_json() + "\n")
    # Where ``swescale eval`` grades a run's predictions by default: inside the run.
    eval_dir = run / "eval" if in_run else tmp_path / "eval"
    results = instance_dir(eval_dir, "e2", pred)
    results.mkdir(parents=True)
    (results / "test_output.txt").write_text("FAILED tests/test_core.py::test_fixed_b\n")
    (results / "report.json").write_text("{}")
    report = {"submitted_instances": 1, "unresolved_instances": 1,
              "unresolved_ids": ["synthetic__task-0"], "error_ids": []}  # fmt: skip
    report_path = eval_dir / "m.e2.json"
    report_path.write_text(json.dumps(report))
    outcome = EvalOutcome(run_id="e2", reports={"m": report}, report_paths={"m": str(report_path)})
    where = Path(report_evaluation([predictions], eval_dir, outcome))
    assert where.is_file(), where
    page = where.parent / "eval.html" if in_run else where
    if not in_run:
        assert where.parent == swescale_dir(eval_dir, "e2") / "report"
    parsed = _parse(page)
    output = next(h for h in parsed.links if h.endswith("test_output.txt"))
    assert (page.parent / output).resolve() == (results / "test_output.txt").resolve()
    assert "unresolved" in page.read_text()
    assert (run / "evaluations.json").is_file() == in_run
