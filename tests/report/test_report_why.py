"""Why a patch was picked, in headless chromium: the pick beside the runner-up and the
majority's candidate, the harvested tests matrix, a failed static check's reason, one
P(resolved) scale and ties shown as ties, one row per selector after `swescale select`,
no machine paths in any page, and the run's report.html a plain page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from evidence_run import make_evidence_run
from typer.testing import CliRunner

from swescale.cli import app
from swescale.report import build_site, write_run_page

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_evidence_run(tmp_path_factory.mktemp("runs"))
    build_site(folder)
    write_run_page(folder)
    return folder


def _task_page(page, run: Path, task: str = "why__core-1"):
    page.goto((run / "report" / "task" / f"{task}.html").as_uri())
    return page


def _row(table, name: str) -> list[str]:
    row = table.locator("tbody tr", has=table.page.locator("th", has_text=name)).first
    return row.locator("td").all_inner_texts()


def test_the_pick_beside_the_runner_up_and_the_majority(page, run) -> None:
    _task_page(page, run)
    why = page.locator("#why-table")
    heads = why.locator("thead th").all_inner_texts()
    assert "picked" in heads[1] and "win" in heads[1]
    assert "runner-up" in heads[2] and "alt" in heads[2]
    assert "majority's candidate" in heads[3] and "maj" in heads[3]
    sentence = page.locator("#why-sentence").inner_text()
    # Equal on every piece of sandbox evidence: a tie, broken by the pool prior.
    assert sentence.startswith("A tie") and "locality 1.00 vs 0.50" in sentence
    assert "after ties on static checks, execution, behaviour share" in sentence
    # The line that decided is marked, and only that one.
    assert why.locator("tr.decided th").inner_text().startswith("locality and size")
    assert why.locator("tr.decided").count() == 1
    # Each piece of evidence, per candidate.
    assert _row(why, "harvested tests")[0] == "passes 2 of 2 from others"
    assert "2 of its own (not counted)" in _row(why, "harvested tests")[1]
    assert "fails test_a, test_b" in _row(why, "harvested tests")[2]
    assert _row(why, "existing tests broken") == [
        "none of 10",
        "none of 10",
        "2 of 10: test_kept_0, test_kept_1",
    ]
    assert all(c == "applies, compiles, imports" for c in _row(why, "static checks"))
    assert _row(why, "votes") == ["1 of 5", "1 of 5", "2 of 5"]
    cost = _row(why, "cost")
    assert cost[0].startswith("agent 1,550 tok") and "verifiers" in cost[0]
    assert cost[2].startswith("agent 2,200 tok")  # two trajectories produced it
    assert "does not resolve" in heads[3]
    # The two patches side by side, the lines that differ marked.
    diff = page.locator("table.diff")
    assert "picked win" in diff.inner_text() and "runner-up alt" in diff.inner_text()
    assert diff.locator(".diff_add, .diff_chg, .diff_sub").count() > 0
    assert "tests/test_new.py" in diff.locator("td").all_inner_texts()[-1] or (
        "tests/test_new.py" in diff.inner_text()
    )
    assert not page.failed_requests and not page.console_errors


def test_the_harvested_tests_as_a_matrix_with_their_authors(page, run) -> None:
    _task_page(page, run)
    matrix = page.locator("table.matrix", has_text="Harvested tests")
    heads = [h.strip() for h in matrix.locator("thead th").all_inner_texts()]
    assert heads[:2] == ["test", "written by"]
    assert heads[2:] == ["win ★", "alt", "maj", "bad"]
    row = matrix.locator("tbody tr", has_text="test_a").locator("td").all_inner_texts()
    assert row[1] == "alt (r0.t02)"
    assert row[2:] == ["pass", "pass (own)", "fail", "error"]
    assert matrix.locator("tbody tr").count() == 2


def test_a_failed_static_check_names_its_reason(page, run) -> None:
    _task_page(page, run)
    bad = page.locator("#pool-table tbody tr", has_text="bad")
    assert "SyntaxError at pkg/core.py:12 (invalid syntax)" in bad.inner_text()
    page.locator("#pool-table a.candidate-link", has_text="bad").click()
    verdict = page.locator("#verdict-static")
    assert "SyntaxError at pkg/core.py:12" in verdict.locator("p").first.inner_text()


def test_one_probability_scale_and_a_tie_shown_as_a_tie(page, run) -> None:
    _task_page(page, run)
    picks = page.locator("#picks tbody tr")
    pool = {
        r.locator("td").nth(1).inner_text(): r.locator("td").nth(4).inner_text()
        for r in page.locator("#pool-table tbody tr").all()
    }
    for row in picks.all():
        cells = row.locator("td").all_inner_texts()
        shown = cells[4]
        # A pick states its candidate's P(resolved), the number in the pool table.
        assert shown.startswith("tie of") or shown == pool[cells[2]], cells
    # Two candidates the evidence cannot tell apart: a tie, never certainty.
    _task_page(page, run, "why__util-1")
    assert "a tie" in page.locator(".selection").inner_text()
    evidence = page.locator("#picks tbody tr", has_text="evidence").locator("td").nth(4)
    assert evidence.inner_text() == "tie of 2"
    assert "candidate id" in page.locator("#why-sentence").inner_text()
    page.goto((run / "report" / "index.html").as_uri())
    util = page.locator("#task-table tbody tr", has_text="why__util-1")
    assert "tie of 2" in util.inner_text() and "1.00" not in util.inner_text()


def test_select_lists_each_selector_once_and_says_what_it_replaced(page, run) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["select", "--run", str(run), "-s", "all"], env={"COLUMNS": "80"})
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["select", "--run", str(run), "-s", "majority"])
    assert again.exit_code == 0, again.output
    assert "replaced the earlier majority selection of 2 task(s)" in again.output
    assert "1 changed its pick" not in again.output  # the same picks again
    _task_page(page, run)
    names = page.locator("#picks tbody tr td:first-child").all_inner_texts()
    assert len(names) == len(set(names)), names
    sources = page.locator("#picks tbody tr td:nth-child(2)").all_inner_texts()
    assert any("swescale select" in s for s in sources)


def test_no_page_names_a_path_of_the_machine(page, run) -> None:
    machine = [str(run.resolve().parent), str(Path.home()) + "/"]
    pages = [run / "report.html", *sorted((run / "report").rglob("*.html"))]
    for path in pages:
        text = path.read_text()
        for prefix in machine:
            assert prefix not in text, (path.name, prefix)
    page.goto((run / "report" / "index.html").as_uri())
    failures = page.locator("#failures").locator("xpath=following-sibling::table[1]")
    assert "see swescale.log and ~/x" in failures.inner_text()
    trajectory = run / "report" / "trajectory" / "why__core-1.r0.t00.html"
    page.goto(trajectory.as_uri())
    assert "imported/why__core-1.r0.t00.traj" in page.content()


def test_the_run_page_is_a_page_not_a_redirect(page, run, tmp_path) -> None:
    html = (run / "report.html").read_text()
    assert not re.search(r"http-equiv=.?refresh", html, re.I)
    page.goto((run / "report.html").as_uri())
    assert "why-run" in page.locator("h1").inner_text()
    assert "2/2 tasks done" in page.locator("#run-facts").inner_text()
    # A screenshot returns (a refresh made headless browsers wait on the next page).
    shot = tmp_path / "run.png"
    page.screenshot(path=str(shot), timeout=15_000)
    assert shot.stat().st_size > 1000
    page.locator("#open-report").click()
    assert page.url.endswith("report/index.html")
    assert page.locator("#resolve-rate").inner_text().startswith("2/2")


def test_a_pool_without_candidates_says_there_was_nothing_to_pick(page, tmp_path) -> None:
    from swescale.record.task import write_candidates, write_selection
    from swescale.selection.selectors import no_candidates
    from swescale.types import Task

    folder = make_evidence_run(tmp_path)
    task = folder / "why__util-1"
    write_candidates(task, [])
    write_selection(
        task,
        no_candidates(
            Task(id="why__util-1", repo="o/util", base_commit="0", problem_statement="p"),
            "evidence",
        ),
    )
    build_site(folder)
    _task_page(page, folder, "why__util-1")
    assert "Nothing to pick" in page.locator("#nothing-to-pick").inner_text()
    assert page.locator("#picks").count() == 0 and page.locator("#why").count() == 0
    assert "abstained" not in page.locator("main").inner_text()
