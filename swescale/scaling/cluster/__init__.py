"""Running a batch on a Ray cluster (``scaling.executor: ray``).

```python
from swescale.scaling.cluster import run_on_ray
result = run_on_ray(cfg, rundir, tasks)   # what `swescale run` does with executor=ray
```

- :mod:`.executor` (driver): connects, starts the run's actors, submits one Ray task per
  swescale task, collects results, reaps containers on the Docker nodes;
- :mod:`.worker` (node): runs ``BatchRunner.run_task`` with the node's engine and model;
- :mod:`.store` (actor on the driver's node): run-level records, ledger, stop flag;
- :mod:`.node`, :mod:`.mirror`: records written on a node reach the run directory;
- :mod:`.balance`: least-loaded model endpoints across the cluster;
- :mod:`.images`: images found, pulled from a shared registry, or built, per node.

Ray is an optional dependency (``pip install 'swescale[ray]'``); nothing here imports it
at module level except the executor's functions when called.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClusterError": "executor",
    "RayExecutor": "executor",
    "run_on_ray": "executor",
    "RunStore": "store",
    "LeastLoaded": "balance",
    "BalancedModel": "balance",
    "TaskMirror": "mirror",
    "ensure_image": "images",
    "planned_instance_tag": "images",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'swescale.scaling.cluster' has no attribute {name!r}")
    return getattr(importlib.import_module(f"swescale.scaling.cluster.{module}"), name)
