"""Selector accuracy on the mini benchmark, end to end in real sandboxes.

For each task a seeded producer plays trajectories that end in a mix of patches: right
(gold, alternative fixes), wrong, decoys (pass the issue's tests, break others), broken
(do not apply) and empty. The patches become candidates; the execution verifiers run on
them (reproduction tests taken from the tests the task's test patch adds, standing in
for a testing trajectory that wrote exactly those; regression tests found by the usual
heuristics); every candidate is graded by the official grading to give labels. The
result is a run directory that ``swescale select`` and ``selection_comparison`` read.

    .venv/bin/python -m swescale.selection.mini_eval OUT_DIR [--tasks ID ...] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from swescale.patches import parse_patch
from swescale.record.task import write_candidates, write_labels, write_task, write_verdicts
from swescale.selection.candidates import candidates_from
from swescale.types import Task
from swescale.verifiers.base import annotate
from swescale.verifiers.regression import RegressionVerifier
from swescale.verifiers.repro import ReproTest, ReproTestVerifier

BROKEN = (
    "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
    "@@ -1,2 +1,2 @@\n-this line is not in the file\n+so the patch cannot apply\n"
)


def produced_patches(task: Task, rng: random.Random) -> dict[str, str]:
    """Trajectory id -> final patch, for a seeded mix of outcomes."""
    kinds: list[tuple[str, str]] = [("gold", task.gold_patch or "")]
    kinds += [("alt", p) for p in task.extra.get("alt_patches", [])]
    kinds += [("wrong", p) for p in task.extra.get("wrong_patches", [])]
    kinds += [("decoy", p) for p in task.extra.get("decoy_patches", [])]
    kinds += [("broken", BROKEN), ("empty", "")]
    patches: dict[str, str] = {}
    for kind, patch in kinds:
        copies = rng.randint(0, 1) if kind in ("broken", "empty") else rng.randint(0, 3)
        for _ in range(copies):
            patches[f"t{len(patches):02d}-{kind}"] = patch
    if not any(k.split("-")[1] in ("gold", "alt", "wrong", "decoy") for k in patches):
        patches[f"t{len(patches):02d}-wrong"] = kinds[0][1] if rng.random() < 0.5 else BROKEN
    return patches


def repro_tests_from_test_patch(task: Task, read_base: Callable[[str], str]) -> list[ReproTest]:
    """The test functions a task's test patch adds, as standalone test files: the
    original file's imports and support code (up to its first test) plus the added lines."""
    tests = []
    for fp in parse_patch(task.test_patch or "").files:
        if not fp.path.endswith(".py"):
            continue
        added = [line[1:] for h in fp.hunks for line in h.lines if line.startswith("+")]
        if not any(line.lstrip().startswith("def test") for line in added):
            continue
        header: list[str] = []
        if fp.old_path:
            for line in read_base(fp.old_path).splitlines():
                if line.startswith(("def test", "class Test", "@pytest")):
                    break
                header.append(line)
        stem = Path(fp.path).stem.removeprefix("test_")
        folder = str(Path(fp.path).parent)
        body = "\n".join(header + [""] + added) + "\n"
        tests.append(ReproTest(f"{folder}/test_repro_{stem}.py", body))
    return tests


def evaluate_task(
    task: Task,
    make_sandbox: Callable,
    grade: Callable[[str], bool | None],
    out_dir: Path,
    seed: int = 0,
    workers: int = 2,
) -> Path:
    """Write ``out_dir/<task>/`` with candidates, verdicts and labels."""
    from swescale.record.run import safe_name

    rng = random.Random(f"{seed}:{task.id}")
    cands = candidates_from(task.id, produced_patches(task, rng))
    sandbox = make_sandbox()
    try:
        tests = repro_tests_from_test_patch(
            task, lambda p: sandbox.read_file(p).decode("utf-8", "replace")
        )
    finally:
        sandbox.close()
    folder = out_dir / safe_name(task.id)
    for verifier in (
        ReproTestVerifier(make_sandbox, tests, workers=workers, timeout=120),
        RegressionVerifier(make_sandbox, workers=workers, timeout=300),
    ):
        write_verdicts(folder, verifier.name, annotate(task, cands, verifier))
    labels = {}
    for cand in cands:
        outcome = grade(cand.patch)
        if outcome is not None:
            labels[cand.id] = cand.resolved = outcome
    write_candidates(folder, cands)
    write_labels(folder, labels)
    write_task(folder, task)
    return folder


def run_mini_eval(out_dir: Path, task_ids: Sequence[str] = (), seed: int = 0) -> list[dict]:
    """Evaluate every (or the named) mini task and return the comparison rows."""
    import tempfile

    from swescale.sandbox import DockerSandbox, ImagesConfig, docker_client
    from swescale.selection.metrics import selection_comparison
    from swescale.swebench.config import GradingConfig
    from swescale.swebench.images import instance_image
    from swescale.swebench.mini import mini_tasks
    from swescale.swebench.run import grade_patch
    from swescale.swebench.specs import repo_source_for

    tasks = [t for t in mini_tasks() if not task_ids or t.id in task_ids]
    client = docker_client()
    grading = GradingConfig(timeout=300)
    with tempfile.TemporaryDirectory() as tmp:
        repos = repo_source_for(tasks, Path(tmp))
        for task in tasks:
            image = instance_image(
                client, task, images=ImagesConfig(), grading=grading, repos=repos
            )

            def make(image=image, task=task):
                return DockerSandbox.create(
                    client,
                    image.tag,
                    image.sandbox_config(command_timeout=300),
                    labels={"run": "mini-eval", "task": task.id},
                    base_commit=task.base_commit,
                )

            def grade(patch: str, task=task, image=image) -> bool | None:
                result = grade_patch(client, task, patch, grading, image)
                return result.verdict

            evaluate_task(task, make, grade, Path(out_dir), seed)
    return selection_comparison(out_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description="Selector accuracy on the mini benchmark.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--tasks", nargs="*", default=[])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = run_mini_eval(args.out_dir, args.tasks, args.seed)
    for row in rows:
        acc = row.get("accuracy")
        shown = "n/a" if acc is None else f"{acc:.1%}"
        print(f"{row['selector']:>12}  labelled={row.get('labelled')}  accuracy={shown}")


if __name__ == "__main__":
    main()
