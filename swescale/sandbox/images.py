"""Images without a registry: a Debian root filesystem from ``debootstrap`` (from the mirror
the host's apt sources name), imported into Docker, plus layers committed from containers.

Every tag carries a hash of its recipe, so an unchanged recipe is never rebuilt and a
changed one never reuses a stale image.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import docker.errors

from swescale.sandbox.base import SandboxError
from swescale.sandbox.build_events import BuildEvent, report
from swescale.sandbox.config import BASE_PATH, DEFAULT_ENV, ImagesConfig
from swescale.sandbox.engine import LABEL
from swescale.sandbox.image_cache import ImageCache
from swescale.sandbox.owner import owned_labels

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

RECIPE_VERSION = "1"
# What the official base image installs (swebench 4.1.0 `dockerfiles/python.py`: wget for
# spec steps that download, locales for `locale-gen`, tzdata, the ffi/tiff headers some
# builds need), plus Python's venv and our own tools.
BASE_PACKAGES = [
    "bash",
    "ca-certificates",
    "git",
    "patch",
    "procps",
    "python3",
    "python3-venv",
    "python3-pip",
    "python3-dev",
    "build-essential",
    "less",
    "file",
    "curl",
    "wget",
    "jq",
    "locales",
    "locales-all",
    "tzdata",
    "libffi-dev",
    "libtiff-dev",
]
APT_SOURCES = ["/etc/apt/sources.list", "/etc/apt/sources.list.d"]
# Files the build of a layer may need from the host, removed before the layer is committed.
_BUILD_DIR = "/tmp/.swescale-build"


class ImageBuildError(SandboxError):
    """A build step failed; the message carries the tail of its log and the log's path."""


def content_tag(repository: str, label: str, *parts: object) -> str:
    """``repository:label-<hash of parts>``: the tag changes exactly when the recipe does."""
    digest = hashlib.sha256(
        json.dumps([RECIPE_VERSION, *parts], sort_keys=True, default=str).encode()
    )
    return f"{repository}:{label}-{digest.hexdigest()[:12]}"


# ---------------------------------------------------------------- the apt mirror
def _sources_entries(paths: Iterable[str]) -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of every ``deb`` entry in one-line and deb822 files."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(x for x in p.iterdir() if x.suffix in (".list", ".sources"))
        elif p.is_file():
            files.append(p)
    entries = []
    for file in files:
        text = file.read_text(errors="replace")
        if file.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.strip().startswith("#") or ":" not in line:
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if (
                    "deb" in fields.get("types", "").split()
                    and fields.get("enabled", "yes") != "no"
                ):
                    for uri in fields.get("uris", "").split():
                        entries.append(
                            (
                                uri,
                                fields.get("suites", "").split(),
                                fields.get("components", "").split(),
                            )
                        )
        else:
            for line in text.splitlines():
                # Options such as "[arch=amd64 signed-by=...]" may hold spaces: drop them whole.
                words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]], words[3:]))
    return entries


def host_apt_mirror(paths: Iterable[str] = APT_SOURCES) -> str:
    """The Debian archive the host's apt sources use (not its security or updates suites)."""
    for uri, suites, components in _sources_entries(paths):
        plain = [s for s in suites if "-" not in s and "/" not in s]
        if plain and "main" in components and "security" not in uri:
            return uri.rstrip("/")
    raise SandboxError(
        "no Debian archive found in the host's apt sources "
        f"({', '.join(paths)}); set images.mirror in the config"
    )


# ---------------------------------------------------------------- building
def build_rootfs_image(client: docker.DockerClient, suite: str, mirror: str, log_path: Path) -> str:
    """``debootstrap --variant=minbase`` into a temp dir, then ``docker import`` it."""
    tag = content_tag("swescale/rootfs", suite, suite, mirror)
    if image_exists(client, tag):
        return tag
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="swescale-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            "--include=ca-certificates",
            suite,
            str(root),
            mirror,
        ]
        _run_logged(cmd, log_path, what=f"debootstrap {suite}")
        tar_path = Path(tmp) / "rootfs.tar"
        _run_logged(
            ["tar", "-C", str(root), "-cf", str(tar_path), "."], log_path, what="tar rootfs"
        )
        repo, _, label = tag.partition(":")
        client.api.import_image_from_file(
            str(tar_path), repository=repo, tag=label, changes=[f"LABEL {LABEL}=1"]
        )
    return tag


