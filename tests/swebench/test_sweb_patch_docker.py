"""Grading what a patch does besides the fix: a changed test set-up (SWE-bench #437) is
graded as the official harness grades it and the result says so; a file whose bytes are
not UTF-8 travels as a git binary patch that the first official attempt applies."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from swescale.patches import exact_patch, needed_objects
from swescale.patches.exact import parse_cat_file_batch
from swescale.sandbox import ImagesConfig
from swescale.swebench.config import DatasetConfig, GradingConfig
from swescale.swebench.evaluate import evaluate
from swescale.swebench.predictions import append_prediction
from swescale.swebench.run import grade_patch

pytestmark = pytest.mark.docker
RUN = f"pytest-patches-{uuid.uuid4().hex[:8]}"

# Any failure reported as a pass: a no-op "fix" that the official harness resolves.
FAILURES_PASS = """diff --git a/tests/conftest.py b/tests/conftest.py
new file mode 100644
--- /dev/null
+++ b/tests/conftest.py
@@ -0,0 +1,8 @@
+import pytest
+
+
+@pytest.hookimpl(hookwrapper=True)
+def pytest_runtest_makereport(item, call):
+    report = (yield).get_result()
+    if report.failed:
+        report.outcome = "passed"
"""


@pytest.fixture(scope="module")
def mini():
    from swescale.swebench.mini import mini_tasks

    return {t.id: t for t in mini_tasks()}


def test_a_changed_test_setup_is_graded_as_officially_and_said(
    docker_client, base_image, mini, tmp_path: Path
) -> None:
    task = mini["swescale-mini__confkit-1"]
    preds = tmp_path / "preds.jsonl"
    append_prediction(preds, task.id, FAILURES_PASS, "hook")
    append_prediction(preds, task.id, task.gold_patch, "gold")
    root = tmp_path / "ev"
    out = evaluate(
        preds,
        DatasetConfig(name="mini", instance_ids=[task.id]),
        GradingConfig(eval_dir=root, workers=1, timeout=120),
        ImagesConfig(),
        RUN,
        docker_client,
    )
    hook, gold = out.reports["hook"], out.reports["gold"]
    # The verdict is the official one: the hook turned the failures into passes.
    assert hook["resolved_ids"] == [task.id] and gold["resolved_ids"] == [task.id]
    assert hook["test_setup_changed"] == {task.id: ["tests/conftest.py"]}
    assert gold["test_setup_changed"] == {}
    folder = root / "logs" / "run_evaluation" / RUN / "hook" / task.id
    result = json.loads((folder / "result.json").read_text())
    assert result["test_setup_changed"] == ["tests/conftest.py"]
    assert any("changes the test set-up (tests/conftest.py)" in n for n in result["notes"])
    assert "changes the test set-up" in (folder / "run_instance.log").read_text()
    # The official report.json keeps the official keys only.
    assert "test_setup_changed" not in json.loads((folder / "report.json").read_text())[task.id]


def _latin1_file_patch(tmp_path: Path) -> str:
    """A new file with bytes that are not UTF-8, as the sandbox's diff() writes it."""
    repo = tmp_path / "latin"
    repo.mkdir()
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "latin.index")}

    def git(*args: str, data: bytes = b"") -> bytes:
        done = subprocess.run(
            ["git", *args], cwd=repo, env=env, input=data, capture_output=True, check=True
        )
        return done.stdout

    git("init", "-q")
    (repo / "confkit").mkdir()
    (repo / "confkit" / "latin1.py").write_bytes(b'MARK = "\xe9\xff"\n')
    git("add", "-A")
    blob = git("diff", "--cached", "--binary", "--full-index")
    wanted = needed_objects(blob)
    objects = parse_cat_file_batch(git("cat-file", "--batch", data="\n".join(wanted).encode()))
    return exact_patch(blob, objects).text


def test_grading_applies_the_binary_patch_of_a_latin1_file(
    docker_client, base_image, mini, tmp_path: Path
) -> None:
    task = mini["swescale-mini__confkit-1"]
    patch = task.gold_patch + _latin1_file_patch(tmp_path)
    assert "GIT binary patch" in patch
    result = grade_patch(
        docker_client, task, patch, GradingConfig(timeout=120), labels={"run": RUN}
    )
    assert result.status == "resolved", result.apply_output
    assert result.apply_strategy == "git apply --verbose"
    assert "Applied patch confkit/latin1.py cleanly." in result.apply_output
    assert result.test_setup_changed == []
