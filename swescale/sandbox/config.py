"""Sandbox and image configuration."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

# The search path of base images. Sandboxes do not set PATH: the image's own (a venv, a
# conda env) must stay in force.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The only variables a sandbox sees besides the image's own: nothing from the host.
DEFAULT_ENV = {
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TERM": "dumb",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_NO_INPUT": "1",
    "TZ": "Etc/UTC",
}


class SandboxConfig(BaseModel):
    """Limits and isolation of one sandbox container."""

    workdir: str = "/repo"
    memory: str = "2g"
    pids_limit: int = 512
    cpus: float = 1.0
    network: bool = False
    # A Docker network to join instead (``network`` is then ignored): grading joins a
    # per-run internal network whose egress is dropped, with local stand-ins for the
    # public services some test suites call.
    network_name: str | None = None
    env: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ENV))
    # Commands see ``env`` (and a call's own variables) and nothing else: not the
    # variables the image declares (Docker cannot unset those; ``env -i`` does). Replay
    # uses it to show a command exactly the variables the recorded container had.
    exact_env: bool = False
    command_timeout: float = 120.0
    # Output kept per command: head and tail halves, the middle marked as cut.
    output_limit: int = 32_000
    # Paths outside the repository are refused by read_file/write_file unless listed.
    allowed_paths: list[str] = Field(default_factory=lambda: ["/tmp"])
    pool_size: int = 0
    # Keep the repository state current from file-system events in a resident process
    # (swescale/sandbox/state_watcher.py): a snapshot then costs about a round trip.
    # Off, or wherever it cannot run, snapshots take the shell function (same bytes).
    state_watcher: bool = True
    startup_timeout: float = 60.0


class ImagesConfig(BaseModel):
    """How base images are obtained: pulled where a registry answers, else built."""

    suite: str = "bookworm"
    # Empty means: read the mirror from the host's apt sources.
    mirror: str = ""
    # A registry image to pull instead of building (e.g. "python:3.11-slim"); tried first.
    pull: str = ""
    cache_dir: Path = Path.home() / ".cache" / "swescale"
    cache_limit_gb: float = 60.0
    build_timeout: float = 1800.0
    extra_packages: list[str] = Field(default_factory=list)
    # A registry ("host:port[/prefix]", no scheme) that instance images are pulled from
    # (``swescale images push`` publishes them there): official images are looked up as
    # <registry>/<official name>, local builds as <registry>/<content tag> before building.
    # Plain HTTP works for loopback addresses; other hosts need TLS or the engine's
    # ``insecure-registries``.
    registry: str = ""
    # Pulls: attempts per image (transient failures only: a missing image fails at once),
    # and the most pulls this process starts per period ("N/second|minute|hour").
    pull_retries: int = Field(default=4, ge=1)
    pull_rate: str = "30/minute"
    # Pulled instance images this host keeps (0: no cap): past it, the least recently used
    # are removed, never one a container or a running command uses.
    keep_pulled: int = Field(default=0, ge=0)

    @field_validator("registry")
    @classmethod
    def _registry_address(cls, value: str) -> str:
        from swescale.sandbox.registry import check_registry

        return check_registry(value)

    @field_validator("pull_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        from swescale.sandbox.registry import check_rate

        return check_rate(value)