def _run_logged(cmd: list[str], log_path: Path, what: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n".encode())
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise ImageBuildError(
            f"{what} failed (exit {proc.returncode}):\n{_tail(log_path)}\nlog: {log_path}"
        )


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def host_pip_files() -> tuple[dict[str, bytes], dict[str, str]]:
    """The host's pip configuration and CA bundle, as files and environment for a build.

    Only for building: they are removed before a layer is committed, and sandboxes at agent
    time never see them.
    """
    files: dict[str, bytes] = {}
    env: dict[str, str] = {}
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    configs = [
        os.environ.get("PIP_CONFIG_FILE", ""),
        "/etc/pip.conf",
        str(Path.home() / ".config/pip/pip.conf"),
        str(Path.home() / ".pip/pip.conf"),
    ]
    for conf in configs:
        if conf and Path(conf).is_file():
            files[f"{_BUILD_DIR}/pip.conf"] = Path(conf).read_bytes()
            env["PIP_CONFIG_FILE"] = f"{_BUILD_DIR}/pip.conf"
            break
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        bundle = os.environ.get(var, "")
        if bundle and Path(bundle).is_file():
            break
    else:
        bundle = "/etc/ssl/certs/ca-certificates.crt"
    if Path(bundle).is_file():
        files[f"{_BUILD_DIR}/ca.crt"] = Path(bundle).read_bytes()
        for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "GIT_SSL_CAINFO"):
            env[var] = f"{_BUILD_DIR}/ca.crt"
    return files, env


