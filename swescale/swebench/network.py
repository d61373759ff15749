"""The network a grading container sees.

The official containers run on Docker's default bridge, with the internet. Offline we
cannot give them that, and "no network at all" changes outcomes: a test that expects a
connection to an unroutable address to *time out* gets an immediate "network
unreachable", and the old requests suites call the public httpbin service.

So a local grading run joins a network of its own (``isolated``): an internal Docker
network (no route out: egress is silently dropped, so connections time out as they do
towards an unroutable address; names outside it fail to resolve within a second), with a
local stand-in for the public service the repository's tests call (``STAND_INS``): the
``httpbin`` package served by gunicorn under the service's own name (``httpbin.org``, a
network alias) over HTTP and HTTPS, with a certificate from a test CA (``trustme``) that
the tests trust through ``REQUESTS_CA_BUNDLE``. The suites' defaults then reach it
unchanged. Each run gets a fresh network, removed with its containers afterwards, so no
two grading runs see each other.

Modes: ``none`` (no interface at all), ``isolated`` (the default for local images),
``bridge`` (the official containers' network; the default with official images).

With ``grading.package_index: proxy`` an isolated network also gets an allow-listed
package-index proxy (``swescale.swebench.index_proxy``); off by default.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker.errors

from swescale.sandbox import ImagesConfig, build_layer, content_tag, ensure_base_image
from swescale.sandbox.engine import LABEL, owner_labels
from swescale.swebench.config import GradingConfig
from swescale.swebench.index_proxy import IndexProxy, start_index_proxy, stop_index_proxy
from swescale.types import Task

if TYPE_CHECKING:
    import docker

log = logging.getLogger(__name__)

# Repositories whose test suites call a public service: requests before 2.9 calls
# httpbin.org (HTTPBIN_URL, default http://httpbin.org/, and https:// URLs built from
# it); later suites use pytest-httpbin, which serves httpbin in-process.
STAND_INS: dict[str, str] = {"psf/requests": "httpbin"}
HTTPBIN_HOSTS = ("httpbin.org", "www.httpbin.org")
HTTPBIN_PACKAGES = ("httpbin==0.10.2", "gunicorn==23.0.0", "trustme==1.2.1")
# Where the test CA lands in the grading container (the tests trust it through
# REQUESTS_CA_BUNDLE) and where the stand-in keeps its files.
CA_IN_SANDBOX = "/tmp/swescale-stand-in-ca.pem"
_SERVICE_DIR = "/opt/httpbin"
_MAKE_CERTS = (
    f'{_SERVICE_DIR}/bin/python -c "import trustme; ca = trustme.CA(); '
    f"ca.cert_pem.write_to_path('{_SERVICE_DIR}/ca.pem'); "
    f"cert = ca.issue_cert({', '.join(repr(h) for h in HTTPBIN_HOSTS)}); "
    f"cert.private_key_pem.write_to_path('{_SERVICE_DIR}/key.pem'); "
    f"cert.cert_chain_pems[0].write_to_path('{_SERVICE_DIR}/cert.pem')\""
)


@dataclass
class GradingNetwork:
    """What a grading container joins: a network name (None: ``none`` or ``bridge``),
    variables for the tests, files to put into it, and a note for the report."""

    mode: str
    name: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The package-index proxy of this run (``grading.package_index: proxy``), if any.
    index_proxy: IndexProxy | None = None

    def package_index_usage(self) -> dict[str, Any] | None:
        """What went through the package-index proxy so far; None without one."""
        return self.index_proxy.usage() if self.index_proxy is not None else None


def stand_in_for(task: Task) -> str | None:
    """The stand-in service a task's tests need, if any."""
    return STAND_INS.get(task.repo)


def httpbin_image(client: docker.DockerClient, images: ImagesConfig) -> str:
    """A local image serving httpbin over HTTP and HTTPS (built once, found by its
    content tag; its test CA is made at build time)."""
    base = ensure_base_image(client, images)
    commands = [
        f"python3 -m venv {_SERVICE_DIR}",
        f"{_SERVICE_DIR}/bin/pip install -q " + " ".join(f"'{p}'" for p in HTTPBIN_PACKAGES),
        _MAKE_CERTS,
    ]
    tag = content_tag("swescale/service", "httpbin", base, commands)
    return build_layer(
        client,
        base,
        tag,
        commands,
        network=True,
        pip_config=True,
        log_path=images.cache_dir / "logs" / "service-httpbin.log",
    )


