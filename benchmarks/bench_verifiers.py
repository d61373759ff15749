"""Verifier matrix throughput with and without the result cache, as ratios in one run.

A mini-benchmark task, its gold, alternative and wrong patches plus one that does not
apply, and a few reproduction tests: the full test x candidate matrix is run cold (empty
cache: one fresh sandbox per candidate), then again over the same cache (no sandbox), and
cold once more with 1 worker versus 2 workers.

    .venv/bin/python benchmarks/bench_verifiers.py [--task swescale-mini__slugkit-1]

Prints cells per second as ratios; absolute seconds only beside them (on a shared 2-core
machine they mean little alone).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fixture_repos import mini_instance

from swescale.sandbox import DockerSandbox, docker_client
from swescale.selection.candidates import candidates_from
from swescale.verifiers.execution import ResultCache
from swescale.verifiers.repro import ReproTest, run_matrix

TESTS = [
    ReproTest(
        f"tests/test_bench_{i}.py",
        "from slugkit import slugify\n\n\ndef test_case():\n"
        f"    assert slugify({text!r}) == {want!r}\n",
    )
    for i, (text, want) in enumerate(
        [("Hello, World!", "hello-world"), ("Rock & Roll", "rock-roll"), ("a  b", "a-b")]
    )
]
NOT_A_PATCH = (
    "diff --git a/slugkit/core.py b/slugkit/core.py\n--- a/slugkit/core.py\n"
    "+++ b/slugkit/core.py\n@@ -1,2 +1,2 @@\n-missing line\n+other\n"
)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="swescale-mini__slugkit-1")
    args = parser.parse_args()
    client = docker_client()
    with tempfile.TemporaryDirectory() as tmp:
        task, image = mini_instance(client, args.task, Path(tmp))

        def make():
            return DockerSandbox.create(
                client,
                image.tag,
                image.sandbox_config(command_timeout=60),
                labels={"run": "bench-verifiers"},
                base_commit=task.base_commit,
            )

        patches = {"gold": task.gold_patch, "broken": NOT_A_PATCH}
        patches |= {f"alt{i}": p for i, p in enumerate(task.extra.get("alt_patches", []))}
        patches |= {f"wrong{i}": p for i, p in enumerate(task.extra.get("wrong_patches", []))}
        cands = candidates_from(task.id, patches)
        cells = len(cands) * len(TESTS)

        cache = ResultCache(f"{tmp}/cache")
        cold, _ = timed(lambda: run_matrix(TESTS, cands, make, cache=cache, workers=2, reruns=0))
        warm, matrix = timed(lambda: run_matrix(TESTS, cands, make, cache=cache, workers=2))
        assert all(c.cached for row in matrix.values() for c in row.values())
        one, _ = timed(lambda: run_matrix(TESTS, cands, make, cache=None, workers=1, reruns=0))
        two, _ = timed(lambda: run_matrix(TESTS, cands, make, cache=None, workers=2, reruns=0))

    print(f"matrix: {len(TESTS)} tests x {len(cands)} candidates = {cells} cells ({task.id})")
    print(
        f"cached vs uncached throughput: {cold / warm:8.1f}x   "
        f"({cells / cold:.2f} vs {cells / warm:.0f} cells/s)"
    )
    print(
        f"2 workers vs 1 worker:         {one / two:8.2f}x   "
        f"({cells / two:.2f} vs {cells / one:.2f} cells/s)"
    )


if __name__ == "__main__":
    main()