def _tar_of_files(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_layer(
    client: docker.DockerClient,
    base: str,
    tag: str,
    commands: list[str],
    *,
    archives: list[tuple[str, bytes]] | None = None,
    files: dict[str, bytes] | None = None,
    env: dict[str, str] | None = None,
    workdir: str | None = None,
    network: bool = True,
    pip_config: bool = False,
    timeout: float = 1800.0,
    log_path: Path | None = None,
    cache: ImageCache | None = None,
) -> str:
    """Run ``commands`` in a container from ``base`` and commit the result as ``tag``.

    Idempotent: an existing ``tag`` is returned at once, so callers put a content hash in
    the tag (see :func:`content_tag`). Build-only files (pip config, CA bundle) live under
    a temp dir that is deleted before the commit, so no layer carries them.
    """
    if image_ready(client, tag):
        if cache:
            cache.touch(tag)
        return tag
    started = time.monotonic()
    steps = len(commands) + (1 if workdir else 0)
    report(BuildEvent("started", tag, steps=steps))
    try:
        _build(
            client,
            base,
            tag,
            commands,
            archives,
            files,
            env,
            workdir,
            network,
            pip_config,
            timeout,
            log_path,
            cache,
            steps,
        )
    except BaseException:
        report(BuildEvent("failed", tag, steps=steps, seconds=time.monotonic() - started))
        raise
    report(BuildEvent("finished", tag, steps=steps, seconds=time.monotonic() - started))
    return tag


def _build(
    client: docker.DockerClient,
    base: str,
    tag: str,
    commands: list[str],
    archives: list[tuple[str, bytes]] | None,
    files: dict[str, bytes] | None,
    env: dict[str, str] | None,
    workdir: str | None,
    network: bool,
    pip_config: bool,
    timeout: float,
    log_path: Path | None,
    cache: ImageCache | None,
    steps: int,
) -> None:
    log_path = log_path or (
        ImagesConfig().cache_dir / "logs" / f"{tag.replace('/', '_').replace(':', '_')}.log"
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    image_env = {**DEFAULT_ENV, **(env or {})}
    build_files, build_env = host_pip_files() if pip_config else ({}, {})
    container = client.containers.run(
        base,
        command=["sleep", "infinity"],
        detach=True,
        init=True,
        labels=owned_labels({"build": tag}),
        environment=image_env,
        network_mode="bridge" if network else "none",
    )
    try:
        for path, data in archives or []:
            if not container.put_archive(path, data):
                raise ImageBuildError(f"could not extract an archive at {path} for {tag}")
        extra = {**(files or {}), **build_files}
        if extra:
            container.put_archive("/", _tar_of_files(extra))
        if workdir:
            report(BuildEvent("step", tag, 1, steps, f"mkdir -p {workdir}"))
            _exec_logged(container, f"mkdir -p {workdir}", image_env, None, 60, log_path, tag)
        for number, command in enumerate(commands, steps - len(commands) + 1):
            report(BuildEvent("step", tag, number, steps, command))
            _exec_logged(
                container, command, {**image_env, **build_env}, workdir, timeout, log_path, tag
            )
        _exec_logged(container, f"rm -rf {_BUILD_DIR}", image_env, None, 60, log_path, tag)
        repo, _, label = tag.rpartition(":")
        changes = [f"ENV {k}={json.dumps(v)}" for k, v in image_env.items()]
        changes += [f"LABEL {LABEL}=1", 'CMD ["sleep", "infinity"]']
        if workdir:
            changes.append(f"WORKDIR {workdir}")
        has_repo = workdir is not None and _is_git_work_tree(container, workdir)
        if has_repo:
            layer = container.commit(changes=changes)
        else:
            container.commit(repository=repo, tag=label, changes=changes)
    finally:
        container.remove(force=True)
    if has_repo:
        assert workdir is not None
        _commit_refreshed_index(client, layer.id, repo, label, workdir, changes, log_path, tag)
    if cache:
        cache.touch(tag)
        removed = cache.enforce(client, keep={tag, base})
        if removed:
            log.info("image cache over its limit: removed %s", ", ".join(removed))


def _is_git_work_tree(container, workdir: str) -> bool:
    probe = container.exec_run(["test", "-f", f"{workdir}/.git/index"])
    return probe.exit_code == 0


def _commit_refreshed_index(
    client: docker.DockerClient,
    layer: str,
    repo: str,
    label: str,
    workdir: str,
    changes: list[str],
    log_path: Path,
    tag: str,
) -> None:
    """Commit ``layer`` as ``repo:label`` with one more layer: the git index refreshed from
    a container in which the repository's files already sit in a lower layer.

    Why: git tells an unchanged file by the stat data its index recorded. Files written
    in a build container get a new inode and ctime when the layer is stored, so an index
    written in the same layer never matches, and the first ``git status``, ``git diff`` or
    snapshot in every sandbox rereads every file (seconds on a large repository). Lower
    layers keep their inodes and ctimes in every container of the image on this host, so
    an index refreshed over them stays valid there.
    """
    container = client.containers.run(
        layer,
        command=["sleep", "infinity"],
        detach=True,
        labels=owned_labels({"build": tag}),
        network_mode="none",
    )
    try:
        _exec_logged(
            container,
            "git update-index -q --refresh >/dev/null || true",
            {},
            workdir,
            600,
            log_path,
            tag,
        )
        container.commit(repository=repo, tag=label, changes=changes)
    finally:
        container.remove(force=True)


def _exec_logged(
    container,
    command: str,
    env: dict[str, str],
    workdir: str | None,
    timeout: float,
    log_path: Path,
    tag: str,
) -> None:
    argv = ["timeout", "-k", "10", str(int(timeout)), "bash", "-c", command]
    with open(log_path, "ab") as fh:
        fh.write(f"\n$ {command}\n".encode())
        exec_id = container.client.api.exec_create(
            container.id, argv, environment=env, workdir=workdir or "/"
        )["Id"]
        for chunk in container.client.api.exec_start(exec_id, stream=True):
            fh.write(chunk)
    code = container.client.api.exec_inspect(exec_id).get("ExitCode")
    if code != 0:
        raise ImageBuildError(
            f"building {tag}: `{command[:200]}` failed (exit {code}):\n"
            f"{_tail(log_path)}\nlog: {log_path}"
        )


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def image_ready(client: docker.DockerClient, tag: str) -> bool:
    """``image_exists``, reported to the build listeners as found when it does (a build
    display counts the images a command needed that were already there)."""
    if image_exists(client, tag):
        report(BuildEvent("found", tag))
        return True
    return False


def base_image_tag(cfg: ImagesConfig) -> str:
    source = cfg.pull or (cfg.mirror or host_apt_mirror())
    return content_tag(
        "swescale/base",
        cfg.suite,
        cfg.suite,
        source,
        sorted(BASE_PACKAGES + cfg.extra_packages),
        _BASE_SETUP,
    )


_BASE_SETUP = [
    "apt-get update -qq",
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {packages}",
    "apt-get clean && rm -rf /var/lib/apt/lists/*",
    "git config --system user.name swescale && git config --system user.email swescale@localhost"
    " && git config --system init.defaultBranch main && git config --system advice.detachedHead false"
    " && git config --system --add safe.directory '*'",
]


def ensure_base_image(
    client: docker.DockerClient,
    cfg: ImagesConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """The base image for ``cfg.suite``: found by its content tag, else built (pulling
    ``cfg.pull`` as the root filesystem when a registry is reachable, else debootstrap)."""
    cfg = cfg or ImagesConfig()
    say = progress or (lambda msg: log.info("%s", msg))
    tag = base_image_tag(cfg)
    cache = ImageCache(cfg.cache_dir, cfg.cache_limit_gb)
    if image_exists(client, tag):
        cache.touch(tag)
        return tag
    log_path = cfg.cache_dir / "logs" / f"base-{cfg.suite}.log"
    if cfg.pull:
        say(f"pulling {cfg.pull}")
        try:
            client.images.pull(cfg.pull)
        except docker.errors.DockerException as exc:
            raise ImageBuildError(
                f"could not pull {cfg.pull!r}: {exc}; unset images.pull to build locally"
            ) from exc
        rootfs = cfg.pull
    else:
        mirror = cfg.mirror or host_apt_mirror()
        say(f"building a Debian {cfg.suite} root filesystem with debootstrap (a minute or two)")
        rootfs = build_rootfs_image(client, cfg.suite, mirror, log_path)
    packages = " ".join(sorted(BASE_PACKAGES + cfg.extra_packages))
    say(f"installing git, Python and build tools into {tag}")
    steps = [s.replace("{packages}", packages) for s in _BASE_SETUP]
    return build_layer(
        client,
        rootfs,
        tag,
        steps,
        env={"PATH": BASE_PATH},
        network=True,
        timeout=cfg.build_timeout,
        log_path=log_path,
        cache=cache,
    )
