"""Spending test-time compute: parallel x serial exploration, the budget ledger, batch
runs that resume from their run directory (written through :mod:`swescale.record`).

```python
from swescale.scaling import launch, BatchRunner, BudgetLedger, explore_task
result = launch(load_config("scripted"), run_id="r1")   # what `swescale run` does
```

Names are imported on first use: ``swescale.config`` imports this package's config
module, so importing the rest eagerly here would be circular.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BatchResult": "batch",
    "BatchRunner": "batch",
    "TaskFailed": "batch",
    "ExploreEnv": "explore",
    "TaskExploration": "explore",
    "TrajectoryOutcome": "explore",
    "TrajectorySpec": "explore",
    "explore_task": "explore",
    "plan_round": "explore",
    "launch": "launcher",
    "BudgetLedger": "ledger",
    "price_cost": "ledger",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'swescale.scaling' has no attribute {name!r}")
    return getattr(importlib.import_module(f"swescale.scaling.{module}"), name)
