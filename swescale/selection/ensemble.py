"""Selection across systems: candidate pools from any number of predictions files,
model-free evidence gathered in sandboxes of each task's instance image, one patch
picked per instance (``swescale ensemble``).

The output directory has the layout of a run's selection record, so ``swescale select``
and the selection comparison read it unchanged:

```
<out>/<instance>/task.json, candidates.jsonl, labels.json (when labels are given)
<out>/<instance>/verdicts/<verifier>.json     one file per verifier, written when done
<out>/<instance>/ensemble.json                wall seconds per verifier, errors
<out>/<instance>/selection.<selector>.json    the pick, ranking and reasons
<out>/predictions.jsonl                       the primary selector's picks, with reasons
<out>/predictions.<selector>.jsonl            every selector's picks
<out>/report.json                             accuracy table, costs, problems
```

Resumable: a verifier whose verdict file covers every candidate is not run again, so a
rerun after Ctrl-C or a crash continues where it stopped, and a rerun with
``--no-sandbox`` re-scores the stored verdicts (behaviour classes and selection are
recomputed, no sandbox starts). One instance failing (no
image, a verifier crashing) is recorded in its ``ensemble.json`` and never stops the
batch; an instance without an environment (no repository mirror) still gets the pool
signals (size, locality, votes).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from swescale.pool import run_pool
from swescale.record.layout import RunFiles
from swescale.record.task import (
    TaskRecord,
    read_task_info,
    read_task_record,
    read_verdict_file,
    write_candidates,
    write_labels,
    write_task,
    write_task_info,
    write_verdicts,
)
from swescale.selection.candidates import candidates_from, read_foreign_predictions
from swescale.types import Candidate, Cost, Selection, Task, Verdict
from swescale.verifiers.base import BEHAVIOUR, DOCTEST, HARVEST, ISSUE, REGRESSION, STATIC
from swescale.verifiers.config import BuildContext, VerifiersConfig

log = logging.getLogger(__name__)

MODEL_FREE_VERIFIERS = (STATIC, REGRESSION, HARVEST, ISSUE, DOCTEST, BEHAVIOUR)
SandboxFactoryFor = Callable[[Task], Callable[[], Any] | str]


class EnsembleConfig(BaseModel):
    verifiers: list[str] = Field(default_factory=lambda: list(MODEL_FREE_VERIFIERS))
    selectors: list[str] = Field(default_factory=lambda: ["evidence"])
    workers: int = 1  # instances in parallel
    verifier_workers: int = 2  # sandboxes in parallel within one instance
    test_timeout: float = 300.0
    regression_max_files: int = 4

    def spec(self, name: str) -> Any:
        """The spec of verifier ``name`` with this ensemble's settings (the same specs,
        and the same ``build``, as a run's verifiers)."""
        section = VerifiersConfig(
            enabled=[name],
            test_timeout=self.test_timeout,
            regression_max_files=self.regression_max_files,
        )
        return section.specs()[0]


class LabelFile(BaseModel):
    labels: dict[tuple[str, str], bool] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)