@contextlib.contextmanager
def grading_network(
    client: docker.DockerClient,
    task: Task,
    mode: str,
    images: ImagesConfig | None = None,
    labels: dict[str, str] | None = None,
    grading: GradingConfig | None = None,
    snapshot_index: bool = False,
) -> Iterator[GradingNetwork]:
    """The network of one grading run (see the module docstring); everything it creates
    is removed on exit, whatever happens. ``grading`` gives the package-index setting
    (default: off); ``snapshot_index`` also serves the index as of a date (replay)."""
    index = grading is not None and grading.package_index == "proxy"
    if mode == "none" and index:
        raise ValueError(
            "grading.package_index=proxy needs a network: set grading.network to "
            "isolated (or auto with local images)"
        )
    if mode in ("none", "bridge"):
        out = GradingNetwork(mode)
        if index:
            out.notes.append("package index: the bridge network reaches it directly (no proxy)")
        yield out
        return
    if mode != "isolated":
        raise ValueError(f"unknown grading network mode {mode!r} (none, isolated, bridge)")
    all_labels = {**owner_labels(), **{f"{LABEL}.{k}": str(v) for k, v in (labels or {}).items()}}
    name = f"swescale-grade-{uuid.uuid4().hex[:12]}"
    network = client.networks.create(name, driver="bridge", internal=True, labels=all_labels)
    service = None
    proxy = None
    try:
        out = GradingNetwork(mode, name=name, notes=["egress dropped (isolated network)"])
        if index:
            assert grading is not None
            proxy = start_index_proxy(
                client,
                images or ImagesConfig(),
                network,
                grading.package_index_hosts,
                grading.package_index_url,
                all_labels,
                snapshot=snapshot_index,
            )
            out.index_proxy = proxy
            out.environment.update(proxy.environment)
            out.files.update(proxy.files)
            out.notes.append(
                f"package index {grading.package_index_url} through an allow-listed proxy "
                f"({', '.join(grading.package_index_hosts)}, port 443) for pip only"
            )
        if stand_in_for(task) == "httpbin":
            service, ca = _start_httpbin(client, images or ImagesConfig(), name, all_labels)
            out.files[CA_IN_SANDBOX] = ca
            out.environment["REQUESTS_CA_BUNDLE"] = CA_IN_SANDBOX
            out.notes.append(
                "public httpbin replaced by a local stand-in answering as "
                f"{', '.join(HTTPBIN_HOSTS)} over HTTP and HTTPS (test CA in REQUESTS_CA_BUNDLE)"
            )
        yield out
    finally:
        if service is not None:
            with contextlib.suppress(docker.errors.DockerException):
                service.remove(force=True, v=True)
        if proxy is not None:
            stop_index_proxy(proxy)
        with contextlib.suppress(docker.errors.DockerException):
            network.remove()


def _start_httpbin(
    client: docker.DockerClient, images: ImagesConfig, network: str, labels: dict[str, str]
):
    """The stand-in on ``network`` under the public names; (container, CA certificate)."""
    image = httpbin_image(client, images)
    gunicorn = f"{_SERVICE_DIR}/bin/gunicorn --workers 2 --threads 4 --access-logfile -"
    tls = f"--certfile {_SERVICE_DIR}/cert.pem --keyfile {_SERVICE_DIR}/key.pem"
    command = (
        f"{gunicorn} --bind 0.0.0.0:80 httpbin:app & "
        f"{gunicorn} --bind 0.0.0.0:443 {tls} httpbin:app & wait"
    )
    container = client.containers.create(
        image,
        command=["bash", "-c", command],
        name=f"{network}-httpbin",
        labels={**labels, f"{LABEL}.service": "httpbin"},
        mem_limit="512m",
        cap_drop=["ALL"],
        cap_add=["NET_BIND_SERVICE"],
        security_opt=["no-new-privileges"],
        network=network,
        networking_config={network: client.api.create_endpoint_config(aliases=list(HTTPBIN_HOSTS))},
    )
    try:
        container.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            probe = container.exec_run(
                [
                    "curl",
                    "-sf",
                    "-o",
                    "/dev/null",
                    "--cacert",
                    f"{_SERVICE_DIR}/ca.pem",
                    "--resolve",
                    "httpbin.org:443:127.0.0.1",
                    "https://httpbin.org/get",
                ]
            )
            if probe.exit_code == 0:
                ca = container.exec_run(["cat", f"{_SERVICE_DIR}/ca.pem"]).output
                return container, ca
            time.sleep(0.2)
        raise RuntimeError("the local httpbin stand-in did not start within 60 s")
    except BaseException:
        container.remove(force=True)
        raise
