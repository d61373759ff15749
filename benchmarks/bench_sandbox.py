"""Sandbox hot paths, measured side by side in one run; prints ratios.

1. Command round trip: the persistent session versus one process per command, both as
   `docker exec` through the CLI (mini-swe-agent's Docker environment and the SWE-bench
   harness) and through the SDK.
2. Acquiring a sandbox from the warm pool versus a cold container start.
3. Restoring the state at step k versus re-running the k recorded commands, k = 1, 10, 50.

Usage: .venv/bin/python benchmarks/bench_sandbox.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from swescale.sandbox import (
    DockerSandbox,
    SandboxConfig,
    WarmPool,
    docker_client,
    ensure_base_image,
)

# Fixed dates make the same commit hash in every sandbox, as in an instance image.
INIT_REPO = (
    "cd /repo && git init -q && echo base > f0.txt && git add -A && "
    "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z git commit -qm base"
)


def median_seconds(fn, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_round_trip(client, image: str, rounds: int) -> None:
    with DockerSandbox.create(client, image, labels={"run": "bench"}) as sb:
        session = median_seconds(lambda: sb.execute("true"), rounds)
        sdk = median_seconds(lambda: sb.exec_once("true"), max(rounds // 5, 5))
        cid = sb.container.id
        cli = median_seconds(
            lambda: subprocess.run(["docker", "exec", cid, "bash", "-c", "true"], check=True),
            max(rounds // 5, 5),
        )
    print("command round trip (median):")
    print(f"  persistent session      {session * 1e3:8.2f} ms   1.0x")
    print(f"  docker exec via SDK     {sdk * 1e3:8.2f} ms   {sdk / session:6.1f}x slower")
    print(f"  docker exec via CLI     {cli * 1e3:8.2f} ms   {cli / session:6.1f}x slower")


def bench_pool(client, image: str, rounds: int) -> None:
    cold_samples, warm_samples = [], []
    with WarmPool(client, image, SandboxConfig(), size=1, labels={"run": "bench"}) as pool:
        for _ in range(rounds):
            pool.acquire(timeout=120).close()  # make sure the refill is ready before timing
            time.sleep(0.5)
            while pool._ready.qsize() == 0:
                time.sleep(0.1)
            start = time.perf_counter()
            sb = pool.acquire()
            warm_samples.append(time.perf_counter() - start)
            sb.close()
            start = time.perf_counter()
            DockerSandbox.create(client, image, labels={"run": "bench"}).close()
            cold_samples.append(time.perf_counter() - start)
    cold, warm = statistics.median(cold_samples), statistics.median(warm_samples)
    print("acquire a ready sandbox (median):")
    print(f"  warm pool               {warm * 1e3:8.2f} ms   1.0x")
    print(f"  cold start              {cold * 1e3:8.2f} ms   {cold / warm:6.1f}x slower")


def bench_restore(client, image: str) -> None:
    print("reach the state after step k (one sample each):")
    print("      k   restore(blob)   re-run k commands   ratio")
    with DockerSandbox.create(client, image, labels={"run": "bench"}) as src:
        src.exec_once(INIT_REPO)
        src.base_commit = src.exec_once("git -C /repo rev-parse HEAD").output.strip()
        for k in (1, 10, 50):
            commands = [
                f"cd /repo && printf 'line {i}\\n' >> f{i % 7}.txt && python3 -c 'pass'"
                for i in range(k)
            ]
            src.exec_once("cd /repo && git checkout -q . && git clean -qfd")
            for command in commands:
                src.execute(command)
            _, blob = src.snapshot()
            with (
                DockerSandbox.create(client, image, labels={"run": "bench"}) as a,
                DockerSandbox.create(client, image, labels={"run": "bench"}) as b,
            ):
                for sb in (a, b):
                    sb.exec_once(INIT_REPO)
                    sb.base_commit = src.base_commit
                start = time.perf_counter()
                a.restore(blob)
                restore = time.perf_counter() - start
                start = time.perf_counter()
                for command in commands:
                    b.execute(command)
                rerun = time.perf_counter() - start
                assert a.diff() == b.diff() == src.diff()
            print(
                f"  {k:5d}   {restore * 1e3:10.1f} ms   {rerun * 1e3:12.1f} ms   {rerun / restore:6.1f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    client = docker_client()
    image = ensure_base_image(client)
    bench_round_trip(client, image, args.rounds)
    bench_pool(client, image, 5)
    bench_restore(client, image)


if __name__ == "__main__":
    main()
