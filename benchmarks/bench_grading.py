"""Grading costs on the mini benchmark, measured side by side in one run.

1. Building an instance image versus grading one candidate in it: how many candidates
   one build is worth (the reason images are cached by content tag).
2. Grading throughput with 1 versus 2 workers over the same candidates.

Usage: .venv/bin/python benchmarks/bench_grading.py [--tasks 4] [--repeats 3]
Needs the Docker engine; builds the base image on first use (a few minutes).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from swescale.sandbox import ImagesConfig, build_layer, docker_client
from swescale.swebench.config import GradingConfig
from swescale.swebench.evaluate import Grader
from swescale.swebench.images import REPO_DIR, VENV_ENV, env_image, instance_recipe
from swescale.swebench.mini import mini_tasks


def time_instance_build(grader: Grader, task) -> float:
    """A fresh build of the task's instance layer under a throwaway tag (removed after),
    so the shared cached image is left alone."""
    env = env_image(
        grader.client, task, images=grader.images, grading=grader.grading, repos=grader.repos
    )
    # The recipe grading builds (setup script and all), under a throwaway tag.
    recipe = instance_recipe(task, env.tag, grader.grading, grader.repos)
    tag = f"swescale/bench-instance:{uuid.uuid4().hex[:12]}"
    start = time.monotonic()
    archive = grader.repos.checkout_tar(task, root=REPO_DIR.lstrip("/"))
    build_layer(
        grader.client,
        env.tag,
        tag,
        list(recipe.commands),
        archives=[("/", archive)],
        files=dict(recipe.files),
        env=VENV_ENV,
        workdir=REPO_DIR,
        pip_config=True,
    )
    seconds = time.monotonic() - start
    grader.client.images.remove(tag, force=True)
    return seconds


def grade_all(grader: Grader, jobs: list, workers: int) -> float:
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda job: grader.grade(*job), jobs))
    bad = [r for r in results if r.status == "error"]
    if bad:
        raise SystemExit(f"grading errored: {bad[0].error}")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    client = docker_client()
    tasks = mini_tasks()[: args.tasks]
    grader = Grader.for_tasks(client, tasks, ImagesConfig(), GradingConfig(timeout=300))
    grader.labels = {"run": "bench-grading"}
    for task in tasks:  # warm: every instance image exists before anything is timed
        image = grader.image(task)
        if isinstance(image, str):
            raise SystemExit(f"{task.id}: {image}")

    task = tasks[0]
    builds = [time_instance_build(grader, task) for _ in range(args.repeats)]
    grades = [grader.grade(task, task.gold_patch).seconds for _ in range(args.repeats * 2)]
    build_s, grade_s = statistics.median(builds), statistics.median(grades)
    print(
        f"instance image build vs one grading ({task.id}, medians of {args.repeats} / {2 * args.repeats}):"
    )
    print(f"  build {build_s:.2f}s, grade {grade_s:.2f}s -> build/grade = {build_s / grade_s:.1f}x")

    jobs = [(t, p) for t in tasks for p in (t.gold_patch, "")]
    one = statistics.median(grade_all(grader, jobs, 1) for _ in range(args.repeats))
    two = statistics.median(grade_all(grader, jobs, 2) for _ in range(args.repeats))
    print(f"throughput over {len(jobs)} gradings (medians of {args.repeats}):")
    print(
        f"  1 worker {len(jobs) / one:.2f}/s, 2 workers {len(jobs) / two:.2f}/s -> 2w/1w = {one / two:.2f}x"
    )


if __name__ == "__main__":
    main()
