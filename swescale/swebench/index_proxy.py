"""A package index for grading containers, through an allow-listed proxy.

Some gold patches add a dependency (pylint-dev__pylint-4661 imports ``appdirs`` and adds
it to ``install_requires``); the official eval script reruns the install step with the
internet, so grading them offline fails on an import. With ``grading.package_index:
proxy`` a grading run on the isolated network also gets, for that run only:

- a proxy container (Debian's ``tinyproxy``) joined to the run's internal network under
  the name ``swescale-index-proxy`` and to an egress network of its own (nothing else is
  on it), accepting clients from the internal network's subnet only, tunnelling
  ``CONNECT`` to port 443 of the allow-listed hosts only (exact names, ``FilterType
  fnmatch``; everything else is answered 403 "Filtered");
- pip pointed at it through the environment: ``PIP_PROXY`` (pip's own proxy setting, so
  the tests' own connections still see the isolated network, not the proxy),
  ``PIP_INDEX_URL``, and ``PIP_CERT`` with the host's CA bundle (as image builds have);
- the eval script's install step rerun as the official one (with dependencies and the
  index) instead of offline.

The hosts pip reached and the ones the proxy refused are read from the proxy's log and
recorded on the grading result. tinyproxy is used rather than a proxy of our own: it is
a Debian package, does exactly this (``ConnectPort``, ``Filter``, ``FilterDefaultDeny``,
``Allow``), and is small (one process, about 1 MB).
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swescale.sandbox import ImagesConfig, build_layer, content_tag, ensure_base_image
from swescale.sandbox.engine import LABEL
from swescale.sandbox.images import host_pip_files

if TYPE_CHECKING:
    import docker

PROXY_ALIAS = "swescale-index-proxy"
PROXY_PORT = 3128
# The dated package index (pypi-timemachine), served from the proxy's container: pip
# sees the index as it was at ``/snapshot/<ISO time>/``.
SNAPSHOT_PORT = 8080
SNAPSHOT_VENV = "/opt/timemachine"
_SNAPSHOT_CA = "/etc/swescale-ca.pem"
CA_IN_SANDBOX = "/tmp/swescale-index-ca.pem"
_CONF = "/etc/tinyproxy/swescale.conf"
_FILTER = "/etc/tinyproxy/swescale.allow"
# tinyproxy 1.11 (bookworm) has FilterType fnmatch: exact host names, no regex surprises.
_SUITE = "bookworm"

# "... Request (file descriptor 6): CONNECT pypi.org:443 HTTP/1.1"
_REQUEST = re.compile(r"Request \(file descriptor \d+\): CONNECT ([^\s:]+):(\d+)")
# "... Proxying refused on filtered domain \"example.com\""
_REFUSED = re.compile(r'refused on filtered (?:domain|url) "([^"]+)"')


@dataclass
class IndexProxy:
    """A running proxy: its container, what pip needs, and what it was asked."""

    container: Any
    environment: dict[str, str]
    files: dict[str, bytes]
    hosts: list[str]
    egress_network: Any = None
    # Base URL of the dated index (None: not started): ``<url><ISO time>/`` is the index
    # as of that time.
    snapshot_url: str | None = None

    def usage(self) -> dict[str, Any]:
        """``{"proxy": alias:port, "allowed": [...], "reached": [...], "refused": [...]}``
        from the proxy's log so far."""
        try:
            text = self.container.logs().decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - a proxy already gone says nothing more
            text = ""
        return proxy_usage(text, self.hosts)


def proxy_usage(log_text: str, allowed: list[str]) -> dict[str, Any]:
    """What a tinyproxy log shows was asked through it (pure): hosts tunnelled to and
    hosts refused."""
    refused = sorted(set(_REFUSED.findall(log_text)))
    asked = {host for host, _port in _REQUEST.findall(log_text)}
    return {
        "proxy": f"{PROXY_ALIAS}:{PROXY_PORT}",
        "allowed": list(allowed),
        "reached": sorted(asked - set(refused)),
        "refused": refused,
    }


def tinyproxy_config(client_subnets: list[str]) -> str:
    """The proxy's configuration (pure): clients from ``client_subnets`` only, CONNECT to
    port 443 only, hosts from the filter file only, logs on stdout."""
    allow = "\n".join(f"Allow {subnet}" for subnet in client_subnets)
    return "\n".join(
        [
            f"Port {PROXY_PORT}",
            "Timeout 120",
            "MaxClients 64",
            allow,
            "ConnectPort 443",
            f'Filter "{_FILTER}"',
            "FilterType fnmatch",
            "FilterURLs Off",
            "FilterCaseSensitive Off",
            "FilterDefaultDeny Yes",
            "DisableViaHeader Yes",
            "LogLevel Info",
            "",
        ]
    )


def proxy_image(client: docker.DockerClient, images: ImagesConfig) -> str:
    """The proxy's image: Debian's tinyproxy, and pypi-timemachine (a PyPI index of a given
    date, PEP 700 upload times) in a venv, on the base image (built once, found by its
    content tag)."""
    base = ensure_base_image(client, images.model_copy(update={"suite": _SUITE}))
    commands = [
        "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
        "--no-install-recommends tinyproxy && rm -rf /var/lib/apt/lists/*",
        f"python3 -m venv {SNAPSHOT_VENV} && {SNAPSHOT_VENV}/bin/pip install -q "
        "'pypi-timemachine==0.3.1'",
    ]
    tag = content_tag("swescale/service", "tinyproxy", base, commands)
    return build_layer(
        client,
        base,
        tag,
        commands,
        network=True,
        pip_config=True,
        log_path=images.cache_dir / "logs" / "service-tinyproxy.log",
    )


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _subnets(network: Any) -> list[str]:
    network.reload()
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    return [c["Subnet"] for c in configs if c.get("Subnet")]


