"""Snapshots on real SWE-bench instances: the state watcher against the shell function.

    .venv/bin/python scripts/check_snapshots_real.py --dataset D.parquet [--per-repo 1]
        [--repos owner/name,...]

For each repository with an instance image on this engine (built by `swescale validate`
or `eval`; nothing is built here), one instance: in a sandbox of its image, the steps an
agent takes (the gold patch written with `git apply`, its test patch, a test run that
leaves bytecode behind, a new file, a deletion) are snapshotted after each step, and
every state is compared byte for byte with the shell function computed from nothing
kept (`DockerSandbox.reference_state`). The table gives, per repository: tracked files,
whether every state agreed, which way each was read, and the snapshot after the gold
patch against a command round trip, with the watcher and with the shell function alone
in a sandbox beside it. Skips cleanly (exit 0, a message) when no instance image is there.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections import defaultdict

from swescale.sandbox import DockerSandbox, SandboxConfig, docker_client
from swescale.swebench.config import DatasetConfig
from swescale.swebench.datasets import load_tasks
from swescale.swebench.images import REPO_DIR


def local_instance_images(client) -> dict[str, str]:
    """instance id (lower case, as the tag has it) -> image tag, for every local
    swescale/instance image."""
    found = {}
    for image in client.images.list(name="swescale/instance"):
        for tag in image.tags:
            slug = tag.split(":", 1)[1].rsplit("-", 1)[0]
            found[slug] = tag
    return found


def steps() -> list[tuple[str, str]]:
    """(name, command) of the agent-like steps, in order (the patches are in /tmp)."""
    apply = "git apply --whitespace=nowarn"
    return [
        ("gold patch", f"{apply} /tmp/gold.patch"),
        ("test patch", f"{apply} /tmp/test.patch"),
        ("bytecode left by a run", "python -m compileall -q . >/dev/null 2>&1 || true"),
        ("new file", "echo 'print(1)' > scratch_check.py"),
        ("deletion", "git ls-files '*.py' | head -1 | xargs rm -f"),
        ("read-only step", "git status --short >/dev/null"),
    ]


def check(client, task, image: str, rounds: int) -> dict:
    row = {"repo": task.repo, "instance": task.id}
    labels = {"run": "check-snapshots"}
    with (
        DockerSandbox.create(client, image, SandboxConfig(workdir=REPO_DIR), labels) as sb,
        DockerSandbox.create(
            client, image, SandboxConfig(workdir=REPO_DIR, state_watcher=False), labels
        ) as shell,
    ):
        for box in (sb, shell):
            box.snapshot()
            box.write_file("/tmp/gold.patch", task.gold_patch or "")
            box.write_file("/tmp/test.patch", task.test_patch or "")
        row["files"] = int(sb.execute("git ls-files | wc -l").output.strip() or 0)
        agree = True
        for name, command in steps():
            for box in (sb, shell):
                done = box.execute(command, timeout=600)
                if not done.ok and name in ("gold patch", "test patch"):
                    raise SystemExit(f"{task.id}: {name} did not apply: {done.output[-300:]}")
            blob = sb.snapshot()[1]
            same = blob == sb.reference_state() == shell.snapshot()[1]
            if not same:
                print(f"   {task.id}: {name}: the states differ", file=sys.stderr)
            agree &= same
        row["agree"] = agree
        row["sources"] = dict(sb.state_sources)
        # Timing: the gold patch's files touched again, snapshot, both ways, interleaved.
        times = defaultdict(list)
        touched = sb.execute("git diff --name-only HEAD | head -3").output.split()
        for i in range(rounds):
            edit = " && ".join(f"echo '# {i}' >> {shlex.quote(p)}" for p in touched) or "true"
            for key, box in (("watcher", sb), ("shell", shell)):
                start = time.perf_counter()
                box.execute("true")
                times[f"rt_{key}"].append(time.perf_counter() - start)
                box.execute(edit)
                start = time.perf_counter()
                box.snapshot()
                times[key].append(time.perf_counter() - start)
        rt = statistics.median(times["rt_watcher"] + times["rt_shell"])
        row["watcher_x"] = statistics.median(times["watcher"]) / rt
        row["shell_x"] = statistics.median(times["shell"]) / rt
        row["rt_ms"] = rt * 1e3
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="a SWE-bench parquet/JSON file")
    parser.add_argument("--per-repo", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--repos", default="", help="owner/name,... (default: every one)")
    args = parser.parse_args()
    client = docker_client()
    images = local_instance_images(client)
    wanted = {r for r in args.repos.split(",") if r}
    tasks = [
        t
        for t in load_tasks(DatasetConfig(name=args.dataset))
        if t.id.lower() in images and (not wanted or t.repo in wanted)
    ]
    if not tasks:
        print("no instance image of this dataset on this engine: nothing to check (skipped)")
        return
    chosen: dict[str, list] = defaultdict(list)
    for task in sorted(tasks, key=lambda t: t.id):
        if len(chosen[task.repo]) < args.per_repo and task.gold_patch:
            chosen[task.repo].append(task)
    rows = []
    for _, picked in sorted(chosen.items()):
        for task in picked:
            print(f"checking {task.id} ...", file=sys.stderr)
            rows.append(check(client, task, images[task.id.lower()], args.rounds))
    print(
        "| instance | tracked files | every state equal | read by | round trip | "
        "snapshot after edits: watcher | shell function |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ways = ", ".join(f"{k} {v}" for k, v in sorted(r["sources"].items()))
        print(
            f"| {r['instance']} | {r['files']} | {'yes' if r['agree'] else 'NO'} | {ways} | "
            f"{r['rt_ms']:.2f} ms | {r['watcher_x']:.1f}x | {r['shell_x']:.1f}x |"
        )
    if not all(r["agree"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