def read_labels(paths: Iterable[str | Path]) -> LabelFile:
    """Grades of the pool's patches: JSON lines ``{"instance_id", "model_name_or_path",
    "resolved"}`` (``scripts/leaderboard_pool.py`` writes them). Bad lines are reported,
    never fatal; a missing or empty file is an error of its own."""
    out = LabelFile()
    for path in paths:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            out.errors.append(f"labels file {path}: {exc.strerror or exc}")
            continue
        if not text.strip():
            out.errors.append(f"labels file {path} is empty")
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key = (str(row["instance_id"]), str(row["model_name_or_path"]))
                resolved = row["resolved"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                out.errors.append(f"{path}:{number}: not a label row ({exc})")
                continue
            if not isinstance(resolved, bool):
                out.errors.append(f"{path}:{number}: 'resolved' must be true or false")
                continue
            out.labels[key] = resolved
    return out


def label_candidates(candidates: Sequence[Candidate], labels: dict[tuple[str, str], bool]) -> None:
    """A candidate resolves when any of its producers' patches was graded resolved (its
    producers' patches are the same fix after normalization)."""
    for cand in candidates:
        known = [labels[(cand.task_id, s)] for s in cand.sources if (cand.task_id, s) in labels]
        if known:
            cand.resolved = any(known)


def known_outcomes(task: Task) -> dict[str, bool]:
    """Patches the dataset itself says the outcome of, by normalized key: the gold patch
    resolves; a mini task's ``alt_patches`` resolve, its ``wrong_patches`` and
    ``decoy_patches`` do not (validated by ``swescale validate --extra-patches``)."""
    from swescale.patches import patch_key

    found: dict[str, bool] = {}
    shipped = [(task.gold_patch or "", True)]
    for kind, resolves in (("alt", True), ("wrong", False), ("decoy", False)):
        patches = task.extra.get(f"{kind}_patches") if isinstance(task.extra, dict) else None
        shipped += [(p, resolves) for p in patches or [] if isinstance(p, str)]
    for patch, resolves in shipped:
        key = patch_key(patch) if patch else ""
        if key:
            found.setdefault(key, resolves)
    return found


def label_from_dataset(task: Task, candidates: Sequence[Candidate]) -> int:
    """Label the candidates the dataset knows the outcome of (``known_outcomes``) and
    that no other source labelled; returns how many it labelled."""
    from swescale.patches import patch_key

    known = known_outcomes(task)
    labelled = 0
    for cand in candidates:
        if cand.resolved is None and known:
            outcome = known.get(patch_key(cand.patch))
            if outcome is not None:
                cand.resolved = outcome
                labelled += 1
    return labelled


def _stored_verdicts(task_dir: Path, name: str, ids: set[str]) -> dict[str, Verdict] | None:
    data = read_verdict_file(task_dir, name)
    if data is None:
        return None
    try:
        verdicts = {cid: Verdict.model_validate(v) for cid, v in data.items()}
    except ValueError:
        return None
    return verdicts if set(verdicts) >= ids else None


def verify_task(
    task: Task,
    candidates: list[Candidate],
    task_dir: Path,
    make_sandbox: Callable[[], Any] | str,
    cfg: EnsembleConfig,
    stop: threading.Event | None = None,
    model_verifiers: dict[str, Any] | None = None,
    extra_tests: Sequence[Any] = (),
) -> dict[str, Any]:
    """Run the configured verifiers on one task's pool (skipping those already stored),
    writing each verifier's verdicts as it finishes. ``make_sandbox`` is a factory, or
    the reason the task has no environment (then only pool signals are computed).
    ``model_verifiers`` (name -> verifier, e.g. a ``JudgeVerifier`` over the configured
    model) run too, need no sandbox, and add to the same evidence.
    Returns the task's ``ensemble.json`` content."""
    model_verifiers = model_verifiers or {}
    from swescale.verifiers.behaviour import BehaviourVerifier
    from swescale.verifiers.static import pool_only_verdicts

    info = read_task_info(task_dir, "ensemble")
    info.setdefault("seconds", {})
    info.setdefault("errors", {})
    ids = {c.id for c in candidates}
    if isinstance(make_sandbox, str) and not info["seconds"]:
        info["environment"] = make_sandbox
    else:
        # Sandbox evidence was gathered (now or by an earlier run, and is re-read now):
        # the task is not one without an environment.
        info.pop("environment", None)
    for name in cfg.verifiers:
        if stop is not None and stop.is_set():
            info["interrupted"] = True
            break
        stored = _stored_verdicts(task_dir, name, ids)
        if stored is not None and name != BEHAVIOUR:
            for cand in candidates:
                cand.verdicts[name] = stored[cand.id]
            continue
        start = time.monotonic()
        try:
            if name == BEHAVIOUR:
                verdicts = BehaviourVerifier().verify(task, candidates)
            elif name in model_verifiers:
                verdicts = model_verifiers[name].verify(task, candidates)
            elif isinstance(make_sandbox, str):
                if name != STATIC:
                    continue
                verdicts = pool_only_verdicts(candidates)
            else:
                context = BuildContext(
                    task=task,
                    make_sandbox=make_sandbox,
                    workers=cfg.verifier_workers,
                    extra_tests=list(extra_tests),
                )
                verdicts = cfg.spec(name).build(context).verify(task, candidates)
        except Exception as exc:  # noqa: BLE001 - one verifier failing never stops the task
            info["errors"][name] = f"{type(exc).__name__}: {exc}"
            log.warning("%s: verifier %s failed: %s", task.id, name, exc)
            continue
        info["errors"].pop(name, None)
        if name not in (BEHAVIOUR, *model_verifiers) and not isinstance(make_sandbox, str):
            info["seconds"][name] = round(time.monotonic() - start, 2)
        for cand in candidates:
            if cand.id in verdicts:
                cand.verdicts[name] = verdicts[cand.id]
        if stop is not None and stop.is_set():
            info["interrupted"] = True
            break  # a verifier cut short by Ctrl-C judged nothing: do not store it
        write_verdicts(task_dir, name, verdicts)
    else:
        info.pop("interrupted", None)
    write_task_info(task_dir, "ensemble", info)
    return info


class EnsembleInput(BaseModel):
    """The pools read from the inputs, and what could not be used."""

    pools: dict[str, list[Candidate]] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)
    unknown_ids: list[str] = Field(default_factory=list)
    # Per task: tests and scripts the runs' trajectories wrote along the way
    # (HarvestedTest, sources = the candidate their trajectory produced).
    trajectory_tests: dict[str, list[Any]] = Field(default_factory=dict)
    # Where the labels came from: source -> candidates it labelled.
    label_sources: dict[str, int] = Field(default_factory=dict)