def host_ca_bundle() -> bytes | None:
    """The CA bundle image builds trust (the host's, where TLS may be intercepted)."""
    files, _env = host_pip_files()
    return next((data for path, data in files.items() if path.endswith("ca.crt")), None)


def start_index_proxy(
    client: docker.DockerClient,
    images: ImagesConfig,
    internal: Any,
    hosts: list[str],
    index_url: str,
    labels: dict[str, str],
    snapshot: bool = False,
) -> IndexProxy:
    """The proxy for one grading run on the ``internal`` network; stop it with
    :func:`stop_index_proxy`. With ``snapshot`` the container also serves the dated index
    (``IndexProxy.snapshot_url``), which reaches pypi.org through the container's own
    egress. Raises RuntimeError when it does not start."""
    image = proxy_image(client, images)
    egress = client.networks.create(
        f"{internal.name}-egress", driver="bridge", internal=False, labels=labels
    )
    container = None
    try:
        command = ["tinyproxy", "-d", "-c", _CONF]
        environment = {}
        if snapshot:
            command = ["bash", "-c", f"{_snapshot_command()} & exec tinyproxy -d -c {_CONF}"]
            environment = {"SSL_CERT_FILE": _SNAPSHOT_CA}
        container = client.containers.create(
            image,
            command=command,
            environment=environment,
            name=f"{internal.name}-index-proxy",
            user="tinyproxy",
            labels={**labels, f"{LABEL}.service": "index-proxy"},
            mem_limit="384m" if snapshot else "128m",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            network=egress.name,
        )
        internal.connect(container, aliases=[PROXY_ALIAS])
        config = tinyproxy_config(_subnets(internal))
        allow = "".join(f"{h}\n" for h in hosts)
        files_in = {_CONF: config.encode(), _FILTER: allow.encode()}
        bundle_in = host_ca_bundle()
        if snapshot and bundle_in:
            files_in[_SNAPSHOT_CA] = bundle_in
        container.put_archive("/", _tar(files_in))
        container.start()
        _wait_listening(container)
        if snapshot:
            _wait_listening(container, port=SNAPSHOT_PORT)
    except BaseException:
        stop_index_proxy(IndexProxy(container, {}, {}, hosts, egress))
        raise
    proxy_url = f"http://{PROXY_ALIAS}:{PROXY_PORT}"
    environment = {"PIP_PROXY": proxy_url, "PIP_INDEX_URL": index_url}
    files: dict[str, bytes] = {}
    bundle = host_ca_bundle()
    if bundle:
        files[CA_IN_SANDBOX] = bundle
        environment["PIP_CERT"] = CA_IN_SANDBOX
    snapshot_url = f"http://{PROXY_ALIAS}:{SNAPSHOT_PORT}/snapshot/" if snapshot else None
    return IndexProxy(container, environment, files, list(hosts), egress, snapshot_url)


def snapshot_index_url(proxy: IndexProxy, when: float) -> str:
    """The dated index as of unix time ``when`` (for ``PIP_INDEX_URL``)."""
    if proxy.snapshot_url is None:
        raise ValueError("this proxy serves no dated index (start it with snapshot=True)")
    return proxy.snapshot_url + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)) + "/"


def _snapshot_command() -> str:
    """pypi-timemachine's app on all interfaces (its own CLI binds to localhost only); the
    cut-off date comes from each request's path."""
    code = (
        "import datetime, uvicorn; "
        "from simple_repository.components.http import HttpRepository; "
        "from pypi_timemachine.core import MAIN_PYPI, create_app; "
        "app = create_app(HttpRepository(MAIN_PYPI), datetime.datetime.now()); "
        f"uvicorn.run(app, host='0.0.0.0', port={SNAPSHOT_PORT}, log_level='warning')"
    )
    return f'{SNAPSHOT_VENV}/bin/python -c "{code}"'


def _wait_listening(container: Any, timeout: float = 60.0, port: int = PROXY_PORT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = container.exec_run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"])
        if probe.exit_code == 0:
            return
        container.reload()
        if container.status not in ("created", "running"):
            break
        time.sleep(0.1)
    tail = container.logs(tail=20).decode("utf-8", "replace")
    raise RuntimeError(f"the package-index proxy did not start: {tail.strip()[-1000:]}")


def stop_index_proxy(proxy: IndexProxy) -> None:
    """Remove the proxy's container and its egress network (whatever exists of them)."""
    import contextlib

    import docker.errors

    if proxy.container is not None:
        with contextlib.suppress(docker.errors.DockerException):
            proxy.container.remove(force=True, v=True)
    if proxy.egress_network is not None:
        with contextlib.suppress(docker.errors.DockerException):
            proxy.egress_network.remove()


__all__ = [
    "CA_IN_SANDBOX",
    "PROXY_ALIAS",
    "PROXY_PORT",
    "IndexProxy",
    "proxy_usage",
    "snapshot_index_url",
    "start_index_proxy",
    "stop_index_proxy",
    "tinyproxy_config",
]
