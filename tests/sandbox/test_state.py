"""Snapshots and restores through the open session: every kind of change, computed
incrementally step after step, equals a computation from scratch and restores exactly."""

from __future__ import annotations

import pytest

from swescale.record import BlobStore
from swescale.sandbox import SandboxConfig, build_layer, content_tag, state, state_reader

pytestmark = pytest.mark.docker

SETUP = (
    "cd /repo && git init -q && mkdir -p pkg/sub docs"
    " && printf 'def add(a, b):\\n    return a + b\\n' > pkg/calc.py"
    " && printf 'x = 1\\n' > pkg/sub/mod.py && printf '# docs\\n' > docs/index.md"
    " && printf '\\x00\\x01\\x02\\xff' > pkg/data.bin && printf '#!/bin/sh\\necho run\\n' > run.sh"
    " && chmod +x run.sh && printf '*.log\\n' > .gitignore && ln -s pkg/calc.py link.py"
    " && git add -A && git -c user.name=b -c user.email=b@example.com commit -qm base"
)

# One step each: a kind of change the state must hold, with the files it must show after.
STEPS = [
    ("edit a line", "sed -i 's/a + b/a - b/' pkg/calc.py"),
    ("new binary file", "printf '\\x89PNG\\x00\\x00\\xfe' > pkg/image.png"),
    ("binary file changed", "printf '\\x00\\x09' >> pkg/data.bin"),
    ("deletion", "rm docs/index.md"),
    ("rename", "mv pkg/sub/mod.py pkg/sub/renamed.py"),
    ("mode change", "chmod -x run.sh"),
    ("untracked directory", "mkdir -p new/deep/er && echo n > new/deep/er/n.txt"),
    ("agent stages a change", "echo staged >> pkg/calc.py && git add pkg/calc.py"),
    ("agent commits", "git -c user.name=a -c user.email=a@b commit -qam wip"),
    ("ignored and junk files", "echo l > app.log && mkdir -p __pycache__ && echo j > x.pyc"),
    ("symlink retargeted", "ln -sfn run.sh link.py"),
    ("directory replaced by a file", "rm -r pkg/sub && echo file > pkg/sub"),
    ("empty file", ": > empty.txt"),
    ("odd names", "echo a > 'sp ace.py' && echo b > 'st*r[x].py' && echo c > 'ünï.py'"),
    ("several directories at once", "echo 1 >> pkg/data.bin && echo 2 >> run.sh && rm 'sp ace.py'"),
    (
        "new file in a new directory beside junk",
        "mkdir -p lib/__pycache__ && echo j > lib/__pycache__/m.pyc && echo m > lib/m.py",
    ),
    ("file back to its base content", "git show HEAD~1:pkg/calc.py > pkg/calc.py"),
]

# The work tree's files (path, mode, type, link target; sha1 of regular files), .git and
# ignored files aside.
LISTING = (
    "cd /repo && { find . -path ./.git -prune -o ! -type d -printf '%p %m %y %l\\n';"
    " find . -path ./.git -prune -o -type f -print0 | xargs -0 sha1sum; }"
    " | grep -v -e '[.]log' -e '[.]pyc' | sort"
)


@pytest.fixture(scope="module")
def state_image(docker_client, base_image):
    tag = content_tag("swescale/test-state", "v", base_image, SETUP)
    return build_layer(docker_client, base_image, tag, [SETUP], workdir="/repo", network=False)


FORGET = "rm -f /tmp/.swescale-state-*"  # the private index and its companions


def _from_scratch(sb) -> bytes:
    """The state computed with nothing kept from earlier snapshots."""
    sb.exec_once(FORGET)
    sb.states.forget()
    return sb.snapshot()[1]


# Changes the watcher hands to the shell function (see state_watcher's docstring).
WATCHER_DECLINES = {"symlink retargeted"}


