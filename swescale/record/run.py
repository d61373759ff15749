"""The run directory: the record a run leaves, and from which it resumes (every file's
place is in :mod:`swescale.record.layout`).

A rerun with the same config continues the run; a rerun with a different config is
refused (its results would mix two experiments) unless forced. A directory written by a
newer swescale (``record.json``) is refused, never appended to.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import yaml

from swescale.record.io import (
    append_jsonl,
    read_json,
    read_jsonl,
    write_json_atomic,
    write_text_atomic,
)
from swescale.record.layout import RunDirError, RunFiles, TaskFiles, safe_name
from swescale.record.models import RunInfo, TaskResult
from swescale.record.task import read_result, write_result
from swescale.record.version import NewerFormatError, mark_directory


class RunConfigLike(Protocol):
    """What the run directory needs of a run config (``swescale.config.RunConfig``)."""

    def digest(self) -> str: ...

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


class ConfigMismatch(RunDirError):
    """The run directory holds a run made with a different config."""


def trajectory_id(task_id: str, round_index: int, index: int) -> str:
    """Deterministic id of the ``index``-th trajectory of round ``round_index`` of a task,
    so a rerun finds the file the killed run was writing."""
    return f"{safe_name(task_id)}.r{round_index}.t{index:02d}"


def default_run_id(config_name: str, cfg: RunConfigLike) -> str:
    """``<preset>-<config digest>``: the same command names the same run, so rerunning it
    resumes; a changed config names a new run."""
    stem = safe_name(Path(config_name).stem or "run") if config_name else "run"
    return f"{stem}-{cfg.digest()[:10]}"


class RunDir:
    """Paths and small, thread-safe writes of one run's record."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.files = RunFiles(self.root)
        self._lock = threading.RLock()

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(
        cls, runs_dir: Path | str, run_id: str, cfg: RunConfigLike, *, force: bool = False
    ) -> RunDir:
        """Create the run directory or reopen it to resume.

        Refuses (:class:`ConfigMismatch`) when the directory was made with a config of a
        different digest, unless ``force``: then the old config is kept beside the new one
        as ``config.<old digest>.yaml`` and the change is noted in run.json. Refuses
        (:class:`RunDirError`) a directory written by a newer swescale.
        """
        rundir = cls(Path(runs_dir) / safe_name(run_id))
        rundir.root.mkdir(parents=True, exist_ok=True)
        try:
            mark_directory(rundir.root, "run")
        except NewerFormatError as exc:
            raise RunDirError(str(exc)) from exc
        digest = cfg.digest()
        config_path = rundir.config_path
        data = cfg.model_dump(mode="json")
        data["run_id"] = run_id
        if config_path.exists():
            old = rundir.run_json().get("config_digest") or _digest_of_file(config_path, cfg)
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
        return self.files.config

    @property
    def run_json_path(self) -> Path:
        return self.files.run_json

    @property
    def predictions_path(self) -> Path:
        return self.files.predictions()

    @property
    def failures_path(self) -> Path:
        return self.files.failures

    def task_files(self, task_id: str) -> TaskFiles:
        return self.files.task(task_id)

    def task_dir(self, task_id: str) -> Path:
        return self.task_files(task_id).root

    def trajectories_dir(self, task_id: str) -> Path:
        return self.task_files(task_id).trajectories

    def trajectory_path(self, task_id: str, traj_id: str) -> Path:
        return self.task_files(task_id).trajectory(traj_id)

    def blobs_dir(self, task_id: str) -> Path:
        return self.task_files(task_id).blobs

    def candidates_path(self, task_id: str) -> Path:
        return self.task_files(task_id).candidates

    def verdicts_dir(self, task_id: str) -> Path:
        return self.task_files(task_id).verdicts

    def selection_path(self, task_id: str) -> Path:
        return self.task_files(task_id).selection()

    def result_path(self, task_id: str) -> Path:
        return self.task_files(task_id).result

    def trajectory_files(self, task_id: str) -> list[Path]:
        return self.task_files(task_id).trajectory_files()

    def task_dirs(self) -> Iterator[Path]:
        for files in self.files.task_folders():
            yield files.root

    # -- run.json -----------------------------------------------------------------------

    def info(self) -> RunInfo:
        """run.json as a :class:`RunInfo` (fields of the wrong type read as defaults)."""
        data = self.run_json()
        try:
            return RunInfo.model_validate(data)
        except ValueError:
            kept = {}
            for key, value in data.items():
                try:
                    RunInfo.model_validate({key: value})
                except ValueError:
                    continue  # a damaged field reads as its default
                kept[key] = value
            return RunInfo.model_validate(kept)

    def run_json(self) -> dict[str, Any]:
        data = read_json(self.run_json_path)
        return data if isinstance(data, dict) else {}

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
        """result.json, checked against :class:`TaskResult` first (a ValidationError
        names a field of the wrong type rather than writing a record readers choke on)."""
        TaskResult.model_validate(result)
        write_result(self.task_dir(task_id), result)

    def result(self, task_id: str) -> dict[str, Any] | None:
        return read_result(self.task_dir(task_id))

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


def record_evaluation(run_dir: Path, new: dict[str, Any]) -> Path:
    """Add (or replace, by eval run id and model) an evaluation in evaluations.json."""
    path = RunFiles(run_dir).evaluations
    existing = read_json(path, default=[])
    key = (new["run_id"], new.get("model"))
    entries = existing if isinstance(existing, list) else []
    kept = [e for e in entries if isinstance(e, dict) and (e.get("run_id"), e.get("model")) != key]
    write_text_atomic(path, json.dumps([*kept, new], indent=1, sort_keys=True))
    return path


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _digest_of_file(path: Path, cfg: RunConfigLike) -> str:
    """The digest of the config a run directory holds, validated as ``cfg``'s type."""
    try:
        return type(cfg).model_validate(yaml.safe_load(path.read_text()) or {}).digest()  # type: ignore[attr-defined]
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
