"""Model requests on the ledger, and the run's stop signal reaching a trajectory."""

from __future__ import annotations

import threading

import pytest

from swescale.agent.models.scripted import ScriptedModel
from swescale.scaling.ledger import BudgetLedger
from swescale.scaling.metered import MeteredModel, RunInterrupted


def _metered(ledger: BudgetLedger, stop: threading.Event) -> MeteredModel:
    return MeteredModel(
        ScriptedModel([{"content": "one", "tokens_out": 7}, {"content": "two", "tokens_out": 5}]),
        ledger=ledger,
        task_id="t1",
        slots=threading.Semaphore(1),
        stop=stop,
        model_name="priced",
    )


def test_requests_are_charged_with_prices() -> None:
    ledger = BudgetLedger(prices={"priced": (1_000_000.0, 2_000_000.0)})
    model = _metered(ledger, threading.Event())
    first = model.complete([{"role": "user", "content": "x" * 40}])
    assert first.text == "one"
    cost = ledger.task_cost("t1")
    assert cost.tokens_out == 7 and cost.tokens_in == first.tokens_in > 0
    assert cost.dollars == pytest.approx(first.tokens_in * 1.0 + 7 * 2.0)
    assert ledger.kind_cost("agent") == cost


def test_a_stopping_run_interrupts_the_next_request() -> None:
    stop = threading.Event()
    ledger = BudgetLedger()
    model = _metered(ledger, stop)
    model.complete([{"role": "user", "content": "x"}])
    stop.set()
    with pytest.raises(RunInterrupted):
        model.complete([{"role": "user", "content": "x"}, {"role": "assistant", "content": "one"}])
    # Not an Exception: the agent's error handling must not turn it into a footer.
    assert not issubclass(RunInterrupted, Exception)
    assert ledger.run_cost().tokens_out == 7


def test_other_attributes_pass_through() -> None:
    model = _metered(BudgetLedger(), threading.Event())
    assert model.name == "scripted" and model.turns
