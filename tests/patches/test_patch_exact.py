"""Patch text that carries the bytes: a real repository state with files that are not
UTF-8 (new, changed, deleted, renamed, a symlink, a path that is not UTF-8), turned into
text by ``exact_patch`` and applied by ``git apply`` to a fresh clone: the same tree."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from swescale.patches import exact_patch, git_blob_id, needed_objects
from swescale.patches.exact import literal_hunk, parse_cat_file_batch, quote_path, unquote_path


def git(repo: Path, *args: str, env: dict[str, str] | None = None, data: bytes = b"") -> bytes:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        input=data,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return done.stdout


def state_of(repo: Path, base: str, tmp: Path) -> tuple[bytes, str]:
    """The state as the sandbox computes it (a private index, ``git add -A``, the binary
    diff with full object ids), and the tree it stands for."""
    env = {"GIT_INDEX_FILE": str(tmp / "state.index")}
    git(repo, "read-tree", base, env=env)
    git(repo, "add", "-A", env=env)
    blob = git(
        repo,
        "-c",
        "core.quotepath=off",
        "-c",
        "diff.renames=true",
        "diff",
        "--cached",
        "--binary",
        "--full-index",
        "--no-color",
        base,
        env=env,
    )
    return blob, git(repo, "write-tree", env=env).decode().strip()


def objects_of(repo: Path, oids: list[str]) -> dict[str, bytes]:
    return parse_cat_file_batch(
        git(repo, "cat-file", "--batch", data="".join(f"{o}\n" for o in oids).encode())
    )


@pytest.fixture
def changed(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "latin.py").write_bytes(b'x = "\xff\xfe"\n')
    (repo / "plain.py").write_bytes(b"a\nb\nc\nd\ne\nf\ng\n")
    (repo / "gone.py").write_bytes(b'y = "\xe9"\n')
    (repo / "old_name.py").write_bytes(b"".join(b"%d\n" % i for i in range(12)) + b'z = "\xe9"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").decode().strip()
    (repo / "latin.py").write_bytes(b'x = "\xff\xfe\xfd"\nok = 1\n')
    (repo / "plain.py").write_bytes(b"a\nb\nc\nD\ne\nf\ng\n")
    (repo / "gone.py").unlink()
    os.rename(repo / "old_name.py", repo / "new_name.py")
    (repo / "new_name.py").write_bytes(b"".join(b"%d\n" % i for i in range(12)) + b'z = "\xe8"\n')
    (repo / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"caf\xe9\n")
    (repo / os.fsdecode(b"name_\xff.py")).write_bytes(b"plain = 1\n")
    os.symlink(os.fsdecode(b"target_\xff"), repo / "link")
    (repo / "data.bin").write_bytes(b"\x00\x01\xff")
    return repo, base


def test_the_text_applies_to_the_same_tree(changed, tmp_path: Path) -> None:
    repo, base = changed
    blob, tree = state_of(repo, base, tmp_path)
    with pytest.raises(UnicodeDecodeError):
        blob.decode("utf-8")
    result = exact_patch(blob, objects_of(repo, needed_objects(blob)))
    assert result.exact and not result.inexact
    assert set(result.binary) == {
        "gone.py",
        "latin.py",
        "link",
        "new_name.py",
        quote_path(b"caf\xe9.txt"),
    }
    # Valid in any JSON record, and what comes back out is what went in.
    text = json.loads(json.dumps({"patch": result.text}))["patch"]
    assert text == result.text and "\ufffd" not in text
    assert '+++ "b/name_\\377.py"' in text  # text hunks kept, the path C-quoted
    assert "-d\n+D\n" in text  # the UTF-8 file is untouched
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    git(clone, "checkout", "-q", base)
    (tmp_path / "p.diff").write_text(text, encoding="utf-8")
    git(clone, "apply", "--verbose", str(tmp_path / "p.diff"))
    git(clone, "add", "-A")
    assert git(clone, "write-tree").decode().strip() == tree
    assert (clone / "latin.py").read_bytes() == b'x = "\xff\xfe\xfd"\nok = 1\n'


def test_utf8_states_are_their_own_text() -> None:
    blob = b"diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+\xc3\xa9\n"
    assert needed_objects(blob) == []
    assert exact_patch(blob).text == blob.decode("utf-8")


def test_a_literal_is_what_git_writes(tmp_path: Path) -> None:
    """git writes a new binary file as one ``literal`` (zlib at its default level, its
    base85 lines): ours is byte for byte the same."""
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    data = bytes(range(256)) * 3
    (repo / "f.bin").write_bytes(data)
    git(repo, "add", "-A")
    diff = git(repo, "diff", "--cached", "--binary", "--full-index")
    assert literal_hunk(data) in diff
    assert git_blob_id(data) in diff.decode()


def test_missing_objects_are_said(changed, tmp_path: Path) -> None:
    repo, base = changed
    blob, _ = state_of(repo, base, tmp_path)
    result = exact_patch(blob, {})
    assert not result.exact and "latin.py" in result.inexact
    assert "latin.py" in result.note() and "U+FFFD" in result.note()
    # Contents that do not hash to their id are not taken either.
    wanted = needed_objects(blob)
    forged = {oid: b"something else" for oid in wanted}
    assert not exact_patch(blob, forged).exact


def test_paths_quote_and_unquote() -> None:
    for raw in (b"plain.py", b"caf\xe9.txt", b'quo"te\\d.py', b"tab\there", "é.py".encode()):
        quoted = quote_path(raw)
        quoted.encode("utf-8")
        assert unquote_path(quoted.encode()) == raw
    assert quote_path("é.py".encode()) == "é.py"
    assert quote_path(b"caf\xe9.txt") == '"caf\\351.txt"'
