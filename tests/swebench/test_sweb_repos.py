"""Repository sources on real local git repositories."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import git
import pytest

from swescale.swebench.repos import RepoError, RepoSource
from swescale.types import Task

ENV = {
    "GIT_AUTHOR_NAME": "T",
    "GIT_AUTHOR_EMAIL": "t@x",
    "GIT_COMMITTER_NAME": "T",
    "GIT_COMMITTER_EMAIL": "t@x",
    "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z",
    "HOME": "/tmp",
    "PATH": "/usr/bin:/bin",
}


def make_repo(path: Path) -> list[str]:
    """A repository with three commits a day apart, an annotated tag ``v0`` on the first
    and a lightweight tag ``v-future`` on the last; returns the shas."""
    path.mkdir(parents=True)
    shas = []
    for i in range(3):
        day = {**ENV, "GIT_AUTHOR_DATE": f"2020-01-0{i + 1}T00:00:00Z"}
        day["GIT_COMMITTER_DATE"] = day["GIT_AUTHOR_DATE"]
        run = lambda *a, e=day: subprocess.run(  # noqa: E731
            ["git", *a], cwd=path, env=e, check=True, capture_output=True
        )
        if i == 0:
            run("init", "-q", "-b", "main")
        (path / "lib.py").write_text(f"VALUE = {i}\n")
        (path / f"f{i}.txt").write_text("x\n")
        run("add", "-A")
        run("commit", "-q", "-m", f"commit {i}")
        if i == 0:
            run("tag", "-a", "v0", "-m", "release 0")
        shas.append(
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True
            ).stdout.strip()
        )
    run("tag", "v-future")
    return shas


def task_at(sha: str, repo: str = "acme/lib", tid: str = "acme__lib-1") -> Task:
    return Task(id=tid, repo=repo, base_commit=sha, problem_statement="p")


@pytest.fixture()
def upstream(tmp_path: Path) -> tuple[Path, list[str]]:
    src = tmp_path / "upstream" / "acme" / "lib"
    return src, make_repo(src)


def test_cached_mirror_is_cloned_once_and_checkout_has_no_future(tmp_path: Path, upstream) -> None:
    src, shas = upstream
    source = RepoSource(tmp_path / "cache", url=str(tmp_path / "upstream") + "/{repo}")
    mirror = source.mirror("acme/lib")
    assert mirror == tmp_path / "cache" / "acme__lib.git" and (mirror / "HEAD").exists()
    assert git.Repo(mirror).bare
    # second use: no clone (a new commit upstream is not seen until needed)
    mtime = (mirror / "HEAD").stat().st_mtime_ns
    assert source.mirror("acme/lib") == mirror and (mirror / "HEAD").stat().st_mtime_ns == mtime
    work = source.checkout(task_at(shas[1]), tmp_path / "work")
    repo = git.Repo(work)
    assert repo.head.commit.hexsha == shas[1]
    assert (work / "lib.py").read_text() == "VALUE = 1\n" and not (work / "f2.txt").exists()
    assert [c.hexsha for c in repo.iter_commits()] == [shas[1], shas[0]]
    # tags not newer than the base commit are kept (setuptools_scm versions need them),
    # later ones are not, as in the official repository setup
    assert [t.name for t in repo.tags] == ["v0"] and repo.remotes == []
    assert repo.git.describe("--tags") == f"v0-1-g{shas[1][:7]}"
    assert subprocess.run(["git", "cat-file", "-e", shas[2]], cwd=work).returncode != 0
    assert not repo.is_dirty(untracked_files=True)


def test_cached_mirror_fetches_a_newer_commit(tmp_path: Path, upstream) -> None:
    src, shas = upstream
    source = RepoSource(tmp_path / "cache", url=str(tmp_path / "upstream") + "/{repo}")
    source.mirror("acme/lib")
    (src / "lib.py").write_text("VALUE = 9\n")
    subprocess.run(["git", "commit", "-qam", "later"], cwd=src, env=ENV, check=True)
    newer = git.Repo(src).head.commit.hexsha
    work = source.checkout(task_at(newer), tmp_path / "w")
    assert (work / "lib.py").read_text() == "VALUE = 9\n"


def test_repos_dir_layouts(tmp_path: Path) -> None:
    shas = make_repo(tmp_path / "src")
    layouts = tmp_path / "layouts"
    subprocess.run(
        [
            "git",
            "clone",
            "-q",
            "--mirror",
            str(tmp_path / "src"),
            str(layouts / "a" / "acme__lib.git"),
        ],
        check=True,
    )
    subprocess.run(
        ["git", "clone", "-q", str(tmp_path / "src"), str(layouts / "b" / "acme" / "lib")],
        check=True,
    )
    for sub in ("a", "b"):
        source = RepoSource(tmp_path / f"cache-{sub}", repos_dir=layouts / sub, url=None)
        data = source.checkout_tar(task_at(shas[0]))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = tar.getnames()
            assert "./lib.py" in names and "./.git/HEAD" in names
            assert tar.extractfile("./lib.py").read() == b"VALUE = 0\n"
            assert all(m.uid == 0 for m in tar.getmembers())
        assert not (tmp_path / f"cache-{sub}" / "acme__lib.git").exists()  # nothing cloned
    rooted = RepoSource(tmp_path / "c", repos_dir=layouts / "a", url=None).checkout_tar(
        task_at(shas[2]), root="repo"
    )
    with tarfile.open(fileobj=io.BytesIO(rooted)) as tar:
        assert "repo/f2.txt" in tar.getnames()
        extracted = tmp_path / "x"
        tar.extractall(extracted, filter="tar")
    assert git.Repo(extracted / "repo").head.commit.hexsha == shas[2]
    assert not git.Repo(extracted / "repo").is_dirty(untracked_files=True)


def test_missing_commit_or_repo_is_a_clear_error_naming_the_task(tmp_path: Path, upstream) -> None:
    src, shas = upstream
    source = RepoSource(tmp_path / "cache", url=str(tmp_path / "upstream") + "/{repo}")
    with pytest.raises(RepoError, match=r"task acme__lib-1: base commit 0{40} is not in acme/lib"):
        source.checkout_tar(task_at("0" * 40))
    with pytest.raises(RepoError, match="is not a commit hash"):
        source.checkout_tar(task_at("main"))
    with pytest.raises(RepoError, match="cloning .* failed"):
        source.checkout_tar(task_at(shas[0], repo="acme/nothing", tid="acme__nothing-1"))
    offline = RepoSource(tmp_path / "c2", repos_dir=tmp_path / "empty", url=None)
    with pytest.raises(RepoError, match="not found in"):
        offline.checkout_tar(task_at(shas[0]))


def test_shallow_history(tmp_path: Path, upstream) -> None:
    src, shas = upstream
    source = RepoSource(tmp_path / "cache", local={"acme/lib": src}, history_depth=1)
    work = source.checkout(task_at(shas[2]), tmp_path / "w")
    assert [c.hexsha for c in git.Repo(work).iter_commits()] == [shas[2]]


def test_a_bare_directory_without_config_is_a_mirror(tmp_path: Path) -> None:
    shas = make_repo(tmp_path / "src")
    bare = tmp_path / "mirrors" / "acme__lib.git"
    subprocess.run(["git", "clone", "-q", "--mirror", str(tmp_path / "src"), str(bare)], check=True)
    (bare / "config").unlink()  # a snapshot's objects, refs and HEAD only
    source = RepoSource(tmp_path / "cache", repos_dir=tmp_path / "mirrors", url=None)
    work = source.checkout(task_at(shas[2]), tmp_path / "w")
    assert git.Repo(work).head.commit.hexsha == shas[2]
    assert {t.name for t in git.Repo(work).tags} == {"v0", "v-future"}


def test_an_incomplete_mirror_names_the_missing_path(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shas = make_repo(src)
    big = src / "data" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(b"\0" * 4096)
    subprocess.run(["git", "add", "-A"], cwd=src, env=ENV, check=True)
    subprocess.run(["git", "commit", "-qm", "big"], cwd=src, env=ENV, check=True)
    head = git.Repo(src).head.commit.hexsha
    blob = git.Repo(src).git.rev_parse("HEAD:data/big.bin")
    subprocess.run(["git", "rm", "-q", "data/big.bin"], cwd=src, env=ENV, check=True)
    subprocess.run(["git", "commit", "-qm", "small again"], cwd=src, env=ENV, check=True)
    after = git.Repo(src).head.commit.hexsha
    mirror = tmp_path / "mirrors" / "acme__lib.git"
    subprocess.run(
        ["git", "clone", "-q", "--mirror", "--no-local", str(src), str(mirror)], check=True
    )
    # a copy with the large file cut: unpack, then drop its object
    subprocess.run(["git", "--git-dir", str(mirror), "repack", "-a", "-d", "-q"], check=True)
    for pack in (mirror / "objects" / "pack").glob("*.pack"):
        data = pack.read_bytes()
        (mirror / "objects" / "pack").joinpath(pack.name).unlink()
        pack.with_suffix(".idx").unlink()
        subprocess.run(
            ["git", "--git-dir", str(mirror), "unpack-objects", "-q"], input=data, check=True
        )
    (mirror / "objects" / blob[:2] / blob[2:]).unlink()
    source = RepoSource(tmp_path / "cache", repos_dir=tmp_path / "mirrors", url=None)
    with pytest.raises(RepoError, match=r"incomplete mirror: data/big.bin missing"):
        source.checkout(task_at(head), tmp_path / "w")
    # commits before the cut file still check out, whole
    assert source.checkout(task_at(shas[1]), tmp_path / "w2").exists()
    assert "acme__lib-1" not in source.notes
    # a later commit whose history (not tree) needs the object: the history and the
    # tags are copied without it
    work = source.checkout(task_at(after), tmp_path / "w3")
    assert git.Repo(work).head.commit.hexsha == after
    assert len(list(git.Repo(work).iter_commits())) == 5
    assert git.Repo(work).git.describe("--tags").startswith("v0-")
    assert "1 object(s) of older commits or tags missing" in source.notes["acme__lib-1"][0]
    assert "data/big.bin" in source.notes["acme__lib-1"][0]
