"""The resident state watcher: what it hands back to the shell function, how it recovers,
and that its pure parts write what git writes. Every state is checked byte for byte
against the shell function computed from scratch in a fresh exec."""

from __future__ import annotations

import subprocess

import pytest

from swescale.sandbox import build_layer, content_tag, state_reader, state_watcher, watch

SETUP = (
    "cd /repo && git init -q && mkdir -p src/pkg build docs"
    " && printf 'a = 1\\n' > src/pkg/a.py && printf 'b = 2\\n' > src/pkg/b.py"
    " && printf 'build/\\n*.log\\n' > .gitignore && echo kept > build/tracked.txt"
    " && echo doc > docs/index.md && git add -A && git add -f build/tracked.txt"
    " && git -c user.name=b -c user.email=b@example.com commit -qm base"
)


@pytest.fixture(scope="module")
def repo_image(docker_client, base_image):
    tag = content_tag("swescale/test-watcher", "v", base_image, SETUP)
    return build_layer(docker_client, base_image, tag, [SETUP], workdir="/repo", network=False)


def step(sb, command: str) -> tuple[bytes, str]:
    """Run ``command``, snapshot: (the state, which way it was read)."""
    assert sb.execute(f"cd /repo && {command}").exit_code == 0, command
    before = dict(sb.state_sources)
    blob = sb.snapshot()[1]
    way = next(k for k, v in sb.state_sources.items() if v > before.get(k, 0))
    assert blob == sb.reference_state(), command
    return blob, way


@pytest.mark.docker
def test_ignore_rules_are_gits_and_the_agents_index_is_not_ours(repo_image, make_sandbox):
    sb = make_sandbox(repo_image)
    sb.snapshot()
    blob, way = step(sb, "echo more >> build/tracked.txt && echo x > build/new.txt")
    assert way == "watcher" and b"build/tracked.txt" in blob and b"build/new.txt" not in blob
    # A new ignored directory, and an ignored file the agent force-adds to its own index.
    blob, way = step(
        sb,
        "mkdir -p out/x && echo l > out/x/run.log && echo f > forced.log"
        " && git add -f forced.log && echo n > out/x/new.py",
    )
    assert way == "watcher" and b"forced.log" not in blob and b"out/x/new.py" in blob
    assert b"run.log" not in blob


@pytest.mark.docker
def test_a_moved_directory_goes_to_the_shell_then_the_watcher_follows_it(repo_image, make_sandbox):
    sb = make_sandbox(repo_image)
    sb.snapshot()
    # A directory of the image's layers: overlayfs cannot rename it, so `mv` copies and
    # deletes, which the watcher follows like any other change.
    _, way = step(sb, "mv src/pkg src/moved")
    assert way == "watcher"
    # A directory made in the container is renamed: inotify's names went stale, so the
    # shell function takes this one and the watcher is reloaded.
    step(sb, "mkdir -p work/a && echo 1 > work/a/f.py")
    _, way = step(sb, "mv work done")
    assert way == "session"
    # Edits in the moved directory and in a new one below it are seen under their new names.
    blob, way = step(sb, "echo c >> done/a/f.py && mkdir done/sub && echo s > done/sub/s.py")
    assert way == "watcher" and b"done/sub/s.py" in blob and b"work/" not in blob
    blob, way = step(sb, "rm -r done/sub && echo back > done/sub")
    assert way == "watcher" and b"done/sub/s.py" not in blob and b"+back" in blob


@pytest.mark.docker
def test_rule_changes_and_background_writes(repo_image, make_sandbox):
    sb = make_sandbox(repo_image)
    sb.snapshot()
    _, way = step(sb, "echo n > notes.txt && echo 'notes.txt' >> .gitignore")
    assert way == "session"
    # A write after the command returned, by a process it left behind.
    sb.execute("cd /repo && (sleep 0.5; echo late >> docs/index.md) >/dev/null 2>&1 &")
    sb.execute("sleep 1")
    blob, way = step(sb, "true")
    assert way == "watcher" and b"+late" in blob


