"""The run directory: the record a run leaves, and from which it resumes.

```
runs/<run_id>/config.yaml            the resolved config, written once
runs/<run_id>/run.json               versions, image digests, totals, ledger, task states
runs/<run_id>/predictions.jsonl      SWE-bench format: instance_id, model_name_or_path, model_patch
runs/<run_id>/failures.jsonl         one line per failure: task, stage, reason, time
runs/<run_id>/<task_id>/trajectories/<traj_id>.jsonl   header, one line per step, footer
runs/<run_id>/<task_id>/blobs/<sha256>               repo states by content hash
runs/<run_id>/<task_id>/candidates.jsonl, verdicts/<verifier>.json, selection.json
runs/<run_id>/<task_id>/result.json  written last: the task is done
```

A rerun with the same config continues the run; a rerun with a different config is
refused (its results would mix two experiments) unless forced.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from swescale.config import RunConfig

RUN_JSON = "run.json"
CONFIG_YAML = "config.yaml"
PREDICTIONS = "predictions.jsonl"
FAILURES = "failures.jsonl"
RESULT_JSON = "result.json"

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked; the message says why and what to do."""


class ConfigMismatch(RunDirError):
    """The run directory holds a run made with a different config."""


def safe_name(text: str) -> str:
    """A file-name-safe form of a task or run id (``owner/repo`` -> ``owner_repo``)."""
    cleaned = _SAFE.sub("_", text).strip("._")
    if not cleaned:
        raise RunDirError(f"{text!r} gives an empty file name")
    return cleaned


def trajectory_id(task_id: str, round_index: int, index: int) -> str:
    """Deterministic id of the ``index``-th trajectory of round ``round_index`` of a task,
    so a rerun finds the file the killed run was writing."""
    return f"{safe_name(task_id)}.r{round_index}.t{index:02d}"


def default_run_id(config_name: str, cfg: RunConfig) -> str:
    """``<preset>-<config digest>``: the same command names the same run, so rerunning it
    resumes; a changed config names a new run."""
    stem = safe_name(Path(config_name).stem or "run") if config_name else "run"
    return f"{stem}-{cfg.digest()[:10]}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk: a crash loses at most the line in flight."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete JSON lines of a file; a torn last line (a crash mid-write) is skipped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def read_json(path: Path, default: Any = None) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return default


