"""The package index for grading containers: off by default (nothing changes), and with
``grading.package_index: proxy`` an allow-listed proxy that only the grading network
reaches, which pip uses and which refuses every other host. The docker tests reach the
real PyPI through it (this machine reaches PyPI)."""

from __future__ import annotations

import pytest

from swescale.swebench.config import GradingConfig
from swescale.swebench.images import InstanceImage
from swescale.swebench.index_proxy import PROXY_ALIAS, proxy_usage, tinyproxy_config
from swescale.swebench.run import eval_script
from swescale.types import Task

TEST_PATCH = (
    "diff --git a/tests/t.py b/tests/t.py\n--- a/tests/t.py\n+++ b/tests/t.py\n"
    "@@ -1 +1 @@\n-x = 1\n+x = 2\n"
)


def swe_task(repo: str, version: str) -> Task:
    return Task(
        id=f"{repo.replace('/', '__')}-1",
        repo=repo,
        base_commit="a" * 40,
        version=version,
        problem_statement="p",
        test_patch=TEST_PATCH,
    )


def test_the_switch_is_off_by_default_and_checked() -> None:
    cfg = GradingConfig()
    assert cfg.package_index == "off"
    assert cfg.package_index_hosts == ["pypi.org", "files.pythonhosted.org"]
    with pytest.raises(ValueError, match="not a host name"):
        GradingConfig(package_index_hosts=["*.pythonhosted.org"])
    with pytest.raises(ValueError, match="not a host name"):
        GradingConfig(package_index_hosts=["pypi.org:8443"])
    with pytest.raises(ValueError, match="not on an allowed host"):
        GradingConfig(package_index="proxy", package_index_url="https://mirror.example/simple")


def test_the_install_step_uses_the_index_only_when_there_is_one() -> None:
    task = swe_task("astropy/astropy", "4.3")
    offline = eval_script(task, InstanceImage("t"))
    online = eval_script(task, InstanceImage("t"), package_index=True)
    assert "pip install --no-index --no-build-isolation --no-deps -e .[test]" in offline.text
    assert "install step rerun offline" in " ".join(offline.adaptations)
    assert "--no-index" not in online.text and "pip install -e .[test] --verbose" in online.text
    assert "install step rerun as the official one" in " ".join(online.adaptations)
    # Official images run the official line either way.
    official = eval_script(task, InstanceImage("t", official=True), package_index=True)
    assert official.text == eval_script(task, InstanceImage("t", official=True)).text


def test_the_proxy_config_allows_the_grading_subnet_and_port_443_only() -> None:
    text = tinyproxy_config(["172.30.0.0/16"])
    lines = text.splitlines()
    assert "Allow 172.30.0.0/16" in lines and sum(x.startswith("Allow") for x in lines) == 1
    assert "ConnectPort 443" in lines and "FilterDefaultDeny Yes" in lines
    assert "FilterType fnmatch" in lines  # exact names: no regular-expression surprises


def test_what_went_through_the_proxy_is_read_from_its_log() -> None:
    log = "\n".join(
        [
            "CONNECT   Jan 01 00:00:00.000 [7]: Connect (file descriptor 5): 172.30.0.3",
            "CONNECT   Jan 01 00:00:00.001 [7]: Request (file descriptor 5): CONNECT pypi.org:443 HTTP/1.1",
            "CONNECT   Jan 01 00:00:00.002 [7]: Request (file descriptor 5): CONNECT files.pythonhosted.org:443 HTTP/1.1",
            "CONNECT   Jan 01 00:00:00.003 [7]: Request (file descriptor 5): CONNECT deb.debian.org:443 HTTP/1.1",
            'NOTICE    Jan 01 00:00:00.004 [7]: Proxying refused on filtered domain "deb.debian.org"',
        ]
    )
    usage = proxy_usage(log, ["pypi.org", "files.pythonhosted.org"])
    assert usage == {
        "proxy": f"{PROXY_ALIAS}:3128",
        "allowed": ["pypi.org", "files.pythonhosted.org"],
        "reached": ["files.pythonhosted.org", "pypi.org"],
        "refused": ["deb.debian.org"],
    }


# -- on a real engine --------------------------------------------------------------------

RUN = "pytest-index-proxy"
TASK = Task(id="acme__pkg-1", repo="acme/pkg", base_commit="a" * 40, problem_statement="p")


