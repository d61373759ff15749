"""Build a labelled candidate pool from published, officially graded leaderboard runs.

Each run is a predictions file (``all_preds.jsonl``, a JSON list, or an object keyed by
instance id) and the grading result published beside it: the official ``results.json`` /
``report.json`` of the leaderboard archive (a ``"resolved"`` list), or a run report of
swebench 5.x (``resolved_ids``). The output is what ``swescale ensemble`` reads:

    <out>/predictions/<name>.jsonl   one file per run, model_name_or_path = <name>
    <out>/labels.jsonl               {"instance_id", "model_name_or_path", "resolved"}

Only instances the run submitted a non-empty patch for get a label (an empty patch makes
no candidate). Usage:

    python scripts/leaderboard_pool.py OUT NAME=PREDS:RESULTS [NAME=PREDS:RESULTS ...]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

_TRAILING_COMMA = re.compile(r",(\s*[\]}])")


def resolved_ids(path: Path) -> set[str]:
    """The resolved instance ids of a results file. Some published results files end
    their lists with a comma (JavaScript style), which ``json`` refuses: such a comma
    before ``]`` or ``}`` is dropped (ids hold no commas or brackets)."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = json.loads(_TRAILING_COMMA.sub(r"\1", text))
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a JSON object with a 'resolved' list")
    for key in ("resolved_ids", "resolved"):
        if isinstance(data.get(key), list):
            return set(data[key])
    raise SystemExit(f"{path}: no 'resolved' or 'resolved_ids' list")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("runs", nargs="+", help="NAME=PREDICTIONS:RESULTS")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from swescale.swebench.predictions import read_predictions

    (args.out / "predictions").mkdir(parents=True, exist_ok=True)
    labels = []
    for spec in args.runs:
        name, _, files = spec.partition("=")
        preds_path, _, results_path = files.rpartition(":")
        if not name or not preds_path or not results_path:
            raise SystemExit(f"expected NAME=PREDICTIONS:RESULTS, got {spec!r}")
        preds, errors = read_predictions(Path(preds_path))
        for error in errors:
            print(f"warning: {preds_path}: {error}", file=sys.stderr)
        resolved = resolved_ids(Path(results_path))
        lines = []
        for pred in preds:
            if pred.is_empty:
                continue
            row = {"instance_id": pred.instance_id, "model_name_or_path": name,
                   "model_patch": pred.model_patch}  # fmt: skip
            lines.append(json.dumps(row))
            labels.append(json.dumps({"instance_id": pred.instance_id,
                                      "model_name_or_path": name,
                                      "resolved": pred.instance_id in resolved}))  # fmt: skip
        (args.out / "predictions" / f"{name}.jsonl").write_text("".join(x + "\n" for x in lines))
        print(f"{name}: {len(lines)} patches, {len(resolved)} resolved")
    (args.out / "labels.jsonl").write_text("".join(x + "\n" for x in labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
