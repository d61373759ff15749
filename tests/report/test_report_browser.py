"""The report in a real browser (Debian's chromium through Playwright): a scripted run
through the real CLI, whose terminal output stays quiet, then from the overview to a
task, a candidate and a trajectory, checking what each page shows; and a run with 64
candidates and 100-step trajectories stays readable (long outputs folded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from swescale.selection.config import OFFLINE_SELECTORS

pytestmark = [pytest.mark.browser]

RUN_ID = "report-browser"


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory: pytest.TempPathFactory, docker_client):
    """``swescale run -c scripted`` on two mini tasks, as a user runs it: plan:mixed plays
    gold, wrong, gold, empty on each task; every candidate graded."""
    from swescale.sandbox import reap, running_sandboxes

    runs = tmp_path_factory.mktemp("runs")
    command = [
        sys.executable, "-m", "swescale.cli", "run", "-c", "scripted",
        "-o", "dataset.slice=0:2", "-o", f"runs_dir={runs}", "--run-id", RUN_ID,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    left = running_sandboxes(docker_client, RUN_ID)
    reap(docker_client, run_id=RUN_ID)
    assert not left, f"containers left behind: {left}"
    assert done.returncode == 0, done.stdout + done.stderr
    return runs / RUN_ID, done.stdout, done.stderr


def _task(run: Path, index: int) -> dict:
    folders = sorted(p for p in run.iterdir() if (p / "task.json").is_file())
    return json.loads((folders[index] / "task.json").read_text())


@pytest.mark.docker
def test_the_terminal_shows_progress_and_tables_only(scripted_run) -> None:
    run, out, err = scripted_run
    text = out + err
    for noise in ("HTTP Request", " INFO ", "DEBUG", "Traceback", "warning"):
        assert noise not in text, (noise, text)
    assert "selection comparison" in out and f"run {RUN_ID}" in out
    assert "report/index.html" in out.replace("\n", "")
    # Every log record went to the run's log file instead.
    assert (run / "swescale.log").is_file()


@pytest.mark.docker
def test_from_the_overview_to_a_task_a_candidate_and_a_trajectory(page, scripted_run) -> None:
    run, _, _ = scripted_run
    task = _task(run, 0)
    page.goto((run / "report" / "index.html").as_uri())
    assert page.locator("#resolve-rate").inner_text().startswith("2/2")
    assert page.locator("#selector-table tbody tr").count() >= 6  # pass@1, pass@4, run, 4
    for img in page.locator(".plots img").all():
        assert img.evaluate("i => i.complete && i.naturalWidth > 0"), img.get_attribute("src")

    # The task: four trajectories (gold, wrong, gold, empty) make two candidates.
    page.locator("a.task-link", has_text=task["id"]).click()
    assert page.url.endswith(f"task/{task['id']}.html")
    assert page.locator("#pool-table tbody tr").count() == 2
    trajectories = page.locator("#trajectory-table tbody tr")
    assert trajectories.count() == 4
    assert "no patch" in trajectories.nth(3).inner_text()
    assert "hybrid" in page.locator(".selection").inner_text()
    # One row per selector: the run's pick (hybrid; the report's own run of hybrid
    # agrees and is folded into it) and every other offline selector.
    names = page.locator("#picks tbody tr td:first-child").all_inner_texts()
    assert sorted(names) == sorted(OFFLINE_SELECTORS)
    assert "F2P " + task["fail_to_pass"][0] in page.locator("table.matrix").first.inner_text()

    # The picked candidate: the gold patch, from trajectories 0 and 2, resolves.
    page.locator("#picked").click()
    assert "/candidate/" in page.url
    producers = page.locator("#producers-table").inner_text()
    assert ".r0.t00" in producers and ".r0.t02" in producers and ".r0.t01" not in producers
    truth = page.locator("#truth ~ p").first.inner_text()
    assert "resolves" in truth and "does not" not in truth
    for test in task["fail_to_pass"]:
        assert test in page.content()
    # The grading run's test output is one click away.
    candidate_url = page.url
    page.locator("a.test-output").click()
    assert task["fail_to_pass"][0].split("::")[-1] in page.content()
    page.goto(candidate_url)

    # Its first producer: look, apply the fix, submit; the diff after the fix is there.
    page.locator("#producers-table a.trajectory-link").first.click()
    assert page.url.endswith(".r0.t00.html")
    assert page.locator("section.step").count() == 3
    fix = page.locator("#step-1")
    assert "git apply" in fix.inner_text()
    gold_added = next(
        line[1:] for line in task["gold_patch"].splitlines() if line.startswith("+") and not line.startswith("+++")
    )  # fmt: skip
    assert gold_added.strip() in fix.locator("details.state").inner_text()
    assert "submitted" in page.locator(".facts").inner_text()

    # Back on the task, the other candidate came from the wrong trajectory and fails.
    page.locator("nav.crumbs a", has_text="task").click()
    assert page.url.endswith(f"task/{task['id']}.html")
    page.locator("#pool-table tbody tr").nth(1).locator("a.candidate-link").click()
    assert ".r0.t01" in page.locator("#producers-table").inner_text()
    assert "does not resolve" in page.locator(".facts").inner_text()
    assert not page.failed_requests and not page.console_errors


@pytest.fixture(scope="module")
def big_site(tmp_path_factory: pytest.TempPathFactory):
    from swescale.report import build_site
    from swescale.report.synthetic import make_run

    return build_site(
        make_run(tmp_path_factory.mktemp("big"), candidates=64, trajectories=3, steps=100)
    )


def test_a_100_step_trajectory_is_folded(page, big_site) -> None:
    page.goto((big_site.root / "trajectory" / "synthetic__task-0.r0.t00.html").as_uri())
    assert page.locator("section.step").count() == 100
    folds = page.locator("section.step details.fold")
    assert folds.count() >= 10
    full = folds.first.locator("pre")
    assert not full.is_visible()
    folds.first.locator("summary").click()
    assert full.is_visible() and "line 299 of step 0" in full.inner_text()
    # Folded, a step with 300 lines of output is about as tall as one with three.
    heights = page.evaluate(
        "[0, 1].map(i => document.getElementById('step-' + i).getBoundingClientRect().height)"
    )
    folds.first.locator("summary").click()
    heights_folded = page.evaluate(
        "document.getElementById('step-0').getBoundingClientRect().height"
    )
    assert heights_folded < 3 * heights[1]


def test_a_pool_of_64_candidates_is_one_screen_of_table(page, big_site) -> None:
    page.goto((big_site.root / "task" / "synthetic__task-0.html").as_uri())
    assert page.locator("#pool-table tbody tr").count() == 64
    patches = page.locator("details.patch")
    assert patches.count() == 64
    # Only the picked patch is open; the other 63 diffs are folded away.
    assert page.locator("details.patch[open]").count() == 1
    assert not patches.nth(1).locator("pre").is_visible()
    row = page.locator("#pool-table tbody tr").first.bounding_box()
    assert row is not None and row["height"] < 80