@pytest.mark.parametrize(
    "way",
    ["small-tree", "large-tree", "watcher"],
)
def test_every_kind_of_change_snapshots_incrementally_and_restores_exactly(
    state_image, make_sandbox, tmp_path, way
):
    """Each way of computing the state, step after step: the shell function on a small
    tree, on the large-tree path, and the resident watcher. With the watcher, every step
    also equals what the shell function computes from scratch, byte for byte."""

    def sandbox():
        made = make_sandbox(state_image, cfg=SandboxConfig(state_watcher=way == "watcher"))
        # A threshold of 0 takes the large-tree way (status, then add by name) here.
        made.session.define(state.functions(0 if way == "large-tree" else state.LARGE_TREE))
        return made

    sb, target = sandbox(), sandbox()
    store = BlobStore(tmp_path)
    sb.snapshot()  # the first snapshot builds the private index (and starts the watcher)
    for name, command in STEPS:
        assert sb.execute(f"cd /repo && {command}").exit_code == 0, name
        before = sb.state_sources["watcher"]
        ref, blob = sb.snapshot()
        if way == "watcher":
            served = sb.state_sources["watcher"] > before
            assert served == (name not in WATCHER_DECLINES), f"{name}: {sb.state_sources}"
            assert sb.reference_state() == blob, f"{name}: watcher and shell differ"
        store.put(blob)
        assert sb.snapshot() == (ref, blob), f"{name}: a second look changes nothing"
        # Back to the base commit, as a fresh sandbox is (a fresh one closes the test).
        target.exec_once(f"cd /repo && git reset -q --hard && git clean -qfdx && {FORGET}")
        target.states.forget()
        target.restore(store.get(ref.sha256))
        assert target.snapshot()[0] == ref, f"{name}: restored state differs"
        assert target.exec_once(LISTING).output == sb.exec_once(LISTING).output, name
    fresh = sandbox()
    fresh.restore(store.get(ref.sha256))
    assert (
        fresh.snapshot()[0] == ref
        and fresh.exec_once(LISTING).output == sb.exec_once(LISTING).output
    )
    incremental = sb.snapshot()[1]
    assert _from_scratch(sb) == incremental
    # The agent's own index keeps what the agent staged and committed, nothing of ours.
    assert sb.exec_once("cd /repo && git diff --cached --name-only").output == ""
    assert sb.exec_once("cd /repo && git log --format=%s").output.split() == ["wip", "base"]
    text = incremental.decode("utf-8", errors="replace")
    assert "app.log" not in text and ".pyc" not in text and "GIT binary patch" in text


def test_snapshot_and_restore_use_only_the_open_session(state_image, make_sandbox):
    sb = make_sandbox(state_image)
    fresh = make_sandbox(state_image)
    # A sandbox's first snapshot opens its state watcher's exec, once; nothing after.
    sb.snapshot()
    fresh.snapshot()
    assert sb.states.watcher is not None and fresh.states.watcher is not None
    calls = []
    for target in (sb, fresh):
        api = target.client.api
        for name in ("exec_create", "get_archive", "put_archive"):
            original = getattr(api, name)

            def spy(*a, _name=name, _original=original, **kw):
                calls.append(_name)
                return _original(*a, **kw)

            setattr(api, name, spy)
    try:
        sb.execute("cd /repo && echo more >> pkg/calc.py && printf '\\x00' > new.bin")
        ref, blob = sb.snapshot()
        fresh.restore(blob)
        assert fresh.snapshot()[0] == ref
    finally:
        for target in (sb, fresh):
            for name in ("exec_create", "get_archive", "put_archive"):
                target.client.api.__dict__.pop(name, None)
    assert calls == [], f"engine calls besides the session: {calls}"


def test_changed_ignore_rules_give_the_state_a_fresh_sandbox_computes(state_image, make_sandbox):
    sb = make_sandbox(state_image)
    sb.execute("cd /repo && mkdir -p out && echo o > out/result.txt && echo t > keep.txt")
    first = sb.snapshot()[1].decode()
    assert "out/result.txt" in first
    sb.execute("cd /repo && echo 'out/' >> .gitignore")
    second = sb.snapshot()[1]
    assert b"out/result.txt" not in second and b"keep.txt" in second
    assert _from_scratch(sb) == second