@pytest.mark.docker
def test_a_killed_watcher_loses_nothing_and_is_started_again(repo_image, make_sandbox):
    sb = make_sandbox(repo_image)
    sb.snapshot()
    first = sb.states.watcher
    assert first is not None
    sb.execute("pkill -9 -f SWX-END- ; sleep 0.2")
    blob, way = step(sb, "echo gone >> src/pkg/a.py")
    assert way == "session" and b"+gone" in blob
    blob, way = step(sb, "echo again >> src/pkg/b.py")
    assert way == "watcher" and sb.states.watcher is not first and b"+again" in blob


@pytest.mark.docker
def test_without_a_watcher_snapshots_stay_right(repo_image, make_sandbox, monkeypatch):
    monkeypatch.setattr(watch, "PYTHON", "/nonexistent/python3")
    sb = make_sandbox(repo_image)
    for command in ("true", "echo x >> docs/index.md", "rm src/pkg/b.py", "true"):
        step(sb, command)
    assert sb.states.watcher is None
    assert sb.state_sources["watcher"] == 0
    # It stopped trying after a few starts: each one costs an exec.
    assert sb.states.watcher_failures == state_reader.WATCHER_TRIES


@pytest.mark.docker
def test_a_state_over_the_limit_takes_the_archive(repo_image, make_sandbox, monkeypatch):
    sb = make_sandbox(repo_image)
    sb.snapshot()
    monkeypatch.setattr(state_reader, "STATE_LIMIT", 100)
    blob, way = step(sb, "seq 1 200 > big.txt")
    assert way == "archive" and len(blob) > 100


# ---------------------------------------------------------------- pure parts


def test_junk_is_the_shell_functions_junk():
    junk = [
        b"__pycache__/m.pyc",
        b"a/__pycache__/m.py",
        b"x.pyc",
        b"a/b.pyo",
        b".pytest_cache/v",
        b"a/.pytest_cache/v/x",
        b"pkg.egg-info/PKG-INFO",
        b"a/.egg-info/x",
    ]
    kept = [b"pycache.py", b"a/pyc", b"egg-info", b"a/x.egg-info", b"a.pyc.txt", b"__pycache__"]
    assert all(state_watcher.is_junk(p) for p in junk)
    assert not any(state_watcher.is_junk(p) for p in kept)


