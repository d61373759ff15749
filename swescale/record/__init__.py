"""The run record: every file of a run directory, written and read here only.

- ``layout``: where every file is (:class:`RunFiles`, :class:`TaskFiles`); nothing else in
  swescale names a record file;
- ``version``: the format version every directory (``record.json``) and trajectory
  header carries; a newer format is refused with a message, never misread;
- ``io``: atomic JSON writes, fsynced JSON lines, tolerant readers;
- ``run``: the run directory (:class:`RunDir`): config, run.json, predictions, failures;
- ``task``: a task folder: task, candidates, verdicts, labels, selections, grades, result;
- ``trajectory``: the trajectory record (header, steps, footer), its recorder and readers;
- ``blobs``: repository states by content hash;
- ``foreign``: other agents' trajectory files (mini-swe-agent, SWE-agent) read into it.
"""

from swescale.record.blobs import BlobStore, read_blob_diff
from swescale.record.io import (
    append_jsonl,
    read_json,
    read_jsonl,
    write_json_atomic,
    write_text_atomic,
)
from swescale.record.layout import RunDirError, RunFiles, TaskFiles, safe_name
from swescale.record.run import ConfigMismatch, RunDir, default_run_id, trajectory_id
from swescale.record.task import TaskRecord, read_task_record, task_dirs
from swescale.record.trajectory import (
    RecordError,
    TrajectoryFile,
    TrajectoryRecord,
    TrajectoryRecorder,
    load_trajectory,
    make_header,
    read_trajectory,
)
from swescale.record.version import FORMAT_VERSION, NewerFormatError

__all__ = [
    "FORMAT_VERSION",
    "BlobStore",
    "ConfigMismatch",
    "NewerFormatError",
    "RecordError",
    "RunDir",
    "RunDirError",
    "RunFiles",
    "TaskFiles",
    "TaskRecord",
    "TrajectoryFile",
    "TrajectoryRecord",
    "TrajectoryRecorder",
    "append_jsonl",
    "default_run_id",
    "load_trajectory",
    "make_header",
    "read_blob_diff",
    "read_json",
    "read_jsonl",
    "read_task_record",
    "read_trajectory",
    "safe_name",
    "task_dirs",
    "trajectory_id",
    "write_json_atomic",
    "write_text_atomic",
]
