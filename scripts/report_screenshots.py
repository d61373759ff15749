"""Screenshots of the report's page kinds (overview, task, candidate, trajectory) in
headless chromium, as PNG files.

    python scripts/report_screenshots.py [RUN_DIR] [--out DIR]

Without RUN_DIR it first runs the scripted preset on two mini tasks (Docker, about a
minute) into ./runs. The pages shown: the overview, the first task, its picked candidate,
and the trajectory that produced it first. Use scripts/report_screenshots.sh to install
chromium and Playwright first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def scripted_run(runs: Path) -> Path:
    run_id = "report-screenshots"
    command = [
        sys.executable, "-m", "swescale.cli", "run", "-c", "scripted", "--no-live",
        "-o", "dataset.slice=0:2", "-o", f"runs_dir={runs}", "--run-id", run_id,
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return runs / run_id


def pages(site: Path, run: Path) -> dict[str, Path]:
    from swescale.report.site import candidate_url, task_url, trajectory_url

    first = next(p for p in sorted(run.iterdir()) if (p / "selection.json").is_file())
    selection = json.loads((first / "selection.json").read_text())
    task_id = selection["task_id"]
    chosen = selection.get("candidate_id")
    found = {"overview": site / "index.html", "task": site / task_url(task_id)}
    if chosen:
        found["candidate"] = site / candidate_url(task_id, chosen)
        for line in (first / "candidates.jsonl").read_text().splitlines():
            cand = json.loads(line)
            if cand["id"] == chosen and cand.get("trajectory_ids"):
                found["trajectory"] = site / trajectory_url(cand["trajectory_ids"][0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", type=Path)
    parser.add_argument(
        "--out", type=Path, default=None, help="default: RUN_DIR/report/screenshots"
    )
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()

    from swescale.report import build_site
    from swescale.report.browser import headless_chromium

    run = args.run_dir or scripted_run(Path("runs"))
    site = build_site(run)
    out = args.out or site.root / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with headless_chromium(width=args.width) as page:
        for name, path in pages(site.root, run).items():
            page.goto(path.resolve().as_uri())
            target = out / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            print(f"{name}: {target}")


if __name__ == "__main__":
    main()
