"""The budget ledger: totals, prices, caps, persistence, threads."""

from __future__ import annotations

import threading

import pytest

from swescale.scaling.config import BudgetConfig
from swescale.scaling.ledger import BudgetLedger, price_cost
from swescale.types import Cost


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_price_cost_fills_dollars_per_million_tokens() -> None:
    priced = price_cost(Cost(tokens_in=2_000_000, tokens_out=500_000), 3.0, 15.0)
    assert priced.dollars == pytest.approx(6.0 + 7.5)


def test_price_cost_keeps_given_dollars_and_free_models() -> None:
    assert price_cost(Cost(tokens_in=10, dollars=1.25), 3.0, 15.0).dollars == 1.25
    assert price_cost(Cost(tokens_in=10, model_seconds=2.0), 0.0, 0.0).dollars == 0.0


def test_charges_add_up_per_task_kind_and_run() -> None:
    ledger = BudgetLedger(prices={"gpt": (1.0, 2.0)})
    ledger.charge("t1", Cost(tokens_in=1_000_000, tokens_out=0), "agent", model="gpt")
    ledger.charge("t1", Cost(tokens_in=0, tokens_out=1_000_000), "judge", model="gpt")
    ledger.charge("t2", Cost(tokens_in=5, model_seconds=3.0, sandbox_seconds=4.0), "agent")
    assert ledger.task_cost("t1").dollars == pytest.approx(3.0)
    assert ledger.task_cost("t2").model_seconds == 3.0
    assert ledger.kind_cost("agent").tokens_in == 1_000_005
    assert ledger.kind_cost("judge").dollars == pytest.approx(2.0)
    run = ledger.run_cost()
    assert run.tokens_in + run.tokens_out == 2_000_005
    assert run.sandbox_seconds == 4.0


@pytest.mark.parametrize(
    ("budget", "cost", "expected"),
    [
        (BudgetConfig(task_tokens=100), Cost(tokens_in=60, tokens_out=40), "task tokens"),
        (BudgetConfig(task_tokens=101), Cost(tokens_in=60, tokens_out=40), None),
        (BudgetConfig(task_dollars=0.5), Cost(dollars=0.5), "task dollars"),
        (BudgetConfig(task_sandbox_seconds=10), Cost(sandbox_seconds=12), "task sandbox seconds"),
        (BudgetConfig(task_model_seconds=10), Cost(model_seconds=9.9), None),
        (BudgetConfig(run_tokens=10), Cost(tokens_out=10), "run tokens"),
        (BudgetConfig(run_dollars=1.0), Cost(dollars=2.0), "run dollars"),
        (BudgetConfig(run_model_seconds=5), Cost(model_seconds=6), "run model seconds"),
        (BudgetConfig(), Cost(tokens_in=10**9, dollars=10**6), None),
    ],
)
def test_caps(budget: BudgetConfig, cost: Cost, expected: str | None) -> None:
    ledger = BudgetLedger(budget)
    ledger.charge("t1", cost)
    reason = ledger.exceeded("t1")
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_task_cap_does_not_stop_other_tasks_but_run_cap_does() -> None:
    ledger = BudgetLedger(BudgetConfig(task_tokens=10, run_tokens=25))
    ledger.charge("a", Cost(tokens_in=10))
    assert ledger.exceeded("a") is not None
    assert ledger.exceeded("b") is None
    ledger.charge("b", Cost(tokens_in=15))
    assert "run tokens" in (ledger.exceeded("c") or "")
    assert "run tokens" in (ledger.exceeded(None) or "")


def test_wall_time_cap_counts_earlier_sessions() -> None:
    clock = FakeClock()
    ledger = BudgetLedger(BudgetConfig(run_wall_seconds=60), clock=clock)
    clock.now += 40
    saved = ledger.to_dict()
    assert saved["wall_seconds"] == pytest.approx(40)
    assert ledger.exceeded() is None
    clock2 = FakeClock()
    resumed = BudgetLedger.from_dict(saved, BudgetConfig(run_wall_seconds=60), clock=clock2)
    clock2.now += 19
    assert resumed.exceeded() is None
    clock2.now += 1
    assert "run wall seconds" in (resumed.exceeded() or "")


def test_round_trip_keeps_totals_by_task_and_kind() -> None:
    ledger = BudgetLedger()
    ledger.charge("t1", Cost(tokens_in=3, tokens_out=4, dollars=0.5), "agent")
    ledger.charge("t1", Cost(sandbox_seconds=2.5), "verifier")
    ledger.charge("t2", Cost(model_seconds=1.5), "selection")
    again = BudgetLedger.from_dict(ledger.to_dict())
    assert again.task_cost("t1") == ledger.task_cost("t1")
    assert again.kind_cost("verifier").sandbox_seconds == 2.5
    assert again.run_cost() == ledger.run_cost()
    again.charge("t2", Cost(model_seconds=1.0), "selection")
    assert again.to_dict()["by_task"]["t2"]["by_kind"]["selection"]["model_seconds"] == 2.5


def test_restore_accepts_empty_and_missing_parts() -> None:
    ledger = BudgetLedger.from_dict(None)
    assert ledger.run_cost() == Cost()
    ledger.restore({"run": {"tokens_in": 7}})
    assert ledger.run_cost().tokens_in == 7


def test_concurrent_charges_are_not_lost() -> None:
    ledger = BudgetLedger()

    def work(task: str) -> None:
        for _ in range(2000):
            ledger.charge(task, Cost(tokens_in=1, dollars=0.001))

    threads = [threading.Thread(target=work, args=(f"t{i % 3}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.run_cost().tokens_in == 16000
    assert sum(ledger.task_cost(f"t{i}").tokens_in for i in range(3)) == 16000
