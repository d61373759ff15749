"""Patches: parsing, normalized keys and votes, what a patch's files are, one way to apply
them, and text that carries their bytes exactly. The bottom layer: nothing here imports
from swescale but ``swescale.types``; verifiers, selection, grading, replay and the CI bot
all take patches from here.

- ``parse``: unified diffs as real systems write them (``parse_patch``, ``changed_paths``);
- ``keys``: the normalized form and key of a patch, candidate ids, votes;
- ``paths``: what a changed file is (source, test, reproduction script, packaging or
  prose) and which changes alter how the tests run (``changed_test_setup``);
- ``apply``: the official apply attempts (swebench 5.x), as bash lines for a script
  (grading's driver) and as ``apply_patch`` through a sandbox (verifiers, the CI bot);
- ``exact``: a repository state's bytes as patch text, with git binary patches for the
  files whose bytes are not UTF-8.
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
from swescale.patches.keys import (
    CANDIDATE_ID_LENGTH,
    candidate_id,
    normalize_line,
    normalized_form,
    patch_key,
    votes,
)
from swescale.patches.parse import (
    FilePatch,
    Hunk,
    ParsedPatch,
    changed_paths,
    files_of,
    new_file_content,
    parse_patch,
    restrict_to_files,
)
from swescale.patches.paths import (
    changed_test_setup,
    changes_source,
    harvestable_paths,
    is_packaging_or_prose,
    is_script,
    is_test_module,
    looks_like_test,
    patch_paths,
    runner_files,
    setup_change_note,
)

__all__ = [
    "ALREADY_APPLIED",
    "CANDIDATE_ID_LENGTH",
    "NOTHING_TO_APPLY",
    "ApplyResult",
    "ExactPatch",
    "FilePatch",
    "Hunk",
    "LocalRunner",
    "ParsedPatch",
    "Runner",
    "apply_commands",
    "apply_lines",
    "apply_patch",
    "apply_script",
    "candidate_id",
    "changed_paths",
    "changed_test_setup",
    "changes_source",
    "exact_patch",
    "files_of",
    "git_blob_id",
    "harvestable_paths",
    "is_clean",
    "is_packaging_or_prose",
    "is_script",
    "is_test_module",
    "looks_like_test",
    "needed_objects",
    "new_file_content",
    "normalize_line",
    "normalized_form",
    "parse_patch",
    "patch_bytes",
    "patch_key",
    "patch_paths",
    "restrict_to_files",
    "runner_files",
    "setup_change_note",
    "votes",
]
