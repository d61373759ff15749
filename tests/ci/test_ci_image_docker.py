"""The repository's instance image: the checkout at the base commit (same sha, no other
history), the venv with the packages, the install commands run, and nothing the install
step wrote showing up in a sandbox's diff."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from swescale.ci.image import checkout_tar, ci_instance_image
from swescale.ci.repo_config import RepoConfig


def test_checkout_tar_holds_one_commit(calc_repo, tmp_path: Path) -> None:
    import io
    import tarfile

    work, base = calc_repo
    (work / "later.py").write_text("x = 2\n")
    repo = git.Repo(work)
    repo.git.add("later.py")
    repo.git.commit("-qm", "later")
    data = checkout_tar(work, base)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        owners = {m.uid for m in tar.getmembers()}
        tar.extractall(tmp_path / "out", filter="data")
    assert "repo/calc.py" in names and "repo/later.py" not in names
    clone = git.Repo(tmp_path / "out" / "repo")
    assert clone.head.commit.hexsha == base
    assert len(list(clone.iter_commits())) == 1
    assert owners == {0}


@pytest.mark.docker
def test_instance_image_hides_what_install_wrote(calc_repo, docker_client) -> None:
    from swescale.sandbox import DockerSandbox, SandboxConfig
    from swescale.swebench.images import VENV_ENV

    work, base = calc_repo
    cfg = RepoConfig(
        python_packages=["pytest"],
        install=[
            "mkdir -p build && echo artefact > build/out.txt",
            "echo '# stamped by install' >> test_calc.py",
            "python -c 'import calc, pytest' > install.log",
        ],
    )
    image = ci_instance_image(docker_client, "acme/calc", work, base, cfg)
    assert image.tag.startswith("swescale/ci-instance:acme-calc-") and image.workdir == "/repo"
    # Same recipe, same commit: found by its tag, not rebuilt.
    assert ci_instance_image(docker_client, "acme/calc", work, base, cfg).tag == image.tag
    sandbox_cfg = SandboxConfig(env={**SandboxConfig().env, **VENV_ENV})
    with DockerSandbox.create(
        docker_client, image.tag, sandbox_cfg, labels={"run": "pytest-ci-image"}
    ) as sb:
        assert sb.base_commit == base
        assert sb.execute("cat build/out.txt").output.strip() == "artefact"
        assert sb.execute("tail -1 test_calc.py").output.strip() == "# stamped by install"
        assert sb.diff() == ""
        tests = sb.execute("python -m pytest -q -p no:cacheprovider")  # pytest from the venv
        assert tests.exit_code == 0 and "2 passed" in tests.output
        sb.write_file("/repo/calc.py", "def add(a, b):\n    return a + b\n")
        diff = sb.diff()
        assert "diff --git a/calc.py b/calc.py" in diff and "build/" not in diff
        assert "install.log" not in diff and "test_calc.py" not in diff


@pytest.mark.docker
def test_a_broken_install_is_a_failed_run_with_a_comment(
    calc_repo, docker_client, tmp_path: Path
) -> None:
    import json

    from swescale.ci.bot import run_bot

    from .conftest import issues_event, write_event

    work, _ = calc_repo
    (work / ".swescale.yaml").write_text("install: ['echo no-such-tool >&2; exit 3']\n")
    repo = git.Repo(work)
    repo.git.commit("-qam", "broken install")
    event = write_event(tmp_path / "e.json", issues_event("labeled"))
    outcome = run_bot(
        event,
        work,
        overrides=["model.kind=scripted", "model.script=unused.yaml", f"runs_dir={tmp_path}"],
        client=docker_client,
    )
    assert outcome.action == "failed"
    assert "the run failed at image: building the repository's image failed" in outcome.reason
    body = json.loads((outcome.run_dir / "comment.json").read_text())["body"]
    assert "no-such-tool" in body and "The run for #7 failed; no fix is proposed." in body
    # The bot's set-up failed, not the issue: no request for more issue text.
    assert "not of the issue text" in body and "More detail in the issue text" not in body
    assert not (outcome.run_dir / "acme__calc-7" / "result.json").exists()


@pytest.mark.docker
def test_check_builds_the_image_that_run_uses(calc_repo, docker_client, tmp_path: Path) -> None:
    from swescale.ci.bot import make_plan
    from swescale.ci.check import check_repository
    from swescale.ci.events import parse_event

    from .conftest import comment_event

    work, base = calc_repo
    git.Repo(work).remote("origin").set_url("https://github.com/acme/calc.git")
    report = check_repository(work, "main", say=lambda _text: None, client=docker_client)
    assert report.ok and report.repo == "acme/calc" and report.commit == base
    plan = make_plan(
        parse_event(comment_event("/swescale")), work, overrides=[f"runs_dir={tmp_path}"]
    )
    image = ci_instance_image(
        docker_client,
        plan.request.repo,
        work,
        plan.task.base_commit,
        plan.repo_cfg,
        plan.run_cfg.images,
    )
    assert report.image == image.tag


@pytest.mark.docker
def test_ci_check_shows_its_image_builds(calc_repo, docker_client) -> None:
    """A fresh commit needs its instance image built: the command says which image it
    builds and when it is done (one line each off a terminal), then the tally."""
    import uuid

    from typer.testing import CliRunner

    from swescale.cli import app

    work, _ = calc_repo
    repo = git.Repo(work)
    repo.remote("origin").set_url("https://github.com/acme/calc.git")
    # A commit no earlier test built: its instance image is new.
    (work / "NOTES.txt").write_text(f"{uuid.uuid4()}\n")
    repo.index.add(["NOTES.txt"])
    repo.index.commit("notes")
    result = CliRunner().invoke(app, ["ci", "check", "--repo", str(work)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "building swescale/" in text and "steps)" in text
    assert "built swescale/" in text
    tally = next(line for line in result.output.splitlines() if line.startswith("images: "))
    assert "1 built in" in tally and "already there" in tally
    assert text.index("building swescale/") < text.index("built swescale/") < text.index("passed")
