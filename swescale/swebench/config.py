"""Dataset and grading configuration."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

# A DNS name: labels of letters, digits and hyphens (no ports, no wildcards, no paths).
_HOST = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.I
)


class DatasetConfig(BaseModel):
    """``name``: "mini" (the bundled benchmark), a published name such as
    "princeton-nlp/SWE-bench_Verified" (or the short forms "verified", "lite", "full"),
    or a local parquet/JSON/JSONL path."""

    name: str = "mini"
    split: str = "test"
    instance_ids: list[str] = Field(default_factory=list)
    # re.search over instance ids.
    regex: str = ""
    # Python slice over the (filtered) tasks: "0:10", "5:", ":3", "::2".
    slice: str = ""
    # A malformed row is an error for the whole load when strict; otherwise it is
    # reported (logged, and returned by ``read_tasks``) and the row is skipped.
    strict: bool = False
    # Air-gapped repositories: a directory of git mirrors, ``owner__name.git`` or
    # ``owner/name`` (bare or not). When unset, repositories are cloned from ``repo_url``
    # into a bare mirror under ``repo_cache_dir`` (default: images cache dir / "repos").
    repos_dir: Path | None = None
    repo_cache_dir: Path | None = None
    repo_url: str = "https://github.com/{repo}.git"
    # 0 keeps the whole history up to the base commit (as the official images do);
    # N > 0 keeps only the last N commits (smaller images, `git log` shows less).
    history_depth: int = 0


class GradingConfig(BaseModel):
    workers: int = 2
    # The network of a grading container (see swescale.swebench.network): "auto" is
    # "bridge" with official images (as the official containers have) and "isolated"
    # with local builds (no egress, local stand-ins for public test services).
    network: Literal["auto", "none", "isolated", "bridge"] = "auto"
    # A package index for grading containers on the isolated network (gold patches that
    # add a dependency): "proxy" starts an allow-listed proxy for each grading run and
    # points pip at it (swescale.swebench.index_proxy); "off" keeps them offline.
    package_index: Literal["off", "proxy"] = "off"
    # Hosts the proxy tunnels to (port 443, exact names), and the index pip is given.
    package_index_hosts: list[str] = Field(
        default_factory=lambda: ["pypi.org", "files.pythonhosted.org"]
    )
    package_index_url: str = "https://pypi.org/simple"
    # Seconds for the test command of one grading run (the official default is 1800).
    timeout: float = 1800.0
    # Official prebuilt images. "{instance_key}" is the instance id lower-cased with
    # "__" replaced by "_1776_" (the official naming); "{instance_id}" and "{arch}" too.
    # A row's own ``image`` column (v5 datasets) wins over the pattern.
    official_image: str = "swebench/sweb.eval.{arch}.{instance_key}:latest"
    use_official_images: bool = False
    # When the official image cannot be pulled: build locally instead of failing.
    fallback_local_build: bool = True
    arch: str = "x86_64"
    # Where ``swescale eval`` keeps per-instance results, by run id.
    # Where `swescale eval` writes logs/run_evaluation/<run_id>/... and the run reports
    # (<model>.<run_id>.json): the working directory, as the official harness.
    eval_dir: Path = Path(".")
    # Seconds for building one instance image (install step included).
    build_timeout: float = 3600.0
    # Memory for grading containers; the sandbox default is small for big test suites.
    memory: str = "4g"
    # CPUs for a grading container: 0 is no limit, as the official containers have; a
    # spec's own ``nano_cpus`` (pylint: 2) wins. Tests that count CPUs from the cgroup
    # quota skip with fewer (pylint's multiprocessing tests need 2).
    cpus: float = 0.0
    # Debian suites we can base environments on, and the Python each ships.
    python_by_suite: dict[str, str] = Field(
        default_factory=lambda: {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}
    )

    @field_validator("package_index_hosts")
    @classmethod
    def _host_names(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not _HOST.fullmatch(host):
                raise ValueError(f"{host!r} is not a host name (e.g. pypi.org)")
        return hosts

    @model_validator(mode="after")
    def _index_on_an_allowed_host(self) -> GradingConfig:
        host = urlsplit(self.package_index_url).hostname or ""
        if self.package_index == "proxy" and host not in self.package_index_hosts:
            raise ValueError(
                f"package_index_url {self.package_index_url!r} is not on an allowed host "
                f"(package_index_hosts: {', '.join(self.package_index_hosts)})"
            )
        return self

    def network_mode(self, official_image: bool) -> str:
        """The network mode a grading run in an official or a local image gets."""
        if self.network != "auto":
            return self.network
        return "bridge" if official_image else "isolated"
