"""Grading a candidate patch in a fresh sandbox, the way the official harness (5.x) does.

1. A fresh container from the task's instance image (network as ``GradingConfig`` says).
2. The candidate is applied with the official commands in order (``GIT_APPLY_CMDS`` of
   ``swebench.harness.run_evaluation``: ``git apply``, ``--3way``, ``--reject``, then
   ``patch --batch --forward --fuzz=5``), the tree reset between attempts, and a patch
   that ``git apply --check --reverse`` shows already applied accepted; which one
   applied is recorded. None applied: an error of the run (``patch_apply_failed``).
   The lines come from ``swescale.patches.apply``, which the verifiers, the CI bot and
   every other place that applies a candidate run too.
3. The eval script: the row's own ``eval_script`` (v5 data), else the one swebench 4.1.0
   writes, with the test command's exit status recorded (5.x ``record_test_exit_code``),
   adapted only where needed (``adapt_eval_script``; every adaptation is listed in the
   result). Its output goes to a file, so a long log is graded whole.
4. The log is graded by the official functions (``grading``).

A run past the timeout is killed with its container and is an error (``timeout``), as is
a test patch that does not apply. Every failure becomes a GradeResult; nothing raises.
"""

from __future__ import annotations

import io
import logging
import re
import shlex
import tarfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swebench.harness.constants import APPLY_PATCH_FAIL
from swebench.harness.utils import parse_eval_script, record_test_exit_code

from swescale.patches import apply_lines, changed_test_setup, patch_bytes, setup_change_note
from swescale.sandbox import DockerSandbox, ImagesConfig
from swescale.swebench.config import GradingConfig
from swescale.swebench.grading import GradeResult, empty_result, error_result, grade_log
from swescale.swebench.images import REPO_DIR, VENV, InstanceImage
from swescale.swebench.network import grading_network
from swescale.swebench.specs import (
    files_of_test_patch,
    provider_for,
    task_test_command,
)
from swescale.types import Task

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

WORK_NAME = "swescale-grade"
WORK = f"/tmp/{WORK_NAME}"
PATCH_FILE = f"{WORK}/patch.diff"
EVAL_SCRIPT = f"{WORK}/eval.sh"
TEST_OUTPUT = f"{WORK}/test_output.txt"
APPLY_LOG = f"{WORK}/apply.log"
STRATEGY_FILE = f"{WORK}/strategy"
APPLY_FAILED_EXIT = 97
# Printed by the eval script when the test patch does not apply: the run is an error.
TEST_PATCH_FAILED = ">>>>> Test Patch Apply Failed"


# -- the eval script ------------------------------------------------------------------


@dataclass
class EvalScript:
    """The script a grading run executes, and how it differs from the official one."""

    text: str
    adaptations: list[str] = field(default_factory=list)


def _reinstall_offline(install: str) -> str | None:
    """The spec's install step as the eval script reruns it without network: no index,
    no build isolation (the image carries the build requirements), no dependency
    resolution (the environment has them). None when it is not a pip install."""
    if not re.match(r"(python -m )?pip install", install):
        return None
    head, _, rest = install.partition("install")
    return f"{head}install --no-index --no-build-isolation --no-deps{rest}"


def base_eval_lines(task: Task, workdir: str = REPO_DIR) -> tuple[list[str], str]:
    """The official eval script's commands (without shebang and ``set`` line) and where
    they come from: the row's own ``eval_script``, else what the task's spec provider
    writes (swebench 4.1.0's generator; mini tasks: the same shape from their recipe)."""
    row_script = task.extra.get("eval_script")
    if isinstance(row_script, str) and row_script.strip():
        return parse_eval_script(row_script), "the row's eval_script"
    return provider_for(task).eval_lines(task, workdir)


