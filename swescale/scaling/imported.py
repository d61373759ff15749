"""Importing other agents' trajectories into a run directory, replaying each one faithfully
in a sandbox of its instance (``swescale replay import``).

For every trajectory file: read it (:mod:`swescale.record.foreign`), find its instance in
the dataset, replay it (:mod:`swescale.replay.engine`) and write it into the run's record
like a trajectory of ``swescale run``: the agent's steps with their recorded observations
and the repository state after each (so ``branch`` can start from any step), a footer
holding the submitted patch byte for byte, per-step fidelity in the task's
``replay.json``, the distinct submissions as candidates, official grades as labels, and a
``predictions.jsonl`` row per trajectory (``model_name_or_path`` = ``<model>@<run>``).

Resumable: a trajectory whose record has a footer and whose replay is in ``replay.json``
is reused; one cut short (Ctrl-C, kill -9) is replayed again from a fresh sandbox. One
bad trajectory (unreadable, unknown format, instance missing, a sandbox that dies) is
recorded with its error and never stops the batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swescale.patches import patch_key
from swescale.pool import run_pool
from swescale.record import BlobStore, RunDir, TrajectoryRecorder, load_trajectory, safe_name
from swescale.record.foreign import ForeignFormatError, ImportedTrajectory, read_foreign
from swescale.record.io import append_jsonl, read_jsonl
from swescale.record.layout import EVAL_PATCH, EVAL_REPORT, TRAJECTORIES
from swescale.record.task import (
    read_task_info,
    write_candidates,
    write_labels,
    write_task,
    write_task_info,
)
from swescale.replay.engine import REPRODUCED, TrajectoryReplay, replay_imported
from swescale.types import Cost, Task

log = logging.getLogger(__name__)

TRAJECTORY_SUFFIXES = (".traj.json", ".traj")


@dataclass(frozen=True)
class ImportSource:
    """One trajectory file and the name of the run it came from (its producer label)."""

    path: Path
    label: str


@dataclass
class ImportOutcome:
    source: ImportSource
    trajectory_id: str = ""
    instance_id: str = ""
    status: str = "error"  # replayed | reused | error | interrupted
    error: str = ""
    replay: TrajectoryReplay | None = None


@dataclass
class ImportResult:
    outcomes: list[ImportOutcome] = field(default_factory=list)
    discovery_errors: list[str] = field(default_factory=list)
    interrupted: bool = False


# ------------------------------------------------------------------------------ sources


def discover(paths: Iterable[str | Path]) -> tuple[list[ImportSource], list[str]]:
    """Trajectory files under ``paths`` (files, or run directories searched recursively:
    mini-swe-agent's ``<run>/<instance>/<instance>.traj.json``, SWE-agent's ``*.traj``,
    swescale's ``<task>/trajectories/*.jsonl``), each labelled with its run's folder name;
    and an error per path that holds none."""
    sources: list[ImportSource] = []
    errors: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            sources.append(ImportSource(path, _label(path)))
            continue
        if not path.is_dir():
            errors.append(f"{path}: no such file or directory")
            continue
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and (
                p.name.endswith(TRAJECTORY_SUFFIXES)
                or (p.suffix == ".jsonl" and p.parent.name == TRAJECTORIES)
            )
        )
        if not found:
            errors.append(
                f"{path}: no trajectory files (*.traj.json, *.traj, trajectories/*.jsonl)"
            )
        sources += [ImportSource(p, _label(p, root=path)) for p in found]
    return _unique_labels(sources), errors


def _label(path: Path, root: Path | None = None) -> str:
    """The run a trajectory file belongs to: ``<run>/<instance>/<file>`` -> ``<run>``;
    ``<run>/<file>`` -> ``<run>``; swescale's ``<run>/<task>/trajectories/<id>.jsonl``
    -> ``<run>.<id>``."""
    if path.parent.name == TRAJECTORIES:
        return f"{path.parent.parent.parent.name}.{path.stem}"
    instance = path.name
    for suffix in TRAJECTORY_SUFFIXES:
        instance = instance.removesuffix(suffix)
    if path.parent.name == instance and path.parent.parent != path.parent:
        return path.parent.parent.name
    return path.parent.name or (root.name if root else "imported")


def _unique_labels(sources: list[ImportSource]) -> list[ImportSource]:
    """Two files of one instance under the same label (copies, reruns) stay apart."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for src in sources:
        key = (src.label, src.path.name)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            digest = hashlib.sha256(str(src.path).encode()).hexdigest()[:6]
            src = ImportSource(src.path, f"{src.label}-{digest}")
        out.append(src)
    return out


def trajectory_id_for(instance_id: str, label: str) -> str:
    return f"{safe_name(instance_id)}.{safe_name(label)}"


# ------------------------------------------------------------------------------ labels


def read_official_grades(
    dirs: Iterable[str | Path],
) -> tuple[dict[tuple[str, str], bool], list[str]]:
    """Official evaluation results (``logs/run_evaluation/<run>/<model>/<instance>/``
    folders holding ``report.json`` and ``patch.diff``, searched recursively): (instance
    id, normalized patch key) -> resolved, so a trajectory's submission finds its grade
    whatever the run was called. Errors name what could not be read."""
    from swescale.record.io import read_json

    grades: dict[tuple[str, str], bool] = {}
    errors: list[str] = []
    for raw in dirs:
        root = Path(raw)
        if not root.exists():
            errors.append(f"labels: {root}: no such file or directory")
            continue
        reports = sorted(root.rglob(EVAL_REPORT)) if root.is_dir() else [root]
        if not reports:
            errors.append(f"labels: {root}: no report.json under it")
        for report_path in reports:
            report = read_json(report_path)
            patch_file = report_path.parent / EVAL_PATCH
            if not isinstance(report, dict) or not patch_file.is_file():
                errors.append(f"labels: {report_path}: not an official result folder")
                continue
            key = patch_key(patch_file.read_text(encoding="utf-8", errors="surrogateescape"))
            for instance_id, entry in report.items():
                if isinstance(entry, dict) and isinstance(entry.get("resolved"), bool):
                    grades[(str(instance_id), key)] = entry["resolved"]
    return grades, errors


# ------------------------------------------------------------------------------ importing


class ReplaySandboxes:
    """Sandboxes that show a replayed trajectory the environment its agent saw.

    A trajectory recorded in the image's own environment replays in the instance image.
    One recorded in an official image's base env (``ShellSemantics.environment``
    ``official-base``; ``environment="auto"``) replays in the base view of the instance
    image (:mod:`swescale.swebench.agent_view`), with the package index reachable
    through the allow-listed proxy as of the recording day (``network="index"``) or not
    at all (``"none"``). ``environment`` ``image`` or ``official-base`` forces one view.
    """

    def __init__(
        self, client: Any, cfg: Any, run_id: str, environment: str = "auto", network: str = "index"
    ) -> None:
        if environment not in ("auto", "image", "official-base"):
            raise ValueError(
                f"environment must be auto, image or official-base, not {environment!r}"
            )
        if network not in ("index", "none"):
            raise ValueError(f"network must be index or none, not {network!r}")
        self.client = client
        self.cfg = cfg
        self.run_id = run_id
        self.environment = environment
        self.network = network

    def _fresh_dirs(self, task: Task) -> tuple[str, ...]:
        """The base commit's directories the default branch lacks (from the task's mirror;
        () without one): git created them at the official image's reset."""
        from swescale.swebench.agent_view import fresh_directories
        from swescale.swebench.repos import RepoError, mirror_git
        from swescale.swebench.specs import repo_source_for

        ds = self.cfg.dataset
        repos = repo_source_for(
            [task], Path(ds.repo_cache_dir or self.cfg.images.cache_dir), ds.repos_dir, url=None
        )
        try:
            mirror = repos.ensure_commit(task)
        except (RepoError, OSError):
            return ()
        return fresh_directories(mirror_git(mirror), task.base_commit)

    def view(self, traj: ImportedTrajectory) -> str:
        return traj.shell.environment if self.environment == "auto" else self.environment

    @contextlib.contextmanager
    def open(
        self, task: Task, image: Any, traj: ImportedTrajectory, trajectory_id: str
    ) -> Iterator[Any]:
        from swescale.sandbox import DockerSandbox
        from swescale.scaling.stages import open_task_sandbox

        labels = {"run": self.run_id, "task": task.id, "trajectory": trajectory_id}
        if self.view(traj) != "official-base":
            sandbox = open_task_sandbox(self.client, image, self.cfg, labels)
            try:
                yield sandbox
            finally:
                sandbox.close()
            return
        from swescale.swebench.agent_view import AgentView, base_view_image, view_environment
        from swescale.swebench.config import GradingConfig
        from swescale.swebench.index_proxy import PROXY_ALIAS, snapshot_index_url
        from swescale.swebench.layers import REPO_DIR
        from swescale.swebench.network import grading_network

        tag = base_view_image(
            self.client,
            str(getattr(image, "tag", image)),
            AgentView(git_abbrev=traj.shell.git_abbrev, fresh_dirs=self._fresh_dirs(task)),
            self.cfg.images,
        )
        env = view_environment()
        mode = "isolated" if self.network == "index" else "none"
        grading = GradingConfig(package_index="proxy" if self.network == "index" else "off")
        with grading_network(
            self.client, task, mode, self.cfg.images, labels, grading=grading, snapshot_index=True
        ) as net:
            env.update(net.environment)
            if net.index_proxy is not None and traj.shell.recorded_at is not None:
                # pip sees the index as it was when the trajectory was recorded.
                # The dated index answers over plain HTTP inside the run's network; the
                # files it names are fetched from files.pythonhosted.org through the
                # allow-listed proxy (pip's own --proxy would send the index there too).
                env["PIP_INDEX_URL"] = snapshot_index_url(net.index_proxy, traj.shell.recorded_at)
                env["PIP_TRUSTED_HOST"] = PROXY_ALIAS
                env["HTTPS_PROXY"] = env.pop("PIP_PROXY")
                env["NO_PROXY"] = PROXY_ALIAS
            sandbox_cfg = self.cfg.sandbox.model_copy(
                update={
                    "workdir": REPO_DIR,
                    "env": env,
                    "exact_env": True,
                    "network_name": net.name,
                }
            )
            sandbox = DockerSandbox.create(self.client, tag, sandbox_cfg, labels=labels)
            try:
                for path, data in net.files.items():
                    sandbox.write_file(path, data)
                yield sandbox
            finally:
                sandbox.close()


class Importer:
    """Imports and replays trajectories into ``rundir``.

    ``image_for(task)`` gives the task's instance image (built once, cached);
    ``open_sandbox(task, image, trajectory, trajectory_id)`` a context manager giving a
    fresh sandbox for one trajectory (:class:`ReplaySandboxes`). ``stop`` set (Ctrl-C)
    ends the batch after the trajectories in flight stop at their next step.
    """

    def __init__(
        self,
        rundir: RunDir,
        tasks: dict[str, Task],
        *,
        image_for: Callable[[Task], Any],
        open_sandbox: Callable[[Task, Any, ImportedTrajectory, str], Any],
        grades: dict[tuple[str, str], bool] | None = None,
        stop: threading.Event | None = None,
        progress: Callable[[ImportOutcome], None] | None = None,
    ) -> None:
        self.rundir = rundir
        self.tasks = tasks
        self.image_for = image_for
        self.open_sandbox = open_sandbox
        self.grades = grades or {}
        self.stop = stop or threading.Event()
        self.progress = progress
        self._known_failures: set[tuple[Any, Any, Any]] | None = None
        self._lock = threading.Lock()
        # What the recorded agents spent (their tokens and dollars, as "agent") and what
        # replaying cost here (sandbox seconds, as "other"), kept in run.json like a run's.
        from swescale.scaling.ledger import BudgetLedger

        self.ledger = BudgetLedger.from_dict(rundir.run_json().get("ledger"))

    def run(self, sources: Sequence[ImportSource], workers: int = 1) -> ImportResult:
        """Every source, grouped by instance (one worker per instance at a time)."""
        result = ImportResult()
        parsed: dict[str, list[tuple[ImportSource, ImportedTrajectory]]] = {}
        for src in sources:
            try:
                traj = read_foreign(src.path)
            except ForeignFormatError as exc:
                self._done(result, ImportOutcome(src, error=str(exc)))
                continue
            parsed.setdefault(traj.instance_id, []).append((src, traj))

        def finished(instance_id: str, outcomes: list[ImportOutcome]) -> None:
            for outcome in outcomes:
                self._done(result, outcome)

        def failed(instance_id: str, error: Exception) -> None:
            for src, _ in parsed[instance_id]:
                self._done(
                    result,
                    ImportOutcome(
                        src, instance_id=instance_id, error=f"{type(error).__name__}: {error}"
                    ),
                )

        run = run_pool(
            lambda instance_id: self._instance(instance_id, parsed[instance_id]),
            sorted(parsed),
            workers=max(1, workers),
            stop=self.stop,
            name="import",
            on_finished=finished,
            on_failed=failed,
        )
        for outcome in run.outcomes:
            if outcome.status == "not_run":
                for src, _ in parsed[outcome.item]:
                    self._done(
                        result,
                        ImportOutcome(src, instance_id=outcome.item, status="interrupted"),
                    )
        result.interrupted = self.stop.is_set()
        return result

    def _done(self, result: ImportResult, outcome: ImportOutcome) -> None:
        result.outcomes.append(outcome)
        if outcome.status == "error" and not self._recorded(outcome):
            self.rundir.record_failure(
                outcome.instance_id or "-",
                "import",
                outcome.error,
                source=str(outcome.source.path),
            )
        if self.progress is not None:
            self.progress(outcome)

    def _recorded(self, outcome: ImportOutcome) -> bool:
        """Whether an earlier run of the import recorded this same failure (a rerun
        reports it again but does not repeat it in failures.jsonl)."""
        if self._known_failures is None:
            self._known_failures = {
                (f.get("task_id"), f.get("reason"), f.get("source")) for f in self.rundir.failures()
            }
        key = (outcome.instance_id or "-", outcome.error, str(outcome.source.path))
        if key in self._known_failures:
            return True
        self._known_failures.add(key)
        return False

    def _instance(
        self, instance_id: str, items: list[tuple[ImportSource, ImportedTrajectory]]
    ) -> list[ImportOutcome]:
        task = self.tasks.get(instance_id)
        if task is None:
            why = f"instance {instance_id} is not in the dataset"
            return [ImportOutcome(s, instance_id=instance_id, error=why) for s, _ in items]
        task_dir = self.rundir.task_dir(task.id)
        write_task(task_dir, task)
        outcomes = []
        image: Any = None
        for src, traj in items:
            outcome = ImportOutcome(
                src, trajectory_id=trajectory_id_for(instance_id, src.label), instance_id=task.id
            )
            if self.stop.is_set():
                outcome.status = "interrupted"
                outcomes.append(outcome)
                continue
            try:
                if self._reuse(task, outcome):
                    outcomes.append(outcome)
                    continue
                if image is None:
                    image = self.image_for(task)
                self._replay(task, image, traj, outcome)
            except Exception as exc:  # noqa: BLE001 - one trajectory never stops the batch
                outcome.status = "error"
                outcome.error = f"{type(exc).__name__}: {exc}"
                log.info("import of %s failed", src.path, exc_info=True)
            outcomes.append(outcome)
        self._write_pool(task, [o for o in outcomes if o.replay is not None], items)
        self._write_state(task, outcomes)
        return outcomes

    def _write_state(self, task: Task, outcomes: list[ImportOutcome]) -> None:
        """The task's state in run.json as a run's (done, failed with the reason, or
        interrupted), and the ledger."""
        statuses = {o.status for o in outcomes}
        if "interrupted" in statuses:
            state: dict[str, Any] = {"status": "interrupted"}
        elif statuses <= {"error"}:
            state = {"status": "failed", "reason": outcomes[0].error if outcomes else ""}
        else:
            state = {"status": "done"}
        ledger = self.ledger.to_dict()

        def change(data: dict[str, Any]) -> None:
            data.setdefault("tasks", {}).setdefault(task.id, {}).update(state)
            data.update(ledger=ledger, totals=ledger["run"])

        with self._lock:
            self.rundir.update_run_json(change)

    def _reuse(self, task: Task, outcome: ImportOutcome) -> bool:
        path = self.rundir.trajectory_path(task.id, outcome.trajectory_id)
        stored = read_task_info(self.rundir.task_dir(task.id), "replay").get(outcome.trajectory_id)
        if not path.exists() or not isinstance(stored, dict):
            return False
        try:
            finished = load_trajectory(path).finished
        except Exception:  # noqa: BLE001 - a damaged record is replayed again
            finished = False
        if not finished:
            return False
        outcome.replay = TrajectoryReplay.model_validate(stored)
        outcome.status = "reused"
        return True

    def _replay(
        self, task: Task, image: Any, traj: ImportedTrajectory, outcome: ImportOutcome
    ) -> None:
        path = self.rundir.trajectory_path(task.id, outcome.trajectory_id)
        path.unlink(missing_ok=True)  # an unfinished earlier attempt starts over
        blobs = BlobStore(self.rundir.blobs_dir(task.id))
        with self.open_sandbox(task, image, traj, outcome.trajectory_id) as sandbox:
            replay = replay_imported(
                traj,
                outcome.trajectory_id,
                sandbox,
                on_state=lambda _step, _ref, blob: blobs.put(blob),
                stop=self.stop.is_set,
            )
        outcome.replay = replay
        if replay.error == "interrupted":
            outcome.status = "interrupted"
            return
        self._write_trajectory(task, image, traj, outcome, replay)
        outcome.status = "replayed" if replay.error is None else "error"
        outcome.error = replay.error or ""
        recorded = Cost(
            tokens_in=sum(s.tokens_in for s in traj.steps),
            tokens_out=sum(s.tokens_out for s in traj.steps),
            dollars=traj.cost_dollars,
        )
        self.ledger.charge(task.id, recorded, kind="agent")
        self.ledger.charge(task.id, Cost(sandbox_seconds=replay.seconds), kind="other")

    def _write_trajectory(
        self,
        task: Task,
        image: Any,
        traj: ImportedTrajectory,
        outcome: ImportOutcome,
        replay: TrajectoryReplay,
    ) -> None:
        header = {
            "model": traj.model,
            "image": str(getattr(image, "tag", image)),
            "source_format": traj.source_format,
            "source_path": traj.source_path,
            "agent_version": traj.agent_version,
            "prompt_messages": traj.prompt_messages,
            "shell": traj.shell.model_dump(mode="json"),
            "label": outcome.source.label,
        }
        path = self.rundir.trajectory_path(task.id, outcome.trajectory_id)
        with TrajectoryRecorder(
            path, {"trajectory_id": outcome.trajectory_id, "task_id": task.id, **header}
        ) as recorder:
            for step, state in zip(traj.steps, replay.states, strict=False):
                recorder.write_step(step.model_copy(update={"state": state}))
            for step in traj.steps[len(replay.states) :]:
                recorder.write_step(step)
            recorder.write_footer(
                traj.exit_status,
                traj.submission or "",
                {
                    "steps": len(traj.steps),
                    "tokens_in": sum(s.tokens_in for s in traj.steps),
                    "tokens_out": sum(s.tokens_out for s in traj.steps),
                    "seconds": traj.recorded_seconds or 0.0,
                    "dollars": traj.cost_dollars,
                    "replay_seconds": round(replay.seconds, 3),
                },
            )
        with self._lock:
            info = read_task_info(self.rundir.task_dir(task.id), "replay")
            info[outcome.trajectory_id] = replay.model_dump(mode="json")
            write_task_info(self.rundir.task_dir(task.id), "replay", info)
            model_label = f"{traj.model}@{outcome.source.label}"
            existing = {
                (r.get("instance_id"), r.get("model_name_or_path"))
                for r in read_jsonl(self.rundir.predictions_path)
            }
            if (task.id, model_label) not in existing:
                append_jsonl(
                    self.rundir.predictions_path,
                    {
                        "instance_id": task.id,
                        "model_name_or_path": model_label,
                        "model_patch": traj.submission or "",
                    },
                )

    def _write_pool(
        self,
        task: Task,
        outcomes: list[ImportOutcome],
        items: list[tuple[ImportSource, ImportedTrajectory]],
    ) -> None:
        """The task's candidates (one per distinct submission) and their labels."""
        from swescale.selection.candidates import candidates_from

        by_label = {src.label: traj for src, traj in items}
        patches = {
            o.trajectory_id: by_label[o.source.label].submission or ""
            for o in outcomes
            if o.source.label in by_label
        }
        candidates = candidates_from(task.id, patches)
        labels = {}
        for cand in candidates:
            graded = self.grades.get((task.id, patch_key(cand.patch)))
            if graded is not None:
                cand.resolved = graded
                labels[cand.id] = graded
        task_dir = self.rundir.task_dir(task.id)
        write_candidates(task_dir, candidates)
        if labels:
            write_labels(task_dir, labels)


# ------------------------------------------------------------------------------ summary


@dataclass
class RepoSummary:
    """Replay fidelity of one repository's trajectories."""

    repo: str
    trajectories: int = 0
    errors: int = 0
    steps: int = 0
    identical: int = 0
    masked: int = 0
    differs: int = 0
    not_replayed: int = 0
    patches_reproduced: int = 0
    replay_seconds: float = 0.0
    recorded_seconds: float = 0.0
    causes: dict[str, int] = field(default_factory=dict)

    @property
    def replayed_steps(self) -> int:
        return self.identical + self.masked + self.differs


def summarize(
    outcomes: Sequence[ImportOutcome], repo_of: Callable[[str], str]
) -> list[RepoSummary]:
    """Per repository: trajectories, steps by fidelity, patches reproduced (identical or
    equal after normalization), seconds, and each cause of difference with its count."""
    rows: dict[str, RepoSummary] = {}
    for outcome in outcomes:
        repo = repo_of(outcome.instance_id) if outcome.instance_id else "(unknown)"
        row = rows.setdefault(repo, RepoSummary(repo))
        if outcome.replay is None:
            row.errors += 1
            continue
        replay = outcome.replay
        row.trajectories += 1
        if outcome.status == "error":
            row.errors += 1
        counts = replay.counts()
        row.identical += counts["identical"]
        row.masked += counts["masked"]
        row.differs += counts["differs"]
        row.not_replayed += counts["not_replayed"]
        row.steps += len(replay.step_fidelity)
        row.patches_reproduced += replay.patch_fidelity in REPRODUCED
        row.replay_seconds += replay.seconds
        row.recorded_seconds += replay.recorded_seconds or 0.0
        for action in replay.actions:
            if action.cause:
                row.causes[action.cause] = row.causes.get(action.cause, 0) + 1
    return [rows[k] for k in sorted(rows)]


def summary_line(rows: Sequence[RepoSummary]) -> str:
    """The one line ``replay import`` ends with."""
    t = sum(r.trajectories for r in rows)
    s = sum(r.replayed_steps for r in rows)
    i = sum(r.identical for r in rows)
    m = sum(r.masked for r in rows)
    d = sum(r.differs for r in rows)
    p = sum(r.patches_reproduced for r in rows)
    return (
        f"replayed {t} trajectories, {s} steps: {i} identical, {m} equal after masking, "
        f"{d} differ; patches reproduced {p}/{t}"
    )