def test_trees_are_written_as_git_writes_them(tmp_path):
    git = ["git", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    blob = subprocess.run(
        [*git, "hash-object", "-w", "--stdin"], input=b"x\n", capture_output=True, check=True
    ).stdout.strip()
    empty_tree = subprocess.run(
        [*git, "mktree"], input=b"", capture_output=True, check=True
    ).stdout.strip()
    # Names that sort differently as files and as directories ("a.b" < "a/" < "a0").
    records = [
        (b"a0", b"100644", blob, False),
        (b"a", b"40000", empty_tree, True),
        (b"a.b", b"100755", blob, False),
        (b"l", b"120000", blob, False),
    ]
    listing = b"".join(
        (b"040000 tree " if is_tree else mode + b" blob ") + oid + b"\t" + name + b"\n"
        for name, mode, oid, is_tree in records
    )
    expected = subprocess.run(
        [*git, "mktree", "--missing"], input=listing, capture_output=True, check=True
    ).stdout.strip()
    watcher = state_watcher.Watcher.__new__(state_watcher.Watcher)
    watcher.objects = str(tmp_path / ".git" / "objects")
    assert watcher.write_tree(list(records)) == expected
    shown = subprocess.run(
        [*git, "cat-file", "-p", expected.decode()], capture_output=True, check=True
    ).stdout
    assert shown.count(b"\n") == 4  # the object is in the store and git reads it


def test_raw_diff_and_tree_listing_parse():
    raw = (
        b":100644 100755 " + b"1" * 40 + b" " + b"2" * 40 + b" M\0a b.py\0"
        b":000000 100644 " + b"0" * 40 + b" " + b"3" * 40 + b" A\0new\0"
        b":100644 000000 " + b"4" * 40 + b" " + b"0" * 40 + b" D\0gone\0"
    )
    assert state_watcher.parse_raw_diff(raw) == [
        (b"M", b"a b.py", b"100755", b"2" * 40),
        (b"A", b"new", b"100644", b"3" * 40),
        (b"D", b"gone", b"000000", b"0" * 40),
    ]
    files, trees = state_watcher.parse_ls_tree(
        b"040000 tree " + b"5" * 40 + b"\tsrc\x00100644 blob " + b"6" * 40 + b"\tsrc/a.py\0"
    )
    assert files == {b"src/a.py": (b"100644", b"6" * 40)} and trees == {b"src": b"5" * 40}
    with pytest.raises(state_watcher.Unsupported):
        state_watcher.parse_ls_tree(b"160000 commit " + b"7" * 40 + b"\tvendor\0")


# Sequences where an earlier hand-over or a rule outside the work tree could leave the
# watcher's model behind git's; every step must still equal the shell function.
HARD_CASES = {
    "a hand-over leaves no directory unwatched": [
        "mkdir -p new/a new/b new/c && ln -s x new/b/link && echo 1 > new/a/f.py"
        " && echo 1 > new/c/f.py",
        "echo 2 >> new/a/f.py && echo 2 >> new/c/f.py",
    ],
    "a nested repository stays a repository": [
        "mkdir dep && cd dep && git init -q && echo x > f.txt && git add f.txt"
        " && git -c user.name=a -c user.email=a@b commit -qm x",
        "echo more > dep/g.txt && echo more >> dep/f.txt",
    ],
    "a new directory brings its own rules": [
        "mkdir sub && echo x > sub/a.txt",
        "rm -r sub && mkdir sub && printf 'b.txt\\n' > sub/.gitignore && echo y > sub/b.txt",
    ],
    "the repository's exclude file": [
        "echo x > debug.txt",
        "echo '*.tmp' >> .git/info/exclude && echo y > run.tmp",
    ],
    "junk names on the wrong kind of file": [
        "mkdir -p n1 n2/foo.pyc && echo e > n1/x.egg-info && echo p > n1/__pycache__"
        " && echo q > n2/foo.pyc/bar.txt",
    ],
    "the repository's diff order": [
        "printf 'docs/index.md\\n' > /tmp/order && git config diff.orderFile /tmp/order"
        " && echo a >> src/pkg/a.py && echo d >> docs/index.md",
    ],
}


@pytest.mark.docker
@pytest.mark.parametrize("case", list(HARD_CASES))
def test_hard_cases_equal_the_shell_function(repo_image, make_sandbox, case):
    sb = make_sandbox(repo_image)
    sb.snapshot()
    for command in HARD_CASES[case]:
        step(sb, command)
    step(sb, "echo after >> src/pkg/b.py")


@pytest.mark.docker
def test_the_reference_state_needs_a_repository(make_sandbox):
    from swescale.sandbox import SandboxError

    sb = make_sandbox(base_commit="")
    with pytest.raises(SandboxError, match="no git repository"):
        sb.reference_state()
    sb.base_commit = "0" * 40  # a repository that is not there
    with pytest.raises(SandboxError, match="reference state failed"):
        sb.reference_state()


@pytest.mark.docker
def test_the_watchers_objects_are_emptied_past_their_budget(repo_image, make_sandbox, monkeypatch):
    monkeypatch.setattr(watch, "OBJECT_BUDGET", 1)  # past it after any write
    sb = make_sandbox(repo_image)
    sb.snapshot()
    # Four versions of a file that compresses to about 420 KiB each.
    ways = [
        step(sb, f"seq 1 {200000 + i} > big.txt && echo {i} >> src/pkg/a.py")[1] for i in range(4)
    ]
    assert "session" in ways and "watcher" in ways  # emptied, then served again
    # What is left is at most one version of it, not all four (about 1,700 KiB).
    left = sb.exec_once("du -sk /dev/shm/.swescale-objects | cut -f1").output.strip()
    assert int(left) < 900, left
