"""Grading a candidate patch in a fresh sandbox, the way the official harness does.

1. A fresh container from the task's instance image (no network).
2. The candidate patch is applied with ``git apply --verbose``, then ``git apply
   --verbose --reject``, then ``patch --batch --fuzz=5 -p1`` (the official order); when
   none applies, the patch is graded "not applied".
3. The eval script: the spec's eval commands, the test files reset to the base commit,
   the test patch applied, the test command between the official markers, the test files
   reset again. Its output goes to a file (not through the capped command output), so a
   long test log is graded whole.
4. The log is graded by the pure functions in ``grading``.

A hanging test run is killed at the timeout, the container destroyed, and graded failed.
Every failure of the machinery becomes a GradeResult with ``error`` set; nothing raises.
"""

from __future__ import annotations

import io
import logging
import re
import shlex
import tarfile
import time
from typing import TYPE_CHECKING

from swebench.harness.constants import END_TEST_OUTPUT, START_TEST_OUTPUT

from swescale.sandbox import DockerSandbox
from swescale.swebench.config import GradingConfig
from swescale.swebench.grading import GradeResult, error_result, grade_log
from swescale.swebench.images import InstanceImage
from swescale.swebench.specs import (
    eval_commands,
    is_mini,
    official_spec,
    task_test_command,
    task_test_files,
)
from swescale.types import Task

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

# The official harness's order of attempts (swebench.harness.run_evaluation.GIT_APPLY_CMDS).
APPLY_COMMANDS = (
    "git apply --verbose",
    "git apply --verbose --reject",
    "patch --batch --fuzz=5 -p1 -i",
)
WORK_NAME = "swescale-grade"
WORK = f"/tmp/{WORK_NAME}"
PATCH_FILE = f"{WORK}/patch.diff"
TEST_PATCH_FILE = f"{WORK}/test.patch"
EVAL_SCRIPT = f"{WORK}/eval.sh"
TEST_OUTPUT = f"{WORK}/test_output.txt"


def _reinstall_command(task: Task) -> str | None:
    """The spec's install step, rerun before the tests as the official eval script does
    (a candidate may change compiled code or entry points). Offline, so no build isolation
    and no dependency resolution: the image already has both."""
    if is_mini(task):
        return None
    install = str(official_spec(task).get("install", ""))
    if re.match(r"(python -m )?pip install", install):
        return install + " --no-build-isolation --no-deps"
    return install or None


def official_eval_script(task: Task) -> str:
    """The official eval script (for the official images: /testbed, conda env "testbed"):
    the row's own ``eval_script`` (v5 datasets), else the one swebench 4.1.0 writes."""
    if isinstance(task.extra.get("eval_script"), str) and task.extra["eval_script"]:
        return task.extra["eval_script"]
    from swebench.harness.test_spec.python import make_eval_script_list_py

    instance = {"repo": task.repo, "version": task.version, "test_patch": task.test_patch or ""}
    lines = make_eval_script_list_py(
        instance,
        official_spec(task),
        "testbed",
        "/testbed",
        task.base_commit,
        task.test_patch or "",
    )
    return "\n".join(["#!/bin/bash", "set -uxo pipefail", *lines]) + "\n"


def eval_script(task: Task, workdir: str = "/repo", official: bool = False) -> str:
    """The bash script that applies the test patch and runs the tests (with ``set -x``, so
    the markers appear in the log as in the official logs). Local images: the same steps
    as the official script, with the venv instead of conda and the test patch from a file."""
    if official:
        return official_eval_script(task)
    files = " ".join(shlex.quote(f) for f in task_test_files(task))
    lines = ["#!/bin/bash", "set -uxo pipefail", f"cd {workdir}", *eval_commands(task)]
    reinstall = _reinstall_command(task)
    if reinstall:
        lines.append(reinstall)
    if files:
        lines.append(f"git checkout {task.base_commit} {files}")
    if task.test_patch:
        lines.append(f"git apply -v {TEST_PATCH_FILE}")
    lines += [f": '{START_TEST_OUTPUT}'", task_test_command(task), f": '{END_TEST_OUTPUT}'"]
    if files:
        lines.append(f"git checkout {task.base_commit} {files}")
    return "\n".join(lines) + "\n"


def _patch_bytes(patch: str) -> bytes:
    # A diff missing its final newline is "corrupt" to git apply; the content is the same.
    return (patch if patch.endswith("\n") else patch + "\n").encode(
        "utf-8", errors="surrogateescape"
    )


APPLY_FAILED_EXIT = 97
APPLY_LOG = f"{WORK}/apply.log"


