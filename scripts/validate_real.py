"""Validate real SWE-bench instances offline from a folder of mirrors, and print the table
per repository (build and test seconds included).

    .venv/bin/python scripts/validate_real.py --mirrors /srv/mirrors \\
        [--data ../shared/data/swebench] [--repos light|all|owner/name,...] [--workers 2] \\
        [--per-repo N] [-- extra swescale validate arguments]

The instances are every Verified and Lite (test and dev) row of the chosen repositories
(``light``: the nine light repositories), one row per instance id. Repositories without a
mirror are skipped with a note; without any mirror the script says so and exits 0, so
it can run anywhere. Results: ``validate-real.json`` and the usual
``logs/run_validation/<run id>/`` in the working directory.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

LIGHT = (
    "psf/requests",
    "pallets/flask",
    "marshmallow-code/marshmallow",
    "pydicom/pydicom",
    "pvlib/pvlib-python",
    "sqlfluff/sqlfluff",
    "pylint-dev/astroid",
    "pylint-dev/pylint",
    "pytest-dev/pytest",
)
FILES = (
    "SWE-bench_Verified-test.parquet",
    "SWE-bench_Lite-test.parquet",
    "SWE-bench_Lite-dev.parquet",
)


def has_mirror(mirrors: Path, repo: str) -> bool:
    name = repo.replace("/", "__")
    return any(
        p.is_dir()
        for p in (mirrors / f"{name}.git", mirrors / name, mirrors / f"{repo}.git", mirrors / repo)
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mirrors", type=Path, required=True)
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/swebench"
    )
    parser.add_argument("--repos", default="light")
    parser.add_argument(
        "--per-repo", type=int, default=0, help="At most N instances per repository."
    )
    parser.add_argument("--workers", default="2")
    parser.add_argument("--run-id", default="validate-real")
    parser.add_argument("rest", nargs="*", help="Extra arguments for swescale validate.")
    args = parser.parse_args()
    if not args.mirrors.is_dir():
        print(f"no mirrors folder at {args.mirrors}: nothing to validate")
        return 0
    tables = [pq.read_table(args.data / f) for f in FILES if (args.data / f).is_file()]
    if not tables:
        print(f"no SWE-bench parquet files in {args.data}: nothing to validate")
        return 0
    rows: dict[str, dict] = {}
    for table in tables:
        for row in table.to_pylist():
            rows.setdefault(row["instance_id"], row)
    wanted = (
        LIGHT
        if args.repos == "light"
        else None
        if args.repos == "all"
        else tuple(args.repos.split(","))
    )
    chosen, missing = [], set()
    counts: dict[str, int] = {}
    for row in sorted(rows.values(), key=lambda r: (r["repo"], r["version"], r["instance_id"])):
        if wanted and row["repo"] not in wanted:
            continue
        if not has_mirror(args.mirrors, row["repo"]):
            missing.add(row["repo"])
            continue
        if args.per_repo and counts.get(row["repo"], 0) >= args.per_repo:
            continue
        counts[row["repo"]] = counts.get(row["repo"], 0) + 1
        chosen.append(row)
    for repo in sorted(missing):
        print(f"skipped {repo}: no mirror in {args.mirrors}")
    if not chosen:
        print("no instance has a mirror: nothing to validate")
        return 0
    dataset = Path(f"{args.run_id}.parquet").resolve()
    pq.write_table(pa.Table.from_pylist(chosen), dataset)
    print(f"validating {len(chosen)} instances of {len(counts)} repositories")
    cmd = [
        sys.executable,
        "-m",
        "swescale.cli",
        "validate",
        "--dataset",
        str(dataset),
        "--repos-dir",
        str(args.mirrors),
        "--workers",
        args.workers,
        "--run-id",
        args.run_id,
        "--json",
        f"{args.run_id}.json",
        *args.rest,
    ]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
