"""The image and sandbox commands as a user meets them: ``sandbox shell`` opens in the
repository, ``images list`` shows tags to copy and when each was last used, and
``images prune --dry-run`` lists what would go and removes nothing."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from swescale.cli import app

pytestmark = [pytest.mark.docker]
TASK = "swescale-mini__slugkit-1"


def test_sandbox_shell_opens_in_the_repository(mini_by_id, mini_images, docker_client) -> None:
    image = mini_images(mini_by_id[TASK])
    tag = image.tag if hasattr(image, "tag") else image
    runner = CliRunner()
    result = runner.invoke(
        app, ["sandbox", "shell", tag], input="pwd\ngit status --short | wc -l\nexit\n"
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"from {tag} in /testbed" in text
    assert "/testbed$ /testbed" in text  # the prompt, then what pwd printed
    elsewhere = runner.invoke(app, ["sandbox", "shell", tag, "--workdir", "/tmp"], input="pwd\n")
    assert elsewhere.exit_code == 0 and "/tmp$ /tmp" in " ".join(elsewhere.output.split())


def test_images_list_shows_copyable_tags_and_last_use(
    mini_by_id, mini_images, docker_client
) -> None:
    from swescale.sandbox import DockerSandbox, SandboxConfig

    image = mini_images(mini_by_id[TASK])
    tag = image.tag if hasattr(image, "tag") else image
    from swescale.sandbox import image_cache

    image_cache._noted.clear()  # record this start even if the process recorded one lately
    with DockerSandbox.create(docker_client, tag, SandboxConfig(workdir="/testbed")):
        pass
    result = CliRunner().invoke(app, ["images", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith(tag))
    # The whole tag on one line (copy it into `sandbox shell`), then when it was used.
    assert line.split()[0] == tag
    assert re.fullmatch(r"\d\d-\d\d", line.split()[1])  # a date (this year: MM-DD), not "-"
    assert "open one with `swescale sandbox shell TAG`" in " ".join(result.output.split())


def test_images_prune_dry_run_removes_nothing(docker_client) -> None:
    from swescale.sandbox.images import image_exists

    result = CliRunner().invoke(app, ["images", "prune", "--dry-run", "--limit-gb", "0"])
    assert result.exit_code == 0, result.output
    listed = [
        line.split()[2] for line in result.output.splitlines() if line.startswith("would remove ")
    ]
    assert listed, result.output
    # Every image it would remove is still there (other jobs' images come and go: only
    # the listed ones are checked).
    assert all(image_exists(docker_client, tag) for tag in listed)
    text = " ".join(result.output.split())
    assert "nothing removed (--dry-run)" in text and f"{len(listed)} image(s) would remove" in text
