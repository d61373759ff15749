"""How the bot installs and tests a repository: its ``.swescale.yaml`` at the commit,
else what the repository's own files say. The reading itself is the "inferred" spec
provider's (``swescale.swebench.specs.infer`` and ``.inferred``); this module applies it
to the bot's local checkout."""

from __future__ import annotations

from pathlib import Path

import git

from swescale.swebench.specs.infer import choose_python, infer_repo_config
from swescale.swebench.specs.inferred import repo_config_at
from swescale.swebench.specs.repo_config import RepoConfig


def load_repo_config(repo_path: str | Path, commit: str = "HEAD") -> RepoConfig:
    """The repository's ``.swescale.yaml`` at ``commit``; without one, what its own files
    say about installing and testing it, with packages as of the commit's date."""
    repo = git.Repo(repo_path)

    def read(path: str) -> str | None:
        try:
            return repo.git.show(f"{commit}:{path}")
        except git.GitCommandError:
            return None

    try:
        day = repo.git.show("-s", "--format=%cs", commit).strip() or None
    except git.GitCommandError:
        day = None
    return repo_config_at(read, day, commit[:12])


__all__ = ["choose_python", "infer_repo_config", "load_repo_config"]
