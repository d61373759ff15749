"""Patches: one way to apply them, text that carries their bytes exactly, and what their
files are. The bottom layer: nothing here imports from swescale but ``swescale.types``.

- ``apply``: the official apply attempts (swebench 5.x), as bash lines for a script
  (grading's driver) and as ``apply_patch`` through a sandbox (verifiers, the CI bot);
- ``exact``: a repository state's bytes as patch text, with git binary patches for the
  files whose bytes are not UTF-8;
- ``paths``: which changes of a patch alter how the tests run (``changed_test_setup``).
"""

from swescale.patches.apply import (
    ALREADY_APPLIED,
    NOTHING_TO_APPLY,
    ApplyResult,
    LocalRunner,
    Runner,
    apply_commands,
    apply_lines,
    apply_patch,
    apply_script,
    is_clean,
    patch_bytes,
)
from swescale.patches.exact import ExactPatch, exact_patch, git_blob_id, needed_objects
from swescale.patches.paths import (
    changed_test_setup,
    patch_paths,
    runner_files,
    setup_change_note,
)

__all__ = [
    "ALREADY_APPLIED",
    "NOTHING_TO_APPLY",
    "ApplyResult",
    "ExactPatch",
    "LocalRunner",
    "Runner",
    "apply_commands",
    "apply_lines",
    "apply_patch",
    "apply_script",
    "changed_test_setup",
    "exact_patch",
    "git_blob_id",
    "is_clean",
    "needed_objects",
    "patch_bytes",
    "patch_paths",
    "runner_files",
    "setup_change_note",
]