def driver_script(has_patch: bool) -> str:
    """Applies the candidate (the official attempts, in order) and runs the eval script,
    all in one process: each round trip to the engine costs more than the commands."""
    attempts = " ".join(shlex.quote(c) for c in APPLY_COMMANDS)
    lines = ["#!/bin/bash", "set -u", f": > {APPLY_LOG}"]
    if has_patch:
        lines += [
            "applied=0",
            f"for attempt in {attempts}; do",
            f'  echo "$ $attempt" >> {APPLY_LOG}',
            f"  if $attempt {PATCH_FILE} >> {APPLY_LOG} 2>&1; then applied=1; break; fi",
            "done",
            f'if [ "$applied" = 0 ]; then cat {APPLY_LOG}; exit {APPLY_FAILED_EXIT}; fi',
        ]
    lines += [f"cat {APPLY_LOG}", f"exec bash {EVAL_SCRIPT} > {TEST_OUTPUT} 2>&1"]
    return "\n".join(lines) + "\n"


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _read(sb: DockerSandbox, path: str) -> bytes:
    """A file from the container in one call (the path is ours, not a user's)."""
    import docker.errors

    try:
        stream, _ = sb.container.get_archive(path)
    except docker.errors.NotFound:
        return b""
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
) -> GradeResult:
    """Grade ``patch`` on ``task`` in a fresh sandbox from ``image``. Never raises.

    ``patch`` None is the official "no patch" (nothing is run); an empty patch runs the
    tests on the base commit with the test patch alone. Without ``image`` the task's
    instance image is found or built with default image settings (many candidates:
    use ``evaluate.Grader``, which keeps the image and the repositories at hand)."""
    start = time.monotonic()
    if patch is None:
        return grade_log(task, None, "", seconds=0.0)
    if image is None:
        try:
            image = _default_image(client, task, cfg)
        except Exception as exc:  # builds and clones fail in many ways; all end here
            return error_result(task, f"no instance image: {exc}", time.monotonic() - start)
    sandbox_cfg = image.sandbox_config(
        memory=cfg.memory, network=False, command_timeout=cfg.timeout
    )
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
    try:
        with sb:
            result = _grade_in(sb, task, patch, cfg, image, start)
    except Exception as exc:
        log.exception("grading %s failed", task.id)
        return error_result(
            task,
            f"grading failed: {exc.__class__.__name__}: {exc}",
            time.monotonic() - start,
            image.tag,
        )
    result.image = image.tag
    result.notes = list(image.notes) + result.notes
    result.seconds = time.monotonic() - start
    return result


def _default_image(client: docker.DockerClient, task: Task, cfg: GradingConfig) -> InstanceImage:
    from swescale.sandbox import ImagesConfig
    from swescale.swebench.images import instance_image
    from swescale.swebench.repos import repo_source_for

    images = ImagesConfig()
    repos = repo_source_for([task], images.cache_dir)
    return instance_image(client, task, images=images, grading=cfg, repos=repos)


def _grade_in(
    sb: DockerSandbox,
    task: Task,
    patch: str,
    cfg: GradingConfig,
    image: InstanceImage,
    start: float,
) -> GradeResult:
    has_patch = bool(patch.strip())
    files = {
        "eval.sh": eval_script(task, image.workdir, official=image.official).encode(),
        "drive.sh": driver_script(has_patch).encode(),
    }
    if has_patch:
        files["patch.diff"] = _patch_bytes(patch)
    if task.test_patch:
        files["test.patch"] = _patch_bytes(task.test_patch)
    # Extracting at /tmp makes the work directory (the engine creates missing parents).
    if not sb.container.put_archive(
        "/tmp", _tar({f"{WORK_NAME}/{k}": v for k, v in files.items()})
    ):
        return error_result(task, "could not write the grading files into the sandbox")
    run = sb.exec_once(f"bash {WORK}/drive.sh", timeout=cfg.timeout, workdir=image.workdir)
    if run.exit_code == APPLY_FAILED_EXIT:
        return grade_log(task, patch, "", apply_failed=True, apply_output=run.output)
    if run.infra_error and not run.timed_out:
        return error_result(task, f"test run failed: {run.infra_error}")
    timed_out = run.timed_out or bool(run.infra_error)
    result = grade_log(
        task, patch, _read(sb, TEST_OUTPUT), timed_out=timed_out, apply_output=run.output
    )
    if timed_out:
        result.notes.append(f"tests timed out after {cfg.timeout:g}s; container killed")
    return result
