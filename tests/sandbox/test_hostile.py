"""Hostile input the sandbox must contain, each on real Docker."""

from __future__ import annotations

import os
import resource

import pytest

from swescale.sandbox import (
    DockerSandbox,
    EngineUnavailable,
    ImageNotFound,
    PathRefused,
    SandboxConfig,
    docker_client,
)

pytestmark = pytest.mark.docker


def test_sleep_times_out_and_session_stays_usable(make_sandbox):
    sb = make_sandbox()
    sb.execute("cd /tmp && export KEEP=yes")
    result = sb.execute("sleep 100000", timeout=1.5)
    assert result.timed_out and result.exit_code != 0
    after = sb.execute("echo $KEEP; pwd")
    assert after.output.split() == ["yes", "/tmp"], "cwd and environment survive a timeout"


def test_builtin_busy_loop_restarts_the_session(make_sandbox):
    sb = make_sandbox()
    sb.execute("cd /tmp")
    result = sb.execute("while :; do :; done", timeout=1)
    assert result.timed_out
    assert "new session" in result.note
    assert sb.execute("pwd").output.strip() == "/tmp"


def test_yes_is_capped_and_host_memory_flat(make_sandbox):
    sb = make_sandbox(cfg=SandboxConfig(output_limit=10_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = sb.execute("yes", timeout=3)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.truncated and result.timed_out
    assert len(result.output) < 12_000 and "bytes of output cut" in result.output
    # `yes` wrote hundreds of MB in 3 s; we kept ~10 kB. Allow slack for the interpreter.
    assert grown_kb < 50_000
    assert sb.execute("echo ok").output == "ok\n"


def test_fork_bomb_hits_pids_limit_others_unaffected(make_sandbox):
    bomb = make_sandbox(cfg=SandboxConfig(pids_limit=64, cpus=0.5))
    other = make_sandbox()
    bomb.execute("bomb() { bomb | bomb & }; bomb", timeout=5)
    # Inside: the process count is capped at the pids limit.
    count = bomb.exec_once("ls /proc | grep -c '^[0-9]'", timeout=10)
    if count.exit_code == 0:
        assert int(count.output.strip()) <= 64 + 5
    assert other.execute("echo fine").output == "fine\n"
    assert os.fork  # the host can still fork:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0


def test_memory_hog_is_killed_and_reported(make_sandbox):
    sb = make_sandbox(cfg=SandboxConfig(memory="128m"))
    hog = "python3 -c \"b = bytearray(1024 * 1024 * 1024); print('SURV' + 'IVED')\""
    result = sb.execute(hog, timeout=60)
    assert result.exit_code not in (0, None)
    assert "SURVIVED" not in result.output
    if result.exit_code == 137:
        assert "out of memory" in result.note
    else:
        assert "MemoryError" in result.output
    assert sb.execute("echo alive").output == "alive\n"


def test_rm_rf_root_only_breaks_that_sandbox(make_sandbox, tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("host file")
    victim = make_sandbox()
    other = make_sandbox()
    victim.execute("rm -rf / --no-preserve-root", timeout=60)
    after = victim.execute("ls /bin/ls")
    assert not after.ok, "the sandbox reports failure once its filesystem is gone"
    assert other.execute("ls /bin/ls").ok
    assert canary.read_text() == "host file"


def test_no_network_by_default(make_sandbox):
    sb = make_sandbox()
    probe = "python3 -c \"import socket; socket.create_connection(('1.1.1.1', 80), timeout=3)\""
    assert not sb.execute(probe, timeout=20).ok
    assert sb.execute(
        "cat /sys/class/net/*/operstate 2>/dev/null | grep -c up || true"
    ).output.strip() in ("", "0")


def test_host_secrets_absent(make_sandbox, monkeypatch):
    monkeypatch.setenv("SWESCALE_TEST_SECRET", "hunter2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    sb = make_sandbox()
    env = sb.execute("env").output + sb.exec_once("env").output
    assert "hunter2" not in env and "sk-test-secret" not in env
    assert sb.execute("ls -la /var/run/docker.sock 2>&1").exit_code != 0


def test_container_is_locked_down(make_sandbox):
    sb = make_sandbox()
    attrs = sb.container.attrs["HostConfig"]
    assert attrs["Privileged"] is False
    assert attrs["CapDrop"] == ["ALL"]
    assert not attrs.get("Binds") and not sb.container.attrs.get("Mounts")
    assert attrs["PidsLimit"] == SandboxConfig().pids_limit
    assert attrs["NetworkMode"] == "none"
    labels = sb.container.labels
    assert labels["swescale.run"] == "pytest" and labels["swescale.owner_pid"] == str(os.getpid())


def test_binary_and_invalid_utf8_output(make_sandbox):
    sb = make_sandbox()
    result = sb.execute("printf 'ok \\xff\\xfe\\x00 end'; head -c 2000 /dev/urandom")
    assert result.exit_code == 0 and result.output.startswith("ok ")
    assert "\ufffd" in result.output
    once = sb.exec_once("printf '\\xc3\\x28 bad'")
    assert once.exit_code == 0 and once.output.endswith(" bad")


def test_path_escaping_write_refused(git_sandbox):
    sb = git_sandbox
    with pytest.raises(PathRefused):
        sb.write_file("../../etc/x", "nope")
    sb.execute("ln -s /etc /repo/etc_link")
    with pytest.raises(PathRefused):
        sb.write_file("etc_link/x", "nope")
    assert sb.exec_once("test -e /etc/x").exit_code != 0
    sb.write_file("/tmp/allowed.txt", "fine")  # /tmp is on the default allow-list


def test_missing_image_clear_error(docker_client):
    with pytest.raises(ImageNotFound, match="swescale/no-such-image:nope"):
        DockerSandbox.create(docker_client, "swescale/no-such-image:nope")


def test_dead_engine_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    with pytest.raises(EngineUnavailable, match="does not answer"):
        docker_client(timeout=5)
