"""The live display counts what exploration reports, from several threads."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from swescale.scaling.progress import LiveProgress
from swescale.types import Cost


def test_live_progress_counts_trajectories_tokens_and_cost() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    with LiveProgress(console, total_tasks=2, show_dollars=True) as live:
        live.trajectories_planned("a", 4)

        def work(i: int) -> None:
            live.trajectory_started("a", f"t{i}")
            live.spent("a", Cost(tokens_in=10, tokens_out=5, dollars=0.01))
            live.trajectory_finished("a", f"t{i}", "ran", "submitted")

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        live.trajectory_skipped("a", "t3", "budget")
        live.task_finished("a", "done")
        note = live._note()
    trajs = live._progress.tasks[live._trajs]
    assert (trajs.completed, trajs.total) == (4, 4)
    assert live._progress.tasks[live._tasks].completed == 1
    assert "0 running" in note and "45 tokens" in note and "$0.0300" in note
