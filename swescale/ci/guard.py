"""Guard rails on a selected patch: paths the bot must not touch, how many files it may
change. Pure: a patch text and the repository config in, the list of violations out."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from swescale.ci.repo_config import RepoConfig
from swescale.patches import parse_patch

# Never proposed whatever the repository says: the bot's own rules, git internals, and
# workflows (a token that may push code must not be able to change what CI runs).
ALWAYS_FORBIDDEN = (".swescale.yaml", ".git/**", ".github/workflows/**")


def touched_paths(patch: str) -> list[str]:
    """Every path a patch touches, old names of renames and deletions included (moving a
    protected file away is touching it)."""
    parsed = parse_patch(patch)
    paths: set[str] = set(parsed.paths)
    for file in parsed.files:
        for name in (getattr(file, "old_path", None), getattr(file, "new_path", None)):
            if isinstance(name, str) and name and name != "/dev/null":
                paths.add(name)
    return sorted(paths)


def path_matches(path: str, pattern: str) -> bool:
    """Glob match where ``dir/**`` covers everything under dir, a bare name or glob
    (``vendor``, ``*.lock``) matches a file or folder at any depth, and a path with a
    slash matches itself or what is under it."""
    pattern = pattern.strip().lstrip("/")
    if not pattern:
        return False
    if pattern.endswith("/**"):
        folder = pattern[:-3].rstrip("/")
        return path == folder or path.startswith(folder + "/") or fnmatchcase(path, pattern)
    if "/" not in pattern:
        # As in .gitignore: a bare name matches a file or folder at any depth.
        return any(fnmatchcase(part, pattern) for part in PurePosixPath(path).parts)
    return fnmatchcase(path, pattern) or path.startswith(pattern.rstrip("/") + "/")


def violations(patch: str, repo_cfg: RepoConfig) -> list[str]:
    """Why the patch may not be proposed; empty when it may."""
    if not patch.strip():
        return ["the patch is empty"]
    paths = touched_paths(patch)
    if not paths:
        return ["the patch touches no file"]
    found = []
    for path in paths:
        patterns = [*ALWAYS_FORBIDDEN, *repo_cfg.forbidden_paths]
        hits = [p for p in patterns if path_matches(path, p)]
        if hits:
            found.append(f"touches {path} (forbidden by {hits[0]!r})")
    changed = len(parse_patch(patch).paths)
    limit = repo_cfg.max_files_changed
    if limit and changed > limit:
        found.append(f"changes {changed} files (at most {limit} allowed)")
    return found
