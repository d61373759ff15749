"""Sandbox behaviour on real Docker: session state, files, diffs, snapshots, pool, gc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from swescale.record import BlobStore
from swescale.sandbox import (
    DockerSandbox,
    ImageBuildError,
    SandboxConfig,
    WarmPool,
    build_layer,
    content_tag,
    reap,
    running_sandboxes,
)
from swescale.sandbox.images import image_exists

pytestmark = pytest.mark.docker


def test_session_keeps_cwd_and_env_like_a_terminal(make_sandbox):
    sb = make_sandbox()
    sb.execute("mkdir -p /tmp/w && cd /tmp/w && export A=1")
    assert sb.execute("echo $A $(pwd)").output == "1 /tmp/w\n"
    assert sb.exec_once("echo ${A:-unset} $(pwd)").output == "unset /repo\n", (
        "exec_once shares nothing"
    )


def test_exit_codes_and_syntax_errors_do_not_break_framing(make_sandbox):
    sb = make_sandbox()
    assert sb.execute("false").exit_code == 1
    assert sb.execute("echo 'unclosed").exit_code == 2
    assert sb.execute("cat").output == "", "commands cannot read the session's own input"
    assert sb.execute("printf 'a\\nb'").output == "a\nb"
    restarted = sb.execute("exit 7")
    assert restarted.exit_code == 7 and "new session" in restarted.note
    assert sb.execute("echo back").output == "back\n"


def test_exec_once_timeout_kills_process_group(make_sandbox):
    sb = make_sandbox()
    result = sb.exec_once("sleep 300 & sleep 300; wait", timeout=1)
    assert result.timed_out
    assert sb.exec_once("ps -eo args | grep -c '^sleep 300$' || true").output.strip() == "0"


def test_files_are_binary_safe(git_sandbox):
    sb = git_sandbox
    payload = bytes(range(256)) * 10
    sb.write_file("sub/dir/blob.bin", payload)
    assert sb.read_file("sub/dir/blob.bin") == payload
    sb.write_file("hello.txt", "héllo\n")
    assert sb.read_file("/repo/hello.txt").decode() == "héllo\n"
    with pytest.raises(FileNotFoundError):
        sb.read_file("missing.txt")


def test_diff_includes_new_and_binary_files_without_junk(git_sandbox):
    sb = git_sandbox
    sb.execute("cd /repo && sed -i 's/a + b/a - b/' calc.py && echo 'y = 2' > pkg/new.py")
    sb.execute(
        "cd /repo && printf '\\x00\\xff' > data.bin && mkdir -p pkg/__pycache__ && touch pkg/__pycache__/m.pyc x.pyc"
    )
    sb.execute("cd /repo && git add calc.py")  # the agent's own index must be left alone
    diff = sb.diff()
    assert "-    return a + b" in diff and "+    return a - b" in diff
    assert "pkg/new.py" in diff and "GIT binary patch" in diff
    assert "__pycache__" not in diff and ".pyc" not in diff
    staged = sb.exec_once("cd /repo && git diff --cached --name-only").output.split()
    assert staged == ["calc.py"]


@pytest.fixture(scope="module")
def repo_image(docker_client, base_image):
    """An image with a committed repository at /repo, built by ``build_layer``."""
    setup = (
        "cd /repo && git init -q && printf 'def add(a, b):\\n    return a + b\\n' > calc.py"
        " && mkdir -p pkg && echo 'x = 1' > pkg/mod.py && git add -A && git commit -q -m base"
    )
    tag = content_tag("swescale/test-repo", "v", base_image, setup)
    return build_layer(docker_client, base_image, tag, [setup], workdir="/repo", network=False)


def test_snapshot_restore_reproduces_the_state(docker_client, repo_image, make_sandbox, tmp_path):
    sb = make_sandbox(repo_image)
    assert len(sb.base_commit) == 40
    sb.execute(
        "cd /repo && echo 'z = 3' >> pkg/mod.py && rm calc.py && printf '\\x01\\x02' > new.bin"
    )
    ref, blob = sb.snapshot()
    store = BlobStore(tmp_path)
    assert store.put(blob) == ref and store.get(ref.sha256) == blob
    fresh = make_sandbox(repo_image)
    assert fresh.base_commit == sb.base_commit
    fresh.restore(store.get(ref.sha256))
    assert fresh.snapshot()[0] == ref
    assert fresh.read_file("new.bin") == b"\x01\x02"
    assert fresh.exec_once("test -e calc.py").exit_code == 1
    assert fresh.diff() == sb.diff()


def test_build_layer_is_idempotent_by_tag(docker_client, base_image, repo_image):
    # Same tag: returned at once, no build (the commands would fail if they ran).
    assert build_layer(docker_client, base_image, repo_image, ["exit 1"]) == repo_image


def test_build_layer_failure_names_the_step(docker_client, base_image):
    tag = content_tag("swescale/test-broken", "v", base_image, "false-step")
    with pytest.raises(ImageBuildError, match="definitely-not-a-command"):
        build_layer(docker_client, base_image, tag, ["definitely-not-a-command"], network=False)
    assert not image_exists(docker_client, tag)


def test_warm_pool_hands_out_fresh_sandboxes(docker_client, base_image):
    with WarmPool(
        docker_client, base_image, SandboxConfig(), size=1, labels={"run": "pytest-pool"}
    ) as pool:
        first = pool.acquire(timeout=60)
        first.execute("touch /tmp/leftover")
        pool.release(first)
        second = pool.acquire(timeout=60)
        assert second.id != first.id
        assert second.execute("test -e /tmp/leftover").exit_code == 1
        pool.release(second)
    assert running_sandboxes(docker_client, "pytest-pool") == []


def test_gc_reaps_containers_of_dead_owners(docker_client, base_image):
    code = (
        "import sys; from swescale.sandbox import *; c = docker_client();"
        f"DockerSandbox.create(c, {base_image!r}, labels={{'run': 'pytest-orphan'}}); sys.stdout.flush(); import os; os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
    assert running_sandboxes(docker_client, "pytest-orphan"), "the dead process left a container"
    removed = reap(docker_client)
    assert removed and running_sandboxes(docker_client, "pytest-orphan") == []


def test_reap_of_a_run_keeps_its_containers_while_their_owner_runs(docker_client, base_image):
    mine = DockerSandbox.create(docker_client, base_image, labels={"run": "pytest-mine"})
    try:
        # This process owns it and is alive: a second session of the run must not take it.
        assert reap(docker_client, run_id="pytest-mine") == []
        assert running_sandboxes(docker_client, "pytest-mine")
    finally:
        mine.close()


def test_image_cache_prunes_least_recently_used(docker_client, base_image, tmp_path):
    from swescale.sandbox.image_cache import ImageCache

    cache = ImageCache(tmp_path)
    tags = []
    for name in ("old", "new"):
        tag = content_tag("swescale/test-cache", name, base_image, name, str(tmp_path))
        build_layer(
            docker_client, base_image, tag, [f"echo {name} > /marker"], network=False, cache=cache
        )
        tags.append(tag)
    cache.touch(tags[1])  # "new" used most recently
    sizes = {i.tag: i.size for i in cache.images(docker_client)}
    others = sum(size for tag, size in sizes.items() if tag not in tags)
    # Room for everything but one of ours: the least recently used goes first.
    keep = set(sizes) - set(tags)
    removed = cache.prune(docker_client, others + sizes[tags[1]], keep=keep)
    assert removed == [tags[0]]
    assert not image_exists(docker_client, tags[0]) and image_exists(docker_client, tags[1])
    docker_client.images.remove(tags[1])


def test_image_path_survives_the_sandbox_environment(docker_client, base_image, make_sandbox):
    from swescale.sandbox.config import BASE_PATH

    path = f"/opt/tool/bin:{BASE_PATH}"
    tag = content_tag("swescale/test-path", "v", base_image, path)
    build_layer(
        docker_client,
        base_image,
        tag,
        ["mkdir -p /opt/tool/bin"],
        env={"PATH": path},
        network=False,
    )
    sb = make_sandbox(tag)
    assert sb.execute("echo $PATH").output.strip() == path
    assert sb.exec_once("echo $PATH").output.strip() == path


def test_exact_env_shows_only_the_configured_variables(make_sandbox):
    # The base image declares LANG, TERM, PYTHONDONTWRITEBYTECODE ...; with exact_env a
    # command sees the configured variables and the call's own, as a replayed agent's did.
    from swescale.sandbox.config import BASE_PATH

    cfg = SandboxConfig(env={"PATH": BASE_PATH, "TZ": "Etc/UTC"}, exact_env=True)
    sb = make_sandbox(cfg=cfg)
    seen = sb.exec_once("env", env={"PAGER": "cat"}).output
    names = {line.split("=", 1)[0] for line in seen.splitlines()}
    assert {"PATH", "TZ", "PAGER"} <= names
    assert not names & {"LANG", "LC_ALL", "TERM", "PYTHONDONTWRITEBYTECODE", "HOME"}
    assert "LANG" not in sb.execute("env").output
    # Without it the image's variables show through, as before.
    assert "LANG=C.UTF-8" in make_sandbox().exec_once("env").output


def test_vanished_container_is_an_infra_error_not_a_crash(make_sandbox):
    sb = make_sandbox()
    sb.container.remove(force=True)
    result = sb.execute("echo hi")
    assert result.infra_error and result.exit_code is None
    assert sb.exec_once("echo hi").infra_error


def test_model_shell_state_cannot_mislead_snapshots(git_sandbox):
    sb = git_sandbox
    sb.execute("cd /repo && echo 'z = 1' > new.py")
    expected = sb.diff()
    sb.execute(
        "export GIT_DIR=/nonexistent GIT_INDEX_FILE=/tmp/bogus; git() { echo fake; }; cd /tmp"
    )
    assert sb.diff() == expected and "new.py" in expected
    ref, _ = sb.snapshot()
    assert ref.size == len(expected.encode())
