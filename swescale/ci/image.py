"""The instance image of the bot's repository: base image, a venv with the repository's
Python packages (environment layer, shared by every commit), then the repository at the
base commit with its install commands run (instance layer).

``swescale.swebench.images`` builds images from SWE-bench specs and the mini benchmark's
fixed recipe; a user's repository brings its own install commands, so its layers are
built here with the same ``build_layer`` and the same layout (/repo, venv at /opt/venv).
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import git

from swescale.ci.repo_config import RepoConfig
from swescale.sandbox import ImagesConfig, build_layer, content_tag, ensure_base_image
from swescale.swebench.images import VENV, VENV_ENV, InstanceImage

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

# Files the install step leaves in the work tree (build outputs, version files it writes)
# must not show up in every candidate's diff: untracked ones are excluded, changed tracked
# ones are marked unchanged.
HIDE_SETUP_CHANGES = (
    "cd /repo && git ls-files --others --exclude-standard --directory "
    "| sed 's|^|/|' >> .git/info/exclude && "
    "(git diff --name-only -z | xargs -0 -r git update-index --assume-unchanged)"
)


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.")[:limit] or "repo"


def env_commands(repo_cfg: RepoConfig) -> list[str]:
    commands = [f"python3 -m venv {VENV}"]
    if repo_cfg.python_packages:
        quoted = " ".join("'" + p.replace("'", "'\\''") + "'" for p in repo_cfg.python_packages)
        commands.append(f"{VENV}/bin/python -m pip install {quoted}")
    return commands


def instance_commands(repo_cfg: RepoConfig) -> list[str]:
    return [*(f"cd /repo && {c}" for c in repo_cfg.install), HIDE_SETUP_CHANGES]


def checkout_tar(repo_path: str | Path, commit: str, root: str = "repo") -> bytes:
    """The repository at ``commit`` as a tar archive under ``root``/: a one-commit shallow
    clone, so the commit keeps its sha (sandboxes diff against it) without the history."""
    with tempfile.TemporaryDirectory(prefix="swescale-ci-") as tmp:
        work = Path(tmp) / "repo"
        clone = git.Repo.init(work)
        source = Path(repo_path).resolve().as_uri()
        try:
            clone.git.fetch("--depth", "1", "--no-tags", source, commit)
        except git.GitCommandError:
            # Servers that refuse a sha in "want": take everything, then pick the commit.
            clone.git.fetch("--no-tags", source, "+refs/*:refs/remotes/source/*")
        clone.git.checkout("-q", "--detach", commit)
        (work / ".git" / "FETCH_HEAD").unlink(missing_ok=True)
        shutil.rmtree(work / ".git" / "refs" / "remotes", ignore_errors=True)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(work, arcname=root, filter=_root_owned)
        return buf.getvalue()


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def ci_instance_image(
    client: docker.DockerClient,
    repo: str,
    repo_path: str | Path,
    commit: str,
    repo_cfg: RepoConfig,
    images: ImagesConfig | None = None,
) -> InstanceImage:
    """The image sandboxes of ``repo`` at ``commit`` start from; built once per recipe
    (an unchanged recipe at the same commit is found by its tag)."""
    images = images or ImagesConfig()
    suite = repo_cfg.debian_suite
    base = ensure_base_image(
        client, images if images.suite == suite else images.model_copy(update={"suite": suite})
    )
    logs = images.cache_dir / "logs"
    env_cmds = env_commands(repo_cfg)
    env_tag = content_tag("swescale/ci-env", _slug(repo), base, env_cmds)
    build_layer(
        client,
        base,
        env_tag,
        env_cmds,
        env=VENV_ENV,
        network=True,
        pip_config=True,
        timeout=images.build_timeout,
        log_path=logs / f"{env_tag.replace('/', '_').replace(':', '_')}.log",
    )
    inst_cmds = instance_commands(repo_cfg)
    tag = content_tag("swescale/ci-instance", _slug(repo), env_tag, repo, commit, inst_cmds)
    from swescale.sandbox.images import image_ready

    if not image_ready(client, tag):
        log.info("building %s (%s at %s)", tag, repo, commit[:12])
        build_layer(
            client,
            env_tag,
            tag,
            inst_cmds,
            archives=[("/", checkout_tar(repo_path, commit))],
            env=VENV_ENV,
            workdir="/repo",
            network=True,
            pip_config=True,
            timeout=images.build_timeout,
            log_path=logs / f"{tag.replace('/', '_').replace(':', '_')}.log",
        )
    return InstanceImage(tag, workdir="/repo")