def test_model_shell_options_do_not_corrupt_the_bytes(state_image, make_sandbox):
    sb = make_sandbox(state_image)
    sb.execute("cd /repo && printf '\\x00\\x01' > pkg/data.bin && echo y >> pkg/calc.py")
    expected = sb.snapshot()
    sb.states.forget()
    sb.execute("set -xvC; set -o pipefail; export GIT_DIR=/nowhere GIT_INDEX_FILE=/tmp/bogus")
    sb.execute("unset -f __swx_state; git() { echo fake; }; printf() { :; }; cd /")
    assert sb.snapshot() == expected
    assert sb.execute("echo still").output.splitlines()[-1] == "still"


def test_a_state_too_large_for_the_session_takes_the_archive_path(
    state_image, make_sandbox, monkeypatch
):
    sb = make_sandbox(state_image)
    sb.execute("cd /repo && head -c 20000 /dev/urandom > big.bin && echo z >> pkg/calc.py")
    expected = sb.snapshot()
    monkeypatch.setattr(state_reader, "STATE_LIMIT", 1000)
    sb.states.forget()
    assert sb.snapshot() == expected
    fresh = make_sandbox(state_image)
    fresh.restore(expected[1])
    assert fresh.snapshot() == expected


def test_a_patch_that_does_not_apply_is_a_clear_error(state_image, make_sandbox):
    from swescale.sandbox import SandboxError

    sb = make_sandbox(state_image)
    sb.execute("cd /repo && echo changed > docs/index.md")
    _, blob = sb.snapshot()
    other = make_sandbox(state_image)
    other.execute("cd /repo && rm docs/index.md")
    with pytest.raises(SandboxError, match="restoring the repository state failed"):
        other.restore(blob)
    assert other.execute("echo ok").output == "ok\n", "the session survives"


def test_upload_through_the_session_is_exact_and_never_run(make_sandbox):
    sb = make_sandbox()
    session = sb.session
    token = session.token
    payload = (
        b"rm -rf /tmp/victim\n touch /tmp/pwned\n\x00\xff binary \r\n"
        + f"{token} 0 /\n{token}-READY\n".encode()
        + bytes(range(256)) * 50
    )
    sb.execute("mkdir -p /tmp/victim")
    result = session.run("echo up=$__swx_up", timeout=30, upload=(payload, "/tmp/up.bin"))
    assert result.output == "up=0\n"
    assert sb.read_file("/tmp/up.bin") == payload
    # A path that cannot be opened: the payload is not sent, so nothing of it runs.
    failed = session.run(
        "echo up=$__swx_up", timeout=30, upload=(payload, "/nonexistent/dir/up.bin")
    )
    assert failed.output.endswith("up=1\n") and failed.exit_code == 0
    assert sb.execute("test -d /tmp/victim && test ! -e /tmp/pwned").exit_code == 0
    assert sb.execute("echo fine").output == "fine\n"


def test_built_images_carry_an_index_valid_in_every_sandbox(
    docker_client, base_image, make_sandbox
):
    # A layer whose workdir holds a git repository gets its index refreshed over the
    # stored files, so git does not reread every file in each new sandbox.
    tag = content_tag("swescale/test-state", "refreshed", base_image, SETUP, "refreshed-index")
    build_layer(docker_client, base_image, tag, [SETUP], workdir="/repo", network=False)
    for _ in range(2):
        sb = make_sandbox(tag)
        assert sb.exec_once("cd /repo && git diff-files --name-only").output == ""
        sb.close()


def test_an_edit_in_the_same_second_as_the_agents_index_is_seen(state_image, make_sandbox):
    # The agent's git command writes .git/index; a same-size edit in place follows within
    # the same second, so size, mtime (seconds), ctime and inode all match the entry: only
    # git's racy-entry check catches it, which needs the copy to keep the index's mtime.
    sb = make_sandbox(state_image)
    for _ in range(5):
        done = sb.execute(
            "cd /repo && git reset -q --hard && printf 'def add(a, b):\\n    return a - b\\n'"
            " > pkg/calc.py && test $(stat -c %Y .git/index) = $(stat -c %Y pkg/calc.py)"
            " && sleep 1.1"
        )
        if done.exit_code == 0:
            break
    else:
        pytest.skip("could not edit within the second of the index write")
    sb.exec_once(FORGET)
    sb.states.forget()
    assert b"+    return a - b" in sb.snapshot()[1]