def _in_grading_container(docker_client, base_image, net, command: str) -> tuple[int, str]:
    """``command`` in a container on the grading network with its environment and files,
    as a grading sandbox gets them."""
    from swescale.sandbox import DockerSandbox, SandboxConfig

    cfg = SandboxConfig(network_name=net.name, env={**SandboxConfig().env, **net.environment})
    with DockerSandbox.create(
        docker_client, base_image, cfg, labels={"run": RUN}, start_session=False
    ) as sb:
        if net.files:
            import io
            import tarfile

            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                for path, data in net.files.items():
                    info = tarfile.TarInfo(path.removeprefix("/tmp/"))
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            sb.container.put_archive("/tmp", buf.getvalue())
        result = sb.exec_once(command, timeout=180)
        return result.exit_code, result.output


@pytest.mark.docker
def test_a_grading_container_reaches_the_index_through_the_proxy_and_nothing_else(
    docker_client, base_image
) -> None:
    from swescale.sandbox import running_sandboxes
    from swescale.swebench.network import grading_network

    cfg = GradingConfig(package_index="proxy")
    with grading_network(docker_client, TASK, "isolated", labels={"run": RUN}, grading=cfg) as net:
        assert net.environment["PIP_PROXY"] == f"http://{PROXY_ALIAS}:3128"
        assert net.environment["PIP_INDEX_URL"] == "https://pypi.org/simple"
        assert "HTTPS_PROXY" not in net.environment  # the tests' own traffic stays isolated
        assert any("allow-listed proxy" in n for n in net.notes)
        # pip downloads from the index (pypi.org, then files.pythonhosted.org) through it.
        code, out = _in_grading_container(
            docker_client,
            base_image,
            net,
            "python3 -m pip download --no-deps --no-cache-dir -q -d /tmp/dl appdirs==1.4.4"
            " && ls /tmp/dl",
        )
        assert code == 0 and "appdirs-1.4.4" in out, out
        # Another host through the proxy: refused (403), though this machine reaches it.
        code, out = _in_grading_container(
            docker_client,
            base_image,
            net,
            f"curl -s -o /dev/null -w '%{{http_connect}}' -x http://{PROXY_ALIAS}:3128 "
            "https://deb.debian.org/debian/",
        )
        assert code != 0 and out.strip() == "403", out
        # Without the proxy the grading network still has no way out.
        code, _ = _in_grading_container(
            docker_client, base_image, net, "curl -s --max-time 5 https://pypi.org/simple/"
        )
        assert code != 0
        usage = net.package_index_usage()
        assert {"pypi.org", "files.pythonhosted.org"} <= set(usage["reached"])
        assert usage["refused"] == ["deb.debian.org"]
        proxy = net.index_proxy.container
        proxy.reload()
        egress = next(n for n in proxy.attrs["NetworkSettings"]["Networks"] if n != net.name)
        egress_ip = proxy.attrs["NetworkSettings"]["Networks"][egress]["IPAddress"]
        # A container that is not on the grading network does not reach the proxy.
        outsider = docker_client.containers.run(
            base_image,
            [
                "curl",
                "-s",
                "--max-time",
                "5",
                "-x",
                f"http://{egress_ip}:3128",
                "https://pypi.org/simple/",
            ],
            labels={"swescale.run": RUN},
            detach=True,
        )
        try:
            assert outsider.wait(timeout=60)["StatusCode"] != 0
        finally:
            outsider.remove(force=True)
    # Everything of the run is gone: proxy, egress network, grading network.
    assert running_sandboxes(docker_client, RUN) == []
    assert docker_client.networks.list(names=[net.name]) == []
    assert docker_client.networks.list(names=[egress]) == []


@pytest.mark.docker
def test_with_the_switch_off_nothing_changes(docker_client) -> None:
    from swescale.swebench.network import grading_network

    for cfg in (None, GradingConfig()):
        with grading_network(
            docker_client, TASK, "isolated", labels={"run": RUN}, grading=cfg
        ) as net:
            assert net.environment == {} and net.files == {} and net.index_proxy is None
            assert net.notes == ["egress dropped (isolated network)"]
            assert net.package_index_usage() is None
            attached = docker_client.networks.get(net.name).attrs["Containers"] or {}
            assert attached == {}  # no proxy on the grading network
    with (
        pytest.raises(ValueError, match="needs a network"),
        grading_network(docker_client, TASK, "none", grading=GradingConfig(package_index="proxy")),
    ):
        pass