def adapt_eval_script(
    lines: list[str], task: Task, official_image: bool, package_index: bool = False
) -> tuple[list[str], list[str]]:
    """(lines, adaptations): the official eval script made right for where it runs (pure).

    Everywhere: the test files reset to the base commit are only those that exist there
    (a ``git checkout`` naming a file the test patch creates fails as a whole and resets
    nothing), files the test patch creates are removed before it is applied (a candidate
    cannot plant them), and a test patch that does not apply ends the run as an error.
    Local images: the venv instead of conda, and the install step rerun offline, unless
    a ``package_index`` is reachable (``grading.package_index``): then it runs as the
    official one does, dependencies and all."""
    files = files_of_test_patch(task.test_patch or "")
    existing = " ".join(shlex.quote(f) for f in files.existing)
    install = provider_for(task).install_command(task)
    out: list[str] = []
    notes: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not official_image and stripped == "source /opt/miniconda3/bin/activate":
            out.append(f"source {VENV}/bin/activate")
            _note(notes, f"conda activation replaced by the venv at {VENV}")
            continue
        if not official_image and re.fullmatch(r"conda activate \S+", stripped):
            continue
        if not official_image and install and stripped == install and package_index:
            out.append(line)
            _note(notes, "install step rerun as the official one, through the package index")
            continue
        if not official_image and install and stripped == install:
            offline = _reinstall_offline(install)
            if offline:
                out.append(offline)
                _note(notes, f"install step rerun offline: `{offline}`")
                continue
        if stripped.startswith(f"git checkout {task.base_commit} "):
            named = stripped[len(f"git checkout {task.base_commit} ") :].split()
            if set(named) - set(files.existing):
                _note(notes, "test-file reset limited to files that exist at the base commit")
            if existing:
                out.append(f"git checkout {task.base_commit} {existing}")
            continue
        if stripped.startswith("git apply -v - <<"):
            first, newline, body = line.partition("\n")
            if files.created:
                created = " ".join(shlex.quote(f) for f in files.created)
                out.append(f"rm -rf -- {created}")
                _note(notes, "files the test patch creates removed before it is applied")
            fail = f"{{ echo '{TEST_PATCH_FAILED}'; exit 1; }}"
            out.append(f"{first} || {fail}{newline}{body}")
            continue
        out.append(line)
    return out, notes


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def eval_script(task: Task, image: InstanceImage, package_index: bool = False) -> EvalScript:
    """The eval script for ``task`` in ``image``: official lines, exit status recorded,
    adapted (see ``adapt_eval_script``)."""
    lines, source = base_eval_lines(task, image.workdir)
    lines = record_test_exit_code(lines)
    lines, adaptations = adapt_eval_script(lines, task, image.official, package_index)
    text = "\n".join(["#!/bin/bash", "set -uxo pipefail", *lines]) + "\n"
    return EvalScript(text, [f"eval script from {source}", *adaptations])


def driver_script(has_patch: bool, workdir: str) -> str:
    """Applies the candidate (the official attempts, in order, the tree reset between
    them; then the already-applied check) and runs the eval script, in one process:
    each round trip to the engine costs more than the commands."""
    lines = ["#!/bin/bash", "set -u", f"cd {workdir}", f": > {APPLY_LOG}"]
    if has_patch:
        lines += [
            *apply_lines(PATCH_FILE, APPLY_LOG, WORK),
            f'if [ -z "$applied" ]; then echo "{APPLY_PATCH_FAIL}:"; cat {APPLY_LOG}; exit {APPLY_FAILED_EXIT}; fi',
            f'echo "$applied" > {STRATEGY_FILE}',
        ]
    lines += [f"cat {APPLY_LOG}", f"exec bash {EVAL_SCRIPT} > {TEST_OUTPUT} 2>&1"]
    return "\n".join(lines) + "\n"


# -- running ---------------------------------------------------------------------------


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _read(sb: DockerSandbox, path: str) -> bytes | None:
    """A file from the container in one call (the path is ours, not a user's); None when
    it (or the container) is gone."""
    import docker.errors

    try:
        stream, _ = sb.container.get_archive(path)
    except docker.errors.NotFound:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member else None
        return handle.read() if handle else b""


def grade_patch(
    client: docker.DockerClient,
    task: Task,
    patch: str | None,
    cfg: GradingConfig,
    image: InstanceImage | None = None,
    labels: dict[str, str] | None = None,
    images: ImagesConfig | None = None,
) -> GradeResult:
    """Grade ``patch`` on ``task`` in a fresh sandbox from ``image``. Never raises.

    ``patch`` None or empty is the official "empty patch": nothing runs (validation runs
    the test patch alone with ``grade_test_patch_alone``). Without ``image`` the task's
    instance image is found or built with default image settings (many candidates: use
    ``evaluate.Grader``, which keeps images and repositories at hand)."""
    if not patch:
        return empty_result(task)
    return _run(client, task, patch, cfg, image, labels, images)


def grade_test_patch_alone(
    client: docker.DockerClient,
    task: Task,
    cfg: GradingConfig,
    image: InstanceImage | None = None,
    labels: dict[str, str] | None = None,
    images: ImagesConfig | None = None,
) -> GradeResult:
    """The eval script with no candidate at all (the official ``--no-patch`` mode that
    validation uses): FAIL_TO_PASS must fail, PASS_TO_PASS pass."""
    return _run(client, task, None, cfg, image, labels, images)


