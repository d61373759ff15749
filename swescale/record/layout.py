"""Where every file of a run directory is: the one place that names them.

```
<run>/record.json                      format version of this directory (record/version.py)
<run>/config.yaml                      the resolved config, written once
<run>/run.json                         versions, image digests, totals, ledger, task states
<run>/predictions.jsonl                SWE-bench format: instance_id, model_name_or_path, model_patch
<run>/predictions.<selector>.jsonl     another selector's picks (ensemble, select)
<run>/failures.jsonl                   one line per failure: task, stage, reason, time
<run>/swescale.log                     every log record of every session of the run
<run>/evaluations.json                 grading runs of the run's predictions (eval)
<run>/eval/                            their official-layout results
<run>/report/                          the report site; <run>/report.html links to it
<run>/report.json                      ensemble and select: accuracy table, costs, problems
<run>/selection.<selector>.summary.json  select: that selector's accuracy and problems
<run>/ci.json, pull_request.json, comment.json   the CI bot's outcome and what it posted
<run>/solve.json                       solve: every issue's outcome, the repositories' environments
<run>/base-suites/<repo>-<commit>.log  solve: the repository's suite on the untouched checkout
<run>/<task>/task.json                 the task as the run saw it
<run>/<task>/trajectories/<id>.jsonl   header line, one line per step, footer
<run>/<task>/blobs/<sha256>            repository states by content hash
<run>/<task>/candidates.jsonl          one candidate per line
<run>/<task>/verdicts/<verifier>.json  {candidate id: verdict}
<run>/<task>/labels.json               {candidate id: resolved} from grading or given labels
<run>/<task>/selection.json            the run's own selection
<run>/<task>/selection.<selector>.json offline re-selection (select, ensemble)
<run>/<task>/grades.json               {candidate id: grading report}; grades/<id>.log
<run>/<task>/ensemble.json             ensemble: seconds per verifier, errors
<run>/<task>/replay.json               replay import: fidelity of every replayed step
<run>/<task>/result.json               written last: the task is done
<run>/<task>/proposal.json             solve: branch, pull request or comment payload, why
```

Task folder names are the task ids made file-name safe (:func:`safe_name`).
"""

from __future__ import annotations

import re
from pathlib import Path

RECORD_JSON = "record.json"
CONFIG_YAML = "config.yaml"
RUN_JSON = "run.json"
PREDICTIONS = "predictions.jsonl"
FAILURES = "failures.jsonl"
LOG_FILE = "swescale.log"
EVALUATIONS = "evaluations.json"
EVAL_DIR = "eval"
SITE_DIR = "report"
SITE_LINK = "report.html"
REPORT_JSON = "report.json"
SYNTHETIC_JSON = "synthetic.json"
CI_OUTCOME = "ci.json"
CI_PULL_REQUEST = "pull_request.json"
CI_COMMENT = "comment.json"
SOLVE_JSON = "solve.json"
BASE_SUITES = "base-suites"
PROPOSAL_JSON = "proposal.json"

TASK_JSON = "task.json"
TRAJECTORIES = "trajectories"
BLOBS = "blobs"
CANDIDATES = "candidates.jsonl"
VERDICTS = "verdicts"
LABELS = "labels.json"
SELECTION = "selection.json"
GRADES = "grades.json"
GRADE_LOGS = "grades"
ENSEMBLE_JSON = "ensemble.json"
REPLAY_JSON = "replay.json"
RESULT_JSON = "result.json"

