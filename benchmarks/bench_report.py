"""Building the report site, as ratios measured side by side in one run.

1. The scripted preset (configs/scripted.yaml: every mini task, 4 trajectories each = 40
   trajectories, real Docker sandboxes, grading of every candidate): seconds per
   trajectory of the run itself and of building its report.
2. A synthetic run with 64 candidates and 100-step trajectories with long outputs: seconds
   per trajectory of building the report against only reading the trajectory records (the
   floor any report pays), and the page size per trajectory.

    .venv/bin/python benchmarks/bench_report.py [--run-dir runs/<scripted run>] [--skip-run]

``--run-dir`` reuses a finished scripted run instead of running one (then part 1 shows the
run's recorded wall time). Absolute times are printed only beside their ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def scripted_run(root: Path) -> tuple[Path, float]:
    from swescale.config import load_config
    from swescale.scaling.launcher import launch

    cfg = load_config("scripted", [f"runs_dir={root}"])
    started = time.perf_counter()
    result = launch(cfg, run_id="bench-report", live=False)
    if result.failed or result.interrupted:
        raise SystemExit(f"the scripted run did not finish: {result.results}")
    return result.run_dir.root, time.perf_counter() - started


def build_seconds(run: Path, repeats: int) -> tuple[float, int, int]:
    """Median seconds of build_site over ``repeats`` builds; trajectories; site bytes."""
    from swescale.report import build_site

    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = build_site(run)
        times.append(time.perf_counter() - started)
    assert result is not None
    size = sum(p.stat().st_size for p in result.root.rglob("*") if p.is_file())
    return statistics.median(times), result.trajectories, size


def read_seconds(run: Path, repeats: int) -> float:
    from swescale.record.trajectory import read_trajectory

    files = sorted(run.glob("*/trajectories/*.jsonl"))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for path in files:
            read_trajectory(path)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", type=Path, help="a finished scripted run to reuse")
    parser.add_argument("--skip-run", action="store_true", help="part 2 only")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from swescale.report.synthetic import make_run

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp)
        if not args.skip_run:
            if args.run_dir:
                run = args.run_dir
                info = json.loads((run / "run.json").read_text())
                run_seconds = float(info["ledger"]["wall_seconds"])
            else:
                run, run_seconds = scripted_run(root / "runs")
            report, n, size = build_seconds(run, args.repeats)
            print(f"scripted run: {n} trajectories")
            print(f"  run      {run_seconds / n:8.3f} s/trajectory   1.00")
            print(
                f"  report   {report / n:8.3f} s/trajectory   {report / run_seconds:.3f} of the run"
            )
            print(f"  site     {size / n / 1024:8.1f} KiB/trajectory")
        synthetic = make_run(root / "synthetic", candidates=64, trajectories=40, steps=100)
        read = read_seconds(synthetic, args.repeats)
        report, n, size = build_seconds(synthetic, args.repeats)
        print(f"synthetic run: {n} trajectories x 100 steps, 64 candidates")
        print(f"  read records {read / n:8.3f} s/trajectory   1.00")
        print(f"  report       {report / n:8.3f} s/trajectory   {report / read:.1f}x reading")
        print(f"  site         {size / n / 1024:8.1f} KiB/trajectory")


if __name__ == "__main__":
    main()
