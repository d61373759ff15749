"""SWE-bench predictions files: one JSON object a line with ``instance_id``,
``model_name_or_path`` and ``model_patch``.

Reading never raises on bad content: every unusable line comes back as an error string
naming the file and line, and the good lines are kept. Writing appends one whole line at a
time, so a crash loses at most the prediction in flight and never corrupts earlier ones.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel


class Prediction(BaseModel):
    instance_id: str
    model_name_or_path: str = ""
    # None means "no patch produced" (the official harness tells it apart from "").
    model_patch: str | None = None

    @property
    def is_empty(self) -> bool:
        """Only "" and None, as the official harness counts empty patches: a patch of
        whitespace is graded (and fails to apply)."""
        return self.model_patch in ("", None)


def _prediction_from(obj: object, where: str) -> tuple[Prediction | None, str | None]:
    if not isinstance(obj, dict):
        return None, f"{where}: expected a JSON object, got {type(obj).__name__}"
    instance_id = obj.get("instance_id")
    if not isinstance(instance_id, str) or not instance_id.strip():
        return None, f"{where}: missing or empty 'instance_id'"
    patch = obj.get("model_patch")
    if patch is not None and not isinstance(patch, str):
        return None, f"{where} ({instance_id}): 'model_patch' must be a string or null"
    model = obj.get("model_name_or_path") or ""
    if not isinstance(model, str):
        model = str(model)
    return Prediction(instance_id=instance_id, model_name_or_path=model, model_patch=patch), None


def read_predictions(path: str | Path) -> tuple[list[Prediction], list[str]]:
    """All usable predictions in file order (duplicates kept: a foreign file may carry
    several candidates per instance) and one error string per unusable line.

    Accepts JSONL, a JSON list, or a JSON object keyed by instance id (the official
    harness accepts the last two as well)."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        return [], [f"{file}: cannot read: {exc}"]
    # utf-8-sig: a byte order mark (Windows editors write one) is not part of line 1.
    text = raw.decode("utf-8-sig", errors="replace")
    predictions: list[Prediction] = []
    errors: list[str] = []
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and not _looks_like_jsonl(text)):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return [], [f"{file}: not valid JSON: {exc}"]
        items = list(data.values()) if isinstance(data, dict) else data
        for index, obj in enumerate(items):
            pred, error = _prediction_from(obj, f"{file} item {index}")
            if pred:
                predictions.append(pred)
            if error:
                errors.append(error)
        return predictions, errors
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{file}:{number}: not valid JSON ({exc.msg}: column {exc.colno})")
            continue
        pred, error = _prediction_from(obj, f"{file}:{number}")
        if pred:
            predictions.append(pred)
        if error:
            errors.append(error)
    return predictions, errors


def _looks_like_jsonl(text: str) -> bool:
    """A file of objects one a line also starts with "{": it is JSONL when its first
    non-empty line is a whole object on its own."""
    for line in text.splitlines():
        if line.strip():
            try:
                return isinstance(json.loads(line), dict)
            except json.JSONDecodeError:
                return False
    return False


def latest_by_instance(predictions: Iterable[Prediction]) -> dict[str, Prediction]:
    """One prediction per instance; a later line wins, as in the official harness."""
    return {p.instance_id: p for p in predictions}


def append_prediction(
    path: str | Path,
    instance_id: str,
    model_patch: str | None,
    model_name_or_path: str = "swescale",
) -> None:
    """Append one prediction line, safely against concurrent writers and torn lines."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "instance_id": instance_id,
        "model_name_or_path": model_name_or_path,
        "model_patch": model_patch,
    }
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with open(file, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            # A crash mid-write may have left a partial last line: start on a fresh one
            # so the new record stays readable (the torn line is reported by the reader).
            handle.seek(0, os.SEEK_END)
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_predictions(path: str | Path, predictions: Iterable[Prediction]) -> None:
    """Write a whole file at once (atomic replace)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for pred in predictions:
            handle.write(json.dumps(pred.model_dump(), ensure_ascii=False) + "\n")
    os.replace(tmp, file)
