"""The cost of each model-free verifier, and of resuming an ensemble, as ratios in one run.

A mini-benchmark task and a pool of six producers (the wrong fix three times, one of
them with a reproduction script, the gold fix with a reproduction test, the alternative
fix, a patch that does not apply): the ensemble runs cold (every verifier in fresh
sandboxes), then again over the same output directory (every verdict stored: nothing to
run). Per verifier, wall seconds relative to the static checks.

    .venv/bin/python benchmarks/bench_ensemble.py [--task swescale-mini__slugkit-1]

Absolute seconds are printed only beside the ratios (a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from fixture_repos import mini_instance

from swescale.sandbox import DockerSandbox, docker_client
from swescale.selection.candidates import candidates_from
from swescale.selection.ensemble import EnsembleConfig, run_ensemble

TEST = (
    "diff --git a/tests/test_bench_issue.py b/tests/test_bench_issue.py\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/tests/test_bench_issue.py\n@@ -0,0 +1,4 @@\n"
    "+from slugkit import slugify\n+\n+def test_issue():\n"
    '+    assert slugify("Rock & Roll") == "rock-roll"\n'
)
SCRIPT = (
    "diff --git a/reproduce.py b/reproduce.py\nnew file mode 100644\n--- /dev/null\n"
    "+++ b/reproduce.py\n@@ -0,0 +1,2 @@\n+from slugkit import slugify\n"
    '+print(slugify("Hello, World!"))\n'
)
NOT_A_PATCH = (
    "diff --git a/slugkit/core.py b/slugkit/core.py\n--- a/slugkit/core.py\n"
    "+++ b/slugkit/core.py\n@@ -1,2 +1,2 @@\n-missing line\n+other\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="swescale-mini__slugkit-1")
    args = parser.parse_args()
    client = docker_client()
    with tempfile.TemporaryDirectory() as tmp:
        task, image = mini_instance(client, args.task, Path(tmp))
        started = {"n": 0}

        def make():
            started["n"] += 1
            return DockerSandbox.create(
                client,
                image.tag,
                image.sandbox_config(command_timeout=120),
                labels={"run": "bench-ensemble"},
                base_commit=task.base_commit,
            )

        wrong = task.extra["wrong_patches"][0]
        pool = {
            "a": wrong,
            "b": wrong,
            "c": wrong + SCRIPT,
            "d": task.gold_patch + TEST,
            "e": task.extra["alt_patches"][0],
            "f": NOT_A_PATCH,
        }
        cands = {task.id: candidates_from(task.id, {}, pool)}
        out = Path(tmp) / "out"
        cfg = EnsembleConfig(verifier_workers=2, test_timeout=120)
        start = time.perf_counter()
        run_ensemble([task], cands, out, lambda t: make, cfg)
        cold = time.perf_counter() - start
        cold_sandboxes = started["n"]
        start = time.perf_counter()
        run_ensemble(
            [task], {task.id: candidates_from(task.id, {}, pool)}, out, lambda t: make, cfg
        )
        warm = time.perf_counter() - start
        seconds = json.loads((out / task.id / "ensemble.json").read_text())["seconds"]
    n = len(cands[task.id])
    print(f"pool: {len(pool)} producers, {n} distinct candidates")
    print(f"cold ensemble: {cold:.1f}s, {cold_sandboxes} sandboxes")
    print(f"resumed ensemble: {warm:.2f}s, {started['n'] - cold_sandboxes} sandboxes")
    print(f"resume speed-up: {cold / max(warm, 1e-6):.0f}x")
    base = seconds.get("static") or 1e-6
    for name, value in seconds.items():
        print(f"{name:>10}: {value / base:5.2f}x the static checks ({value:.1f}s)")


if __name__ == "__main__":
    main()