class RunDir:
    """Paths and small, thread-safe writes of one run's record."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.RLock()

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(
        cls, runs_dir: Path | str, run_id: str, cfg: RunConfig, *, force: bool = False
    ) -> RunDir:
        """Create the run directory or reopen it to resume.

        Refuses (:class:`ConfigMismatch`) when the directory was made with a config of a
        different digest, unless ``force``: then the old config is kept beside the new one
        as ``config.<old digest>.yaml`` and the change is noted in run.json.
        """
        rundir = cls(Path(runs_dir) / safe_name(run_id))
        rundir.root.mkdir(parents=True, exist_ok=True)
        digest = cfg.digest()
        config_path = rundir.config_path
        data = cfg.model_dump(mode="json")
        data["run_id"] = run_id
        if config_path.exists():
            old = rundir.run_json().get("config_digest") or _digest_of_file(config_path)
            if old != digest:
                if not force:
                    raise ConfigMismatch(
                        f"run directory {rundir.root} was made with config {old}, this "
                        f"config is {digest}; results would mix two experiments. Use another "
                        "--run-id, or --force to continue with the new config."
                    )
                config_path.rename(rundir.root / f"config.{old}.yaml")
                config_path.write_text(yaml.safe_dump(data, sort_keys=False))
                rundir.update_run_json(
                    lambda r: r.setdefault("config_changes", []).append(
                        {"from": old, "to": digest, "time": _now()}
                    )
                )
        else:
            config_path.write_text(yaml.safe_dump(data, sort_keys=False))
        rundir.update_run_json(lambda r: _init_run_json(r, run_id, digest))
        return rundir

    # -- paths --------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_YAML

    @property
    def run_json_path(self) -> Path:
        return self.root / RUN_JSON

    @property
    def predictions_path(self) -> Path:
        return self.root / PREDICTIONS

    @property
    def failures_path(self) -> Path:
        return self.root / FAILURES

    def task_dir(self, task_id: str) -> Path:
        return self.root / safe_name(task_id)

    def trajectories_dir(self, task_id: str) -> Path:
        return self.task_dir(task_id) / "trajectories"

    def trajectory_path(self, task_id: str, traj_id: str) -> Path:
        return self.trajectories_dir(task_id) / f"{traj_id}.jsonl"

    def blobs_dir(self, task_id: str) -> Path:
        return self.task_dir(task_id) / "blobs"

    def candidates_path(self, task_id: str) -> Path:
        return self.task_dir(task_id) / "candidates.jsonl"

    def verdicts_dir(self, task_id: str) -> Path:
        return self.task_dir(task_id) / "verdicts"

    def selection_path(self, task_id: str) -> Path:
        return self.task_dir(task_id) / "selection.json"

    def result_path(self, task_id: str) -> Path:
        return self.task_dir(task_id) / RESULT_JSON

    def trajectory_files(self, task_id: str) -> list[Path]:
        folder = self.trajectories_dir(task_id)
        return sorted(folder.glob("*.jsonl")) if folder.exists() else []

    def task_dirs(self) -> Iterator[Path]:
        for child in sorted(self.root.iterdir()):
            if child.is_dir() and (
                (child / "trajectories").exists() or (child / RESULT_JSON).exists()
            ):
                yield child

    # -- run.json -----------------------------------------------------------------------

    def run_json(self) -> dict[str, Any]:
        return read_json(self.run_json_path, {}) or {}

    def update_run_json(self, change: Any) -> dict[str, Any]:
        """Read, apply ``change(data)`` in place, write atomically; serialized per process."""
        with self._lock:
            data = self.run_json()
            change(data)
            data["updated"] = _now()
            write_json_atomic(self.run_json_path, data)
            return data

    def set_task_state(self, task_id: str, **fields: Any) -> None:
        def change(data: dict[str, Any]) -> None:
            data.setdefault("tasks", {}).setdefault(task_id, {}).update(fields)

        self.update_run_json(change)

    # -- failures and results -----------------------------------------------------------

    def record_failure(self, task_id: str, stage: str, reason: str, **extra: Any) -> None:
        """A task (or one of its trajectories) failed: say where and why, keep going."""
        record = {"task_id": task_id, "stage": stage, "reason": reason, "time": _now(), **extra}
        with self._lock:
            append_jsonl(self.failures_path, record)

    def failures(self) -> list[dict[str, Any]]:
        return read_jsonl(self.failures_path)

    def write_result(self, task_id: str, result: dict[str, Any]) -> None:
        write_json_atomic(self.result_path(task_id), result)

    def result(self, task_id: str) -> dict[str, Any] | None:
        return read_json(self.result_path(task_id))

    # -- predictions --------------------------------------------------------------------

    def prediction_ids(self) -> set[str]:
        return {r["instance_id"] for r in read_jsonl(self.predictions_path) if "instance_id" in r}

    def add_prediction(self, instance_id: str, model_name: str, patch: str) -> bool:
        """Append a SWE-bench prediction unless the task already has one (a resumed run);
        returns whether a line was written."""
        with self._lock:
            if instance_id in self.prediction_ids():
                return False
            append_jsonl(
                self.predictions_path,
                {
                    "instance_id": instance_id,
                    "model_name_or_path": model_name,
                    "model_patch": patch,
                },
            )
            return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _digest_of_file(path: Path) -> str:
    try:
        return RunConfig.model_validate(yaml.safe_load(path.read_text()) or {}).digest()
    except Exception:  # an unreadable old config is a different config
        return "unreadable"


def _init_run_json(data: dict[str, Any], run_id: str, digest: str) -> None:
    data.setdefault("run_id", run_id)
    data.setdefault("created", _now())
    data["config_digest"] = digest
    data.setdefault("sessions", 0)
    data["sessions"] += 1
    data.setdefault("tasks", {})
    data.setdefault("image_digests", {})