# The official grading layout inside an evaluation folder (swebench's run_evaluation).
EVAL_REPORT = "report.json"
EVAL_TEST_OUTPUT = "test_output.txt"
EVAL_PATCH = "patch.diff"
EVAL_SCRIPT = "eval.sh"
EVAL_LOG = "run_instance.log"
EVAL_RESULT = "result.json"
EVAL_FILES = (EVAL_TEST_OUTPUT, EVAL_REPORT, EVAL_PATCH, EVAL_LOG)

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TRAJECTORY_SUFFIX = ".jsonl"


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked; the message says why and what to do."""


def safe_name(text: str) -> str:
    """A file-name-safe form of a task or run id (``owner/repo`` -> ``owner_repo``)."""
    cleaned = _SAFE.sub("_", text).strip("._")
    if not cleaned:
        raise RunDirError(f"{text!r} gives an empty file name")
    return cleaned


class TaskFiles:
    """The paths of one task folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def task_json(self) -> Path:
        return self.root / TASK_JSON

    @property
    def trajectories(self) -> Path:
        return self.root / TRAJECTORIES

    def trajectory(self, trajectory_id: str) -> Path:
        return self.trajectories / f"{trajectory_id}{_TRAJECTORY_SUFFIX}"

    def trajectory_files(self) -> list[Path]:
        folder = self.trajectories
        return sorted(folder.glob(f"*{_TRAJECTORY_SUFFIX}")) if folder.is_dir() else []

    @property
    def blobs(self) -> Path:
        return self.root / BLOBS

    @property
    def candidates(self) -> Path:
        return self.root / CANDIDATES

    @property
    def verdicts(self) -> Path:
        return self.root / VERDICTS

    def verdict(self, verifier: str) -> Path:
        return self.verdicts / f"{verifier}.json"

    def verdict_files(self) -> list[Path]:
        return sorted(self.verdicts.glob("*.json")) if self.verdicts.is_dir() else []

    @property
    def labels(self) -> Path:
        return self.root / LABELS

    def selection(self, selector: str | None = None) -> Path:
        return self.root / (f"selection.{selector}.json" if selector else SELECTION)

    @property
    def grades(self) -> Path:
        return self.root / GRADES

    def grade_log(self, candidate_id: str) -> Path:
        return self.root / GRADE_LOGS / f"{candidate_id}.log"

    @property
    def ensemble(self) -> Path:
        return self.root / ENSEMBLE_JSON

    @property
    def replay(self) -> Path:
        return self.root / REPLAY_JSON

    @property
    def result(self) -> Path:
        return self.root / RESULT_JSON

    @property
    def proposal(self) -> Path:
        return self.root / PROPOSAL_JSON

    def is_task(self) -> bool:
        """A folder holding a task's record (not the report site or an eval folder)."""
        return self.root.is_dir() and any(
            (self.root / name).exists() for name in (TRAJECTORIES, CANDIDATES, RESULT_JSON)
        )


class RunFiles:
    """The paths of one run directory (a run, an ensemble, a replay import)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def marker(self) -> Path:
        return self.root / RECORD_JSON

    @property
    def config(self) -> Path:
        return self.root / CONFIG_YAML

    @property
    def run_json(self) -> Path:
        return self.root / RUN_JSON

    def predictions(self, selector: str | None = None) -> Path:
        return self.root / (f"predictions.{selector}.jsonl" if selector else PREDICTIONS)

    @property
    def failures(self) -> Path:
        return self.root / FAILURES

    @property
    def log(self) -> Path:
        return self.root / LOG_FILE

    @property
    def evaluations(self) -> Path:
        return self.root / EVALUATIONS

    @property
    def eval_dir(self) -> Path:
        return self.root / EVAL_DIR

    @property
    def site(self) -> Path:
        return self.root / SITE_DIR

    @property
    def site_link(self) -> Path:
        return self.root / SITE_LINK

    def selection_summary(self, selector: str) -> Path:
        return self.root / f"selection.{selector}.summary.json"

    @property
    def report_json(self) -> Path:
        return self.root / REPORT_JSON

    @property
    def synthetic(self) -> Path:
        return self.root / SYNTHETIC_JSON

    @property
    def ci_outcome(self) -> Path:
        return self.root / CI_OUTCOME

    @property
    def ci_pull_request(self) -> Path:
        return self.root / CI_PULL_REQUEST

    @property
    def ci_comment(self) -> Path:
        return self.root / CI_COMMENT

    @property
    def solve_summary(self) -> Path:
        return self.root / SOLVE_JSON

    def base_suite_log(self, repo: str, commit: str) -> Path:
        return self.root / BASE_SUITES / f"{safe_name(repo.replace('/', '__'))}-{commit[:12]}.log"

    def task(self, task_id: str) -> TaskFiles:
        return TaskFiles(self.root / safe_name(task_id))

    def written_by_a_run(self) -> bool:
        """A directory some run wrote: its format marker, ``run.json`` (even cut short),
        its config, or a task folder. Anything else (a checkout, a home folder) is not
        one, and no report is written into it."""
        if not self.root.is_dir():
            return False
        if any(p.exists() for p in (self.marker, self.run_json, self.config)):
            return True
        return bool(self.task_folders())

    def task_folders(self) -> list[TaskFiles]:
        """Every task folder of the run, sorted by name."""
        if not self.root.is_dir():
            return []
        return [
            TaskFiles(child)
            for child in sorted(self.root.iterdir())
            if child.name not in (SITE_DIR, EVAL_DIR) and TaskFiles(child).is_task()
        ]

    def is_run(self) -> bool:
        return self.run_json.is_file()


def is_append_only(relative_path: str) -> bool:
    """Whether a file of a task folder only ever grows (trajectory records): shipped
    between machines as appends, never rewritten."""
    return relative_path.startswith(f"{TRAJECTORIES}/") and relative_path.endswith(
        _TRAJECTORY_SUFFIX
    )


def run_dir_of(predictions: Path | str) -> Path | None:
    """The run directory a predictions file belongs to (it sits beside run.json)."""
    folder = Path(predictions).resolve().parent
    return folder if RunFiles(folder).is_run() else None
