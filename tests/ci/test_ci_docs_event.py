"""The CI bot's docs carry a sample event (docs/ci-event.json, shown in docs/ci-bot.md):
`ci parse` reads it as the docs say, so a new user can try the bot before wiring it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from swescale.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_sample_event_in_the_docs_is_the_file_and_parses(calc_repo) -> None:
    sample = DOCS / "ci-event.json"
    page = (DOCS / "ci-bot.md").read_text()
    shown = re.search(r"```json\n(.*?)```", page, re.S)
    assert shown and json.loads(shown[1]) == json.loads(sample.read_text())
    assert "swescale ci parse --event docs/ci-event.json" in page
    result = CliRunner().invoke(app, ["ci", "parse", "--event", str(sample)])
    assert result.exit_code == 0, result.output
    assert "would work on acme/calc#7 (issue_comment.created)" in result.output
    assert '"scaling.n_parallel=2"' in result.output
    work, base = calc_repo
    planned = CliRunner().invoke(app, ["ci", "parse", "--event", str(sample), "--repo", str(work)])
    assert planned.exit_code == 0, planned.output
    assert '"task_id": "acme__calc-7"' in planned.output and base in planned.output
