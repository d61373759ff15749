"""Branching at step k versus sampling the same k steps afresh, as ratios in one run.

A recorded trajectory on a mini-benchmark task (the scripted model exploring the
repository step by step) is the archive. To stand at step k again, a fresh sample re-runs
k model turns and their commands; a branch restores the recorded state blob of step k in
a new sandbox and spends no model turn. Measured for k = 2, 5, 10: sandbox seconds (wall
time from a new sandbox to standing at step k: start + k steps, or start + restore) and
model tokens (the scripted model counts them as a real one would be billed).

    .venv/bin/python benchmarks/bench_branching.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from fixture_repos import mini_instance

from swescale.agent.config import AgentConfig
from swescale.agent.graph import run_agent
from swescale.agent.models.scripted import ScriptedModel
from swescale.record import BlobStore
from swescale.sandbox import DockerSandbox, docker_client

COMMANDS = [
    "ls -R slugkit tests",
    "grep -rn 'def ' slugkit | head -40",
    "cat slugkit/core.py",
    "cat tests/test_slugify.py",
    "python -m pytest -q -p no:cacheprovider tests 2>&1 | tail -3",
    "git log --oneline | head",
    "grep -rn 're.sub' slugkit",
    "sed -n 1,40p slugkit/core.py",
    "python -c 'import slugkit; print(slugkit.slugify(\"Hello, World!\"))'",
    "sed -i 's/\\[^A-Za-z0-9\\]\", sep/[^A-Za-z0-9]+\", sep/' slugkit/core.py",
    "git diff",
    "python -m pytest -q -p no:cacheprovider tests 2>&1 | tail -3",
]
SCRIPT = [f"Next I look further.\n\n```bash\n{c}\n```" for c in COMMANDS] + ["```bash\nsubmit\n```"]


def main() -> None:
    client = docker_client()
    with tempfile.TemporaryDirectory() as tmp:
        task, image = mini_instance(client, "swescale-mini__slugkit-1", Path(tmp))

        def make() -> DockerSandbox:
            return DockerSandbox.create(
                client,
                image.tag,
                image.sandbox_config(),
                labels={"run": "bench-branching"},
                base_commit=task.base_commit,
            )

        blobs = BlobStore(Path(tmp) / "blobs")
        with make() as sb:
            archive = run_agent(task, sb, ScriptedModel(SCRIPT), AgentConfig(), blob_store=blobs)
        print(f"archive: {len(archive.steps)} steps, exit {archive.exit_status}")
        print(" k   seconds fresh/branch          tokens fresh vs branch")
        for k in (2, 5, 10):
            # Both start a new sandbox; that start is counted in both.
            start = time.perf_counter()
            with make() as sb:
                fresh = run_agent(
                    task, sb, ScriptedModel(SCRIPT), AgentConfig(step_limit=k + 1), blob_store=blobs
                )
                fresh_seconds = time.perf_counter() - start
            fresh_tokens = fresh.totals.tokens_in + fresh.totals.tokens_out
            blob = blobs.get(archive.steps[k].state.sha256)
            start = time.perf_counter()
            with make() as sb:
                sb.restore(blob)
                branch_seconds = time.perf_counter() - start
                same = sb.snapshot()[0].sha256 == archive.steps[k].state.sha256
            print(
                f"{k:2d}   {fresh_seconds / branch_seconds:6.1f}x  "
                f"({fresh_seconds:.2f}s vs {branch_seconds:.2f}s)   "
                f"{fresh_tokens} vs 0 tokens   state identical: {same}"
            )


if __name__ == "__main__":
    main()