def read_pools(
    tasks: Sequence[Task],
    predictions: Sequence[str | Path],
    run_dirs: Sequence[str | Path] = (),
    labels: dict[tuple[str, str], bool] | None = None,
    trajectory_tests: bool = True,
) -> EnsembleInput:
    """Candidates per task from predictions files (each row's ``model_name_or_path`` is
    its producer) and finished run directories (their candidates join with their
    trajectories as producers), normalized and deduplicated. Labels, first found first:
    ``labels`` (graded producers), the run directories' own grades, the dataset's
    patches of known outcome (``known_outcomes``); ``label_sources`` counts each. With
    ``trajectory_tests``, the tests and scripts the runs' trajectories created along the
    way are gathered for the harvest verifier."""
    from swescale.selection.trajectory_tests import created_along_the_way
    from swescale.verifiers.harvest import HarvestedTest, merge_tests

    out = EnsembleInput()
    known = {t.id for t in tasks}
    missing = [str(p) for p in predictions if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"predictions file not found: {', '.join(missing)}")
    imported = read_foreign_predictions(predictions, known)
    out.problems += imported.errors
    out.unknown_ids = imported.unknown_ids
    for path in predictions:
        if not Path(path).read_text(encoding="utf-8", errors="replace").strip():
            out.problems.append(f"predictions file {path} is empty")
    from_runs: dict[str, dict[str, str]] = {}
    written: dict[str, list[tuple[str, str, str, str]]] = {}  # task -> (producer, path, kind, text)
    graded: dict[str, dict[str, bool]] = {}  # task -> candidate id -> a run's grade
    for run in run_dirs:
        from swescale.record.task import task_dirs

        for folder in task_dirs(Path(run)):
            record = read_task_record(folder)
            out.problems += record.problems
            for cand in record.candidates:
                if cand.task_id not in known:
                    continue
                if cand.resolved is not None:
                    graded.setdefault(cand.task_id, {})[cand.id] = cand.resolved
                for producer in cand.trajectory_ids or [f"{Path(run).name}:{cand.id}"]:
                    name = f"{Path(run).name}/{producer}"
                    from_runs.setdefault(cand.task_id, {})[name] = cand.patch
            if trajectory_tests and record.candidates:
                task_id = record.candidates[0].task_id
                for traj_id, made in created_along_the_way(folder).items():
                    producer = f"{Path(run).name}/{traj_id}"
                    written.setdefault(task_id, []).extend(
                        (producer, path, kind, text) for path, (kind, text) in made.items()
                    )
    for task in tasks:
        foreign = imported.for_task(task.id)
        for name, patch in from_runs.get(task.id, {}).items():
            foreign[name] = patch
        if not foreign:
            continue
        cands = candidates_from(task.id, {}, foreign)
        # A producer whose patch normalizes to nothing (comments or whitespace only) makes
        # no candidate: say so, it is still one of the systems the pool compares.
        kept = {p for c in cands for p in (*c.trajectory_ids, *c.sources)}
        for name in sorted(set(foreign) - kept):
            out.problems.append(f"{task.id}: {name}'s patch changes no code (no candidate)")
        if labels:
            label_candidates(cands, labels)
            _count(out, "--labels", sum(c.resolved is not None for c in cands))
        from_run = 0
        for cand in cands:
            grade = graded.get(task.id, {}).get(cand.id)
            if cand.resolved is None and grade is not None:
                cand.resolved, from_run = grade, from_run + 1
        _count(out, "the runs' grades", from_run)
        _count(out, "the dataset's patches", label_from_dataset(task, cands))
        if cands:
            out.pools[task.id] = cands
            cand_of = {p: c.id for c in cands for p in (*c.trajectory_ids, *c.sources)}
            tests = [
                HarvestedTest(path, text, kind, (cand_of[producer],))
                for producer, path, kind, text in written.get(task.id, [])
                if producer in cand_of
            ]
            if tests:
                out.trajectory_tests[task.id] = merge_tests(tests)
    return out


