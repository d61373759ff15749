"""The step loop at repository scale, measured side by side in one run; prints ratios to
the command round trip.

For each repository (fixtures of pytest's and django's size, see fixture_repos.py, and the
real pytest when a local mirror is present), in sandboxes of its image:

  command round trip            sandbox.execute("true") in the persistent session
  snapshot after one-line edit  `sed -i` on one line of a text file, then snapshot(): the
                                resident state watcher (the default), and the shell
                                function alone (state_watcher off) in a sandbox beside it
  snapshot, nothing changed     snapshot() again (a read-only step), both ways
  first snapshot                once per sandbox: builds the private index, starts the
                                watcher
  previous snapshot method      the state diff through a copy of .git/index, written to a
                                file and copied out as an archive (the method this
                                replaced, reproduced here for comparison)
  docker exec round trip        one `docker exec` per command as mini-swe-agent runs them:
                                its DockerEnvironment.execute when it is installed in a
                                throwaway venv (--msa-python, default /tmp/msa-venv), and
                                always its exact call reproduced here, `docker exec -w
                                /repo CONTAINER bash -lc CMD`
  restore at k = 1, 10, 50      restore() of the state after k edit commands (the edits
                                cycle over five files)
  re-run k commands             the same k commands (an edit and a `python3 -c pass` each)

Beside the wall times, the CPU the container's processes use per call: a shared host's
load stretches wall time roughly in proportion to it, while a round trip, mostly waiting
on sockets, stretches far less.

Restores and re-runs use a sandbox put back to the base commit between samples (`git
checkout`, `git clean`): the same work tree as a fresh sandbox's, without timing starts.
Medians over --rounds, interleaved, so machine load hits every row alike.

Usage: .venv/bin/python benchmarks/bench_snapshots.py [--rounds 15] [--repos pytest-size,django-size,pytest]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fixture_repos import PROFILES, fixture_image, mirror_image

from swescale.sandbox import DockerSandbox, SandboxConfig, docker_client, ensure_base_image
from swescale.sandbox.engine import owner_labels
from swescale.sandbox.state import JUNK_PATHSPECS
from swescale.types import StateRef

PYTEST_MIRROR = Path("/work/.mirror/pytest-dev+pytest/repo")
PYTEST_COMMIT = "2f406bb9cb8538e5a43551d6eeffe2be80bccefa"  # 2020-06-01, 512 files
RESET = "cd /repo && git checkout -q -- . && git clean -qfd"

# The snapshot this package took before: a copy of the agent's index, `git add -A` on it,
# the diff written to a file, the file copied out with `docker cp`'s archive call.
PREVIOUS = (
    "cd /repo && set -e; idx=$(mktemp); trap 'rm -f \"$idx\"' EXIT; "
    'if [ -f .git/index ]; then cp .git/index "$idx"; fi; '
    'GIT_INDEX_FILE="$idx" command git add -A -- . {junk} >/dev/null 2>&1; '
    'GIT_INDEX_FILE="$idx" command git -c core.quotepath=off diff --cached --binary '
    "--no-color --no-ext-diff {base} > /tmp/.bench-previous.patch"
)

MSA_DRIVER = """
import json, statistics, sys, time
from minisweagent.environments.docker import DockerEnvironment
image, rounds, labels = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
run_args = ["--rm", "--network", "none"] + [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
env = DockerEnvironment(image=image, cwd="/repo", run_args=run_args)
try:
    env.execute({"command": "true"})
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        out = env.execute({"command": "true"})
        samples.append(time.perf_counter() - start)
        assert out["returncode"] == 0, out
    print(json.dumps({"median": statistics.median(samples), "n": len(samples)}))
finally:
    env.cleanup()
"""


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def container_cpu(sb: DockerSandbox) -> float | None:
    """CPU seconds the container's processes used so far (cgroup v1 or v2), or None."""
    cid = sb.id
    for path, scale in (
        (f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e-9),
        (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e-6),
        (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e-6),
    ):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        if path.endswith("cpu.stat"):
            text = next(
                line.split()[1] for line in text.splitlines() if line.startswith("usage_usec")
            )
        return int(text) * scale
    return None


def cpu_of(sb: DockerSandbox, fn, n: int = 1) -> float:
    """Container CPU seconds per call of ``fn`` (NaN where the cgroup is not readable)."""
    before = container_cpu(sb)
    for _ in range(n):
        fn()
    after = container_cpu(sb)
    return float("nan") if before is None or after is None else (after - before) / n


def round_trip(sb: DockerSandbox, n: int = 20) -> float:
    return statistics.median(timed(lambda: sb.execute("true")) for _ in range(n))


def previous_snapshot(sb: DockerSandbox) -> bytes:
    junk = " ".join(shlex.quote(p) for p in JUNK_PATHSPECS)
    # In a subshell, as it ran: its `set -e` and `trap` must not stay in the session.
    made = sb.execute(f"( {PREVIOUS.format(junk=junk, base=sb.base_commit)} )", timeout=600)
    assert made.exit_code == 0, made.output
    return sb.box.get_file("/tmp/.bench-previous.patch")


def docker_exec_cli(container_id: str) -> None:
    subprocess.run(
        ["docker", "exec", "-w", "/repo", container_id, "bash", "-lc", "true"],
        check=True,
        capture_output=True,
    )


def msa_execute(msa_python: Path, image: str, rounds: int) -> float | None:
    """Median seconds of mini-swe-agent's own DockerEnvironment.execute, or None."""
    if not msa_python.exists():
        return None
    labels = {**owner_labels(), "swescale.run": "bench-msa"}
    done = subprocess.run(
        [str(msa_python), "-c", MSA_DRIVER, image, str(rounds), json.dumps(labels)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        print(f"   (mini-swe-agent run failed: {done.stderr.strip()[-300:]})", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["median"]


def edit_command(path: str, i: int) -> str:
    return f"cd /repo && sed -i '1s/$/ # edit {i}/' {shlex.quote(path)}"


def bench_repo(client, name: str, image: str, texts: list[str], args) -> dict[str, float]:
    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    # Edit mid-sized text files, as an agent edits source files.
    middle = texts[len(texts) // 2 : len(texts) // 2 + 50] or texts
    no_watcher = SandboxConfig(state_watcher=False)
    with (
        DockerSandbox.create(client, image, labels={"run": "bench-scale"}) as sb,
        DockerSandbox.create(client, image, labels={"run": "bench-scale"}) as other,
        DockerSandbox.create(client, image, no_watcher, labels={"run": "bench-scale"}) as shell,
    ):
        add("first", timed(sb.snapshot))
        add("first", timed(other.snapshot))
        add("first_shell", timed(shell.snapshot))
        for r in range(args.rounds):
            add("rt", round_trip(sb))
            command = edit_command(middle[r % len(middle)], r)
            sb.execute(command)
            shell.execute(command)
            add("edit", timed(sb.snapshot))
            add("edit_shell", timed(shell.snapshot))
            add("none", timed(sb.snapshot))
            add("none_shell", timed(shell.snapshot))
            # The container's CPU per call: what the machine's load multiplies.
            add("cpu_rt", cpu_of(sb, lambda: sb.execute("true"), 20))
            command = edit_command(middle[r % len(middle)], r + 1000)
            sb.execute(command)
            shell.execute(command)
            add("cpu_edit", cpu_of(sb, sb.snapshot))
            add("cpu_edit_shell", cpu_of(shell, shell.snapshot))
            add("cpu_none", cpu_of(sb, sb.snapshot))
            add("cli", timed(lambda: docker_exec_cli(sb.container.id)))
            if r < args.previous_rounds:
                add("previous", timed(lambda: previous_snapshot(sb)))
                add("cpu_previous", cpu_of(sb, lambda: previous_snapshot(sb)))

        # The states after k edit commands first, then their restores and re-runs timed
        # in turn, so that the machine's load drifts over every k alike.
        states: dict[int, tuple[list[str], StateRef, bytes]] = {}
        for k in (1, 10, 50):
            # The edits cycle over five files, as a trajectory revisits the files it fixes.
            commands = [edit_command(middle[i % 5], i) + " && python3 -c pass" for i in range(k)]
            sb.execute(RESET)
            sb.snapshot()
            for command in commands:
                sb.execute(command)
            ref, blob = sb.snapshot()
            states[k] = (commands, ref, blob)
            add(f"blob{k}", len(blob))
        for rep in range(args.restore_rounds):
            for k, (commands, ref, blob) in states.items():
                other.execute(RESET)
                add(f"restore{k}", timed(lambda blob=blob: other.restore(blob)))
                if rep == 0:
                    assert other.snapshot()[0] == ref, f"restore at k={k} differs"
                if rep < args.rerun_rounds:
                    other.execute(RESET)

                    def rerun(commands: list[str] = commands) -> None:
                        for command in commands:
                            other.execute(command)

                    add(f"rerun{k}", timed(rerun))
        # Every timed snapshot of the watcher's sandbox was its answer, none the shell's.
        assert sb.state_sources["watcher"] > 0, sb.state_sources
        assert shell.state_sources["watcher"] == 0, shell.state_sources
        sources = dict(sb.state_sources)
    result = {key: statistics.median(values) for key, values in rows.items()}
    result["sources"] = sources  # type: ignore[assignment]
    result["msa"] = msa_execute(Path(args.msa_python), image, args.rounds) or float("nan")
    return result


def report(title: str, m: dict[str, float]) -> None:
    rt = m["rt"]
    print(f"\n{title}")
    print(f"   {'':44} {'median':>10}   {'x round trip':>12}")
    lines = [
        ("rt", "command round trip (persistent session)"),
        ("edit", "snapshot after a one-line edit (watcher)"),
        ("none", "snapshot, nothing changed (watcher)"),
        ("edit_shell", "snapshot after a one-line edit (shell fn)"),
        ("none_shell", "snapshot, nothing changed (shell fn)"),
        ("first", "first snapshot of a sandbox (watcher, once)"),
        ("first_shell", "first snapshot of a sandbox (shell fn, once)"),
        ("previous", "previous snapshot method (copy, archive)"),
        ("cli", "docker exec round trip (its exact call)"),
        ("msa", "docker exec round trip (mini-swe-agent)"),
    ]
    lines += [
        (f"restore{k}", f"restore at k={k} ({int(m[f'blob{k}'])} B state)") for k in (1, 10, 50)
    ]
    lines += [(f"rerun{k}", f"re-run k={k} commands") for k in (1, 10, 50)]
    for key, label in lines:
        value = m.get(key, float("nan"))
        print(f"   {label:<44} {value * 1e3:8.2f} ms   {value / rt:10.1f}x")
    print("   container CPU per call (the part the machine's load multiplies):")
    for key, label in (
        ("cpu_rt", "command round trip"),
        ("cpu_edit", "snapshot after a one-line edit (watcher)"),
        ("cpu_edit_shell", "snapshot after a one-line edit (shell fn)"),
        ("cpu_none", "snapshot, nothing changed"),
        ("cpu_previous", "previous snapshot method"),
    ):
        print(f"     {label:<42} {m[key] * 1e3:8.2f} ms")
    print(f"   snapshot after an edit, previous / now        {m['previous'] / m['edit']:8.1f}x")
    print(f"   snapshot after an edit, shell fn / watcher    {m['edit_shell'] / m['edit']:8.1f}x")
    print(f"   ways the watcher's sandbox read its states    {m['sources']}")
    print(
        f"   restore k=50 / k=1                            {m['restore50'] / m['restore1']:8.2f}x"
    )
    print(f"   re-run 50 commands / restore k=50             {m['rerun50'] / m['restore50']:8.1f}x")
    print(f"   docker exec (its call) / session round trip   {m['cli'] / rt:8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--previous-rounds", type=int, default=5)
    parser.add_argument("--restore-rounds", type=int, default=11)
    parser.add_argument("--rerun-rounds", type=int, default=3)
    parser.add_argument("--repos", default="pytest-size,django-size,pytest")
    parser.add_argument("--msa-python", default="/tmp/msa-venv/bin/python")
    args = parser.parse_args()
    client = docker_client()
    base = ensure_base_image(client)
    print(f"host: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    for name in args.repos.split(","):
        if name in PROFILES:
            profile = PROFILES[name]
            image, texts = fixture_image(client, base, profile)
            title = f"{name} fixture: {profile.files} files, {profile.dirs} dirs ({profile.source})"
        elif name == "pytest":
            made = mirror_image(client, base, "pytest", PYTEST_MIRROR, PYTEST_COMMIT)
            if made is None:
                print(f"\npytest mirror: not at {PYTEST_MIRROR}, skipped (the fixtures stand in)")
                continue
            image, texts = made
            title = f"pytest itself at {PYTEST_COMMIT[:9]} (local mirror)"
        else:
            raise SystemExit(f"unknown repository {name!r}: {', '.join([*PROFILES, 'pytest'])}")
        report(title, bench_repo(client, name, image, texts, args))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
