"""The selection agent: the scripted model drives a real agent in real Docker sandboxes."""

from __future__ import annotations

import pytest

from swescale.agent.config import AgentConfig
from swescale.agent.models.scripted import ScriptedModel
from swescale.selection.agent_selector import SelectionAgent, describe_finalists, parse_decision
from swescale.selection.candidates import candidates_from


def test_parse_decision_takes_the_last_valid_winner():
    text = "WINNER: B\nno wait\nWINNER: **A**\nA passes the new test, B fails it."
    label, reasons = parse_decision(text, ["A", "B"])
    assert label == "A" and "passes the new test" in reasons
    assert parse_decision("WINNER: Z", ["A", "B"])[0] is None
    assert parse_decision("", ["A"]) == (None, "")


def test_finalists_are_described_with_their_files():
    cands = candidates_from("t", {"x": "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"})
    text = describe_finalists(cands)
    assert 'label="A"' in text and "/tmp/finalists/A.patch" in text and "+a = 2" in text


TELL_APART = [
    "I will write a test from the issue's example.\n\n```bash\ncat > /tmp/test_sel.py <<'EOF'\n"
    "from slugkit import slugify\n\n\ndef test_runs_collapse():\n"
    '    assert slugify("Rock & Roll") == "rock-roll"\nEOF\n```',
    "Now run it against each finalist.\n\n```bash\ncd /testbed && for L in A B; do "
    "git apply /tmp/finalists/$L.patch && if python -m pytest -q -p no:cacheprovider "
    "/tmp/test_sel.py >/dev/null 2>&1; then printf 'WINNER: %s\\nits patch passes "
    "/tmp/test_sel.py (Rock & Roll -> rock-roll); the other fails it\\n' $L > "
    "/tmp/selection.txt; fi; git checkout -q -- .; done; cat /tmp/selection.txt\n```",
    "```bash\nsubmit\n```",
]


@pytest.mark.docker
def test_selection_agent_writes_a_test_and_picks_the_right_finalist(mini_by_id, sandbox_factory):
    task = mini_by_id["swescale-mini__slugkit-1"]
    make = sandbox_factory(task, command_timeout=60)
    # The wrong patch has more votes: a majority vote would pick it.
    cands = candidates_from(
        task.id,
        {
            "g": task.gold_patch,
            "w1": task.extra["wrong_patches"][0],
            "w2": task.extra["wrong_patches"][0],
        },
    )
    gold = next(c for c in cands if "g" in c.trajectory_ids)
    agent = SelectionAgent(make, ScriptedModel(TELL_APART), AgentConfig(step_limit=6), finalists=2)
    sel = agent.select(task, cands)
    assert sel.candidate_id == gold.id, sel.rationale
    assert "rock-roll" in sel.rationale and not sel.flagged
    assert sel.ranking[0] == gold.id and set(sel.ranking) == {c.id for c in cands}
    # An agent that decides nothing: the pre-ranking's pick stands, flagged.
    silent = SelectionAgent(make, ScriptedModel(["```bash\nsubmit\n```"]), finalists=2)
    sel = silent.select(task, cands)
    assert sel.flagged and sel.candidate_id == cands[0].id and "named no finalist" in sel.rationale