def _count(found: EnsembleInput, source: str, labelled: int) -> None:
    if labelled:
        found.label_sources[source] = found.label_sources.get(source, 0) + labelled


def write_task_inputs(task_dir: Path, task: Task, candidates: list[Candidate]) -> None:
    write_task(task_dir, task)
    write_candidates(task_dir, candidates)
    labels = {c.id: c.resolved for c in candidates if c.resolved is not None}
    if labels:
        write_labels(task_dir, labels)


def run_ensemble(
    tasks: Sequence[Task],
    pools: dict[str, list[Candidate]],
    out_dir: Path,
    sandbox_for: SandboxFactoryFor | None,
    cfg: EnsembleConfig,
    stop: threading.Event | None = None,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
    model_verifiers: dict[str, Any] | None = None,
    trajectory_tests: dict[str, list[Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Gather evidence for every task with a pool, ``cfg.workers`` at a time. A task
    whose environment cannot be had gets pool signals only; an unexpected failure is
    recorded for that task and the batch goes on. ``trajectory_tests``: per task, tests
    its producers wrote along the way (harvested too)."""
    stop = stop or threading.Event()
    out_dir.mkdir(parents=True, exist_ok=True)
    by_id = {t.id: t for t in tasks}
    results: dict[str, dict[str, Any]] = {}
    files = RunFiles(out_dir)

    def job(task_id: str) -> dict[str, Any]:
        task, task_dir = by_id[task_id], files.task(task_id).root
        write_task_inputs(task_dir, task, pools[task_id])
        factory: Callable[[], Any] | str = (
            "sandboxes disabled" if sandbox_for is None else sandbox_for(task)
        )
        return verify_task(
            task,
            pools[task_id],
            task_dir,
            factory,
            cfg,
            stop,
            model_verifiers,
            extra_tests=(trajectory_tests or {}).get(task_id, ()),
        )

    def finished(task_id: str, info: dict[str, Any]) -> None:
        results[task_id] = info
        if progress:
            progress(task_id, info)

    def crashed(task_id: str, exc: Exception) -> None:
        # One instance failing is recorded in its ensemble.json; the batch goes on.
        info = {"errors": {"task": f"{type(exc).__name__}: {exc}"}}
        write_task_info(files.task(task_id).root, "ensemble", info)
        finished(task_id, info)

    ran = run_pool(
        job,
        [t.id for t in tasks if t.id in pools],
        workers=cfg.workers,
        stop=stop,
        name="instance",
        on_finished=finished,
        on_failed=crashed,
    )
    for task_id in ran.not_run:
        results[task_id] = {"interrupted": True}
    return results


# ------------------------------------------------------------------------ the report


def mixed(record: TaskRecord) -> bool:
    """Some candidate resolves and some does not: only here can selectors differ."""
    labels = [c.resolved for c in record.candidates if c.resolved is not None]
    return any(labels) and not all(labels)


def random_pick(record: TaskRecord) -> float | None:
    """Expected resolve rate of picking one producer's patch at random."""
    from swescale.selection.metrics import sample_labels

    found = sample_labels(record)
    if found is None or not found[0]:
        return None
    n, c = found
    return c / n


def select_and_write(
    out_dir: Path, records: list[TaskRecord], names: Sequence[str], cfg: Any = None
) -> dict[str, list[Selection]]:
    """Every selector over every task; selection.<name>.json per task and
    predictions.<name>.jsonl (rows carry the pick's reasons under ``swescale``)."""
    from swescale.selection.metrics import select_all, write_selections

    out: dict[str, list[Selection]] = {}
    for name in names:
        selections = select_all(records, name, cfg)
        write_selections(out_dir, records, selections, name, f"swescale-ensemble-{name}", True)
        out[name] = selections
    return out


def ensemble_report(
    records: list[TaskRecord], selections: dict[str, list[Selection]]
) -> dict[str, Any]:
    """Accuracy of each selector against the oracle (any candidate resolves, pass@k),
    random pick and majority vote, over labelled instances; mixed pools; sandbox
    seconds per instance (wall time of the verifiers that ran in sandboxes)."""
    from swescale.selection.metrics import is_resolved, verification_cost

    # An instance counts when every candidate has a label: then any pick's truth is
    # known. Pools labelled in part are counted apart and left out of the accuracies.
    labelled = [
        i
        for i, r in enumerate(records)
        if r.candidates and all(c.resolved is not None for c in r.candidates)
    ]
    partly = sum(
        1
        for r in records
        if any(c.resolved is not None for c in r.candidates)
        and not all(c.resolved is not None for c in r.candidates)
    )
    n = len(labelled)
    oracle = sum(any(c.resolved for c in records[i].candidates) for i in labelled)
    randoms = [random_pick(records[i]) for i in labelled]
    rand = sum(r for r in randoms if r is not None)
    rows: list[dict[str, Any]] = [
        {"selector": "oracle (pass@k)", "resolved": oracle},
        {"selector": "random pick", "resolved": rand},
    ]
    for name, sels in selections.items():
        resolved = sum(bool(is_resolved(sels[i], records[i].candidates)) for i in labelled)
        abstained = sum(sels[i].candidate_id is None for i in labelled)
        ties = sum(bool(sels[i].tied) for i in labelled)
        rows.append({"selector": name, "resolved": resolved, "abstained": abstained, "ties": ties})
    gap = oracle - rand
    for row in rows:
        row["accuracy"] = row["resolved"] / n if n else None
        if row["selector"] not in ("oracle (pass@k)", "random pick") and gap > 0:
            row["gap_closed"] = (row["resolved"] - rand) / gap
    seconds, costs, ran = 0.0, Cost(), 0
    errors: dict[str, dict[str, str]] = {}
    no_env: dict[str, str] = {}
    for record in records:
        info = read_task_info(record.path, "ensemble")
        if info.get("seconds"):
            ran += 1
            seconds += sum(info["seconds"].values())
        if info.get("errors"):
            errors[record.task_id] = info["errors"]
        if info.get("environment"):
            no_env[record.task_id] = info["environment"]
        costs = costs + verification_cost(record.candidates)
    from swescale.selection.metrics import calibration_error, score_auc

    names = sorted({v for r in records for c in r.candidates for v in c.verdicts})
    auc = {
        name: found
        for name in [*names, "execution"]
        if (found := score_auc([records[i] for i in labelled], name)) is not None
    }
    ece = (
        calibration_error(
            [records[i] for i in labelled], [selections["calibrated"][i] for i in labelled]
        )
        if "calibrated" in selections
        else None
    )
    return {
        "instances": len(records),
        "labelled": n,
        "auc": auc,
        "calibration_error": ece,
        "partly_labelled": partly,
        "mixed_pools": sum(mixed(records[i]) for i in labelled),
        "candidates": sum(len(r.candidates) for r in records),
        "producers": sum(
            len(c.sources) + len(c.trajectory_ids) for r in records for c in r.candidates
        ),
        "rows": rows,
        "sandbox_instances": ran,
        "judged": judged_instances(records),
        "sandbox_seconds_per_instance": seconds / ran if ran else None,
        "verdict_sandbox_seconds": round(costs.sandbox_seconds, 1),
        "errors": errors,
        "no_environment": no_env,
        "test_setup_changed": test_setup_candidates(records, selections),
    }


def test_setup_candidates(
    records: Sequence[TaskRecord], selections: dict[str, list[Selection]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Candidates whose patch changes how the tests run (conftest.py, pytest settings,
    test plugins: ``swescale.patches.changed_test_setup``): task id -> candidate id ->
    the paths, its producers and the selectors that picked it. Grading takes their test
    outcomes as they come (as the official harness does); a reader should know."""
    from swescale.patches import changed_test_setup
    from swescale.verifiers.regression import task_test_command

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for index, record in enumerate(records):
        command = task_test_command(record.task)[0] if record.task is not None else ""
        for cand in record.candidates:
            paths = changed_test_setup(cand.patch, command)
            if not paths:
                continue
            picked = sorted(
                name
                for name, sels in selections.items()
                if index < len(sels) and sels[index].candidate_id == cand.id
            )
            out.setdefault(record.task_id, {})[cand.id] = {
                "paths": paths,
                "producers": [*cand.sources, *cand.trajectory_ids],
                "picked_by": picked,
            }
    return out


def judged_instances(records: Sequence[TaskRecord]) -> dict[str, int]:
    """Per verifier, the instances where it judged some candidate (a verdict without an
    infrastructure error): how much of the pool the evidence actually covers."""
    names = sorted({n for r in records for c in r.candidates for n in c.verdicts})
    return {
        name: sum(
            any(name in c.verdicts and not c.verdicts[name].infra_error for c in record.candidates)
            for record in records
        )
        for name in names
    }


def read_records(out_dir: Path, task_ids: Iterable[str]) -> list[TaskRecord]:
    return [read_task_record(out_dir / tid) for tid in task_ids if (out_dir / tid).is_dir()]
