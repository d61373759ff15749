"""What ``swescale eval`` grades against when the command line does not say: the run a
predictions file belongs to, its config and dataset, the eval run id, where results go.

A run's predictions (``runs/<id>/predictions.jsonl`` or ``predictions.<selector>.jsonl``,
beside ``run.json`` and ``config.yaml``) are graded against the run's own config, so its
dataset (name, split, filters) is the one the run answered, into ``runs/<id>/eval/``:
the run's report links only to files of its own directory. Any other predictions file
needs ``--dataset`` (or a config that names one): guessing a dataset would grade against
the wrong tests. The default run id names the predictions, so evaluations of different
files never share a results folder or overwrite each other's run reports.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from swescale.record.layout import RunFiles, run_dir_of


class EvalInputError(ValueError):
    """The command line leaves the dataset unknown; the message says what to pass."""


def owner_run(predictions: list[Path]) -> Path | None:
    """The run directory all the predictions files belong to, else None (files of no
    run, or of several runs)."""
    owners = {run_dir_of(p) for p in predictions}
    if len(owners) != 1:
        return None
    return next(iter(owners))


def config_source(
    predictions: list[Path],
    owner: Path | None,
    dataset: str | None,
    config: str | None,
    overrides: list[str],
) -> str | Path | None:
    """The config to load for grading: ``config`` when given, else the owner run's
    config.yaml, else the built-in defaults when the dataset is given (``--dataset`` or
    a ``dataset.name`` override). Raises EvalInputError when nothing names the dataset."""
    if config is not None:
        return config
    if owner is not None and RunFiles(owner).config.is_file():
        return RunFiles(owner).config
    if dataset is not None or any(o.strip().startswith("dataset.name=") for o in overrides):
        return None
    where = ", ".join(str(p) for p in predictions)
    if owner is not None:
        why = f"the run directory {owner} has no {RunFiles(owner).config.name}"
    elif any(run_dir_of(p) is not None for p in predictions):
        why = "the predictions come from several runs"
    else:
        why = "the predictions are not a run's (no run.json beside them)"
    raise EvalInputError(
        f"which dataset do {where} answer? {why}; pass --dataset (mini, verified, lite, "
        "full, a hub id or a local file)"
    )


def default_run_id(predictions: list[Path]) -> str:
    """``eval-<run id>`` for a run's predictions.jsonl (``eval-<run id>.<selector>`` for
    predictions.<selector>.jsonl), else ``eval-<file stem>-<8 hex digits of the absolute
    paths>``: the same files get the same id (a rerun resumes), others never share it."""
    owner = owner_run(predictions)
    if owner is not None and len(predictions) == 1:
        name = predictions[0].name.removesuffix(".jsonl")
        variant = name.removeprefix("predictions") if name.startswith("predictions") else f".{name}"
        return f"eval-{owner.name}{variant}"
    paths = "\n".join(str(Path(p).resolve()) for p in predictions)
    digest = hashlib.sha256(paths.encode("utf-8", errors="surrogateescape")).hexdigest()[:8]
    return f"eval-{Path(predictions[0]).stem}-{digest}"