def _run(
    client: docker.DockerClient,
    task: Task,
    patch: str | None,
    cfg: GradingConfig,
    image: InstanceImage | None,
    labels: dict[str, str] | None,
    images: ImagesConfig | None,
) -> GradeResult:
    start = time.monotonic()
    if image is None:
        try:
            image = _default_image(client, task, cfg)
        except Exception as exc:  # builds and clones fail in many ways; all end here
            return error_result(task, f"no instance image: {exc}", time.monotonic() - start)
    script = eval_script(task, image, package_index=cfg.package_index == "proxy")
    mode = cfg.network_mode(image.official)
    try:
        with grading_network(client, task, mode, images, labels, cfg) as net:
            sandbox_cfg = image.sandbox_config(
                memory=cfg.memory,
                cpus=grading_cpus(task, cfg),
                network=mode == "bridge",
                network_name=net.name,
                command_timeout=cfg.timeout,
            )
            sandbox_cfg.env.update(net.environment)
            try:
                sb = DockerSandbox.create(
                    client,
                    image.tag,
                    sandbox_cfg,
                    labels={"task": task.id, **(labels or {})},
                    base_commit=task.base_commit,
                    start_session=False,
                )
            except Exception as exc:  # the engine, a missing image: not the patch's fault
                return error_result(
                    task, f"could not start a sandbox: {exc}", time.monotonic() - start, image.tag
                )
            with sb:
                result = _grade_in(sb, task, patch, cfg, image, script, net.files)
            result.notes = [*net.notes, *result.notes]
            result.package_index = net.package_index_usage()
    except Exception as exc:
        log.exception("grading %s failed", task.id)
        result = error_result(task, f"grading failed: {exc.__class__.__name__}: {exc}")
    result.image = image.tag
    result.notes = list(image.notes) + result.notes
    if patch:
        result.test_setup_changed = changed_test_setup(patch, _test_command(task))
        if result.test_setup_changed:
            result.notes.append(setup_change_note(result.test_setup_changed))
    result.adaptations = script.adaptations
    result.python, result.python_wanted = image.python, image.python_wanted
    result.seconds = time.monotonic() - start
    return result


def _test_command(task: Task) -> str:
    """The task's test command, to recognise the runner a patch may change; "" when the
    spec has none."""
    try:
        return task_test_command(task)
    except Exception:  # noqa: BLE001 - a task without a spec still gets graded
        return ""


def grading_cpus(task: Task, cfg: GradingConfig) -> float:
    """CPUs of a grading container: the spec's ``nano_cpus`` (as the official harness
    sets it), else the configured number (0: no limit)."""
    wanted = provider_for(task).cpus(task)
    return wanted if wanted else cfg.cpus


def _default_image(client: docker.DockerClient, task: Task, cfg: GradingConfig) -> InstanceImage:
    from swescale.sandbox import ImagesConfig
    from swescale.swebench.images import instance_image
    from swescale.swebench.specs import repo_source_for

    images = ImagesConfig()
    repos = repo_source_for([task], images.cache_dir)
    return instance_image(client, task, images=images, grading=cfg, repos=repos)


def _grade_in(
    sb: DockerSandbox,
    task: Task,
    patch: str | None,
    cfg: GradingConfig,
    image: InstanceImage,
    script: EvalScript,
    extra_files: dict[str, bytes] | None = None,
) -> GradeResult:
    files = {
        "eval.sh": script.text.encode(),
        "drive.sh": driver_script(patch is not None, image.workdir).encode(),
    }
    if patch is not None:
        # Verbatim, as the official harness writes it (no newline added).
        files["patch.diff"] = patch_bytes(patch)
    members = {f"{WORK_NAME}/{k}": v for k, v in files.items()}
    for path, data in (extra_files or {}).items():
        # The network's files (a stand-in's CA certificate) live under /tmp too.
        members[path.removeprefix("/tmp/")] = data
    # Extracting at /tmp makes the work directory (the engine creates missing parents).
    if not sb.container.put_archive("/tmp", _tar(members)):
        return error_result(task, "could not write the grading files into the sandbox")
    run = sb.exec_once(f"bash {WORK}/drive.sh", timeout=cfg.timeout, workdir=image.workdir)
    if run.exit_code == APPLY_FAILED_EXIT:
        return error_result(
            task,
            f"{APPLY_PATCH_FAIL}: " + _last_line(run.output),
            kind="patch_apply_failed",
            apply_output=run.output,
        )
    if run.infra_error and not run.timed_out:
        return error_result(task, f"test run failed: {run.infra_error}", apply_output=run.output)
    output = _read(sb, TEST_OUTPUT)
    if output is None:
        # The eval script never wrote its log: the container went away under it.
        return error_result(task, "the test run left no output", apply_output=run.output)
    log_text = output.decode("utf-8", errors="replace")
    strategy = (_read(sb, STRATEGY_FILE) or b"").decode(errors="replace").strip() or None
    if run.timed_out or run.infra_error:
        return error_result(
            task,
            f"Test timed out after {cfg.timeout:g} seconds.",
            kind="timeout",
            log=log_text + f"\n\nTimeout error: {cfg.timeout:g} seconds exceeded.",
            apply_output=run.output,
        )
    if TEST_PATCH_FAILED in log_text.replace(f"echo '{TEST_PATCH_FAILED}'", ""):
        return error_result(
            task,
            "the test patch did not apply (an environment problem, not the candidate's)",
            kind="test_patch_failed",
            log=log_text,
            apply_output=run.output,
        )
    # With no candidate (the test patch alone) the log is still graded: "" is the
    # official way to say "a prediction that changes nothing".
    return grade_log(task, patch or "", log_text, apply_output=run.output, apply_strategy=strategy)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
