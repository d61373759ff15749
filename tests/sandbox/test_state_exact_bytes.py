"""A candidate patch carries the agent's bytes (SWE-agent #697): files with bytes that are
not UTF-8 reach ``diff()`` as git binary patches, the text survives a JSON record, and
the official apply routine writes the same bytes back. Both ways of reading the state."""

from __future__ import annotations

import json

import pytest

from swescale.patches import apply_patch
from swescale.sandbox import SandboxConfig, build_layer, content_tag

pytestmark = pytest.mark.docker

SETUP = (
    "cd /repo && git init -q && mkdir -p pkg"
    " && printf 'NAME = \"caf\\xc3\\xa9\"\\n' > pkg/names.py"
    " && printf 'OLD = \"\\xe9t\\xe9\"\\n' > pkg/latin.py"
    " && printf 'def add(a, b):\\n    return a + b\\n' > pkg/calc.py"
    " && git add -A && git -c user.name=b -c user.email=b@example.com commit -qm base"
)
# What the agent does: a new file and a changed one with bytes that are not UTF-8, a file
# with a name that is not UTF-8, and an ordinary edit.
AGENT = (
    "cd /repo && printf 'x = \"\\xff\\xfe\"\\n' > pkg/raw.py"
    " && printf 'OLD = \"\\xe9t\\xe9 \\xe0 Paris\"\\n' > pkg/latin.py"
    " && printf 'y = 1\\n' > pkg/$(printf 'n\\xe4me.py')"
    " && sed -i 's/a + b/a - b/' pkg/calc.py"
)
LISTING = "cd /repo && find pkg -type f -print0 | sort -z | xargs -0 sha1sum"


@pytest.fixture(scope="module")
def exact_image(docker_client, base_image):
    tag = content_tag("swescale/test-exact", "v", base_image, SETUP)
    return build_layer(docker_client, base_image, tag, [SETUP], workdir="/repo", network=False)


@pytest.mark.parametrize("watcher", [True, False], ids=["watcher", "shell"])
def test_diff_carries_bytes_that_are_not_utf8(exact_image, make_sandbox, watcher):
    cfg = SandboxConfig(state_watcher=watcher)
    agent = make_sandbox(exact_image, cfg=cfg)
    agent.snapshot()  # the watcher starts with the first state, as in a trajectory
    assert agent.execute(AGENT).exit_code == 0
    _, blob = agent.snapshot()
    # The watcher's new objects live on its tmpfs: diff() must find them there too.
    assert (agent.state_sources["watcher"] >= 1) == watcher
    assert b'x = "\xff\xfe"' in blob  # the recorded state holds the real bytes
    patch = agent.diff()
    # Before: 'x = "\ufffd\ufffd"' in the patch, and other bytes on disk after applying it.
    assert "\ufffd" not in patch and "GIT binary patch" in patch
    assert agent.patch_notes == []
    assert "+    return a - b" in patch  # text stays text
    recorded = json.loads(json.dumps({"patch": patch}))["patch"]

    graded = make_sandbox(exact_image, cfg=SandboxConfig(state_watcher=False))
    result = apply_patch(graded, recorded, "/repo")
    assert result.strategy == "git apply --verbose", result.log
    assert graded.exec_once(LISTING).output == agent.exec_once(LISTING).output
    assert graded.read_file("pkg/raw.py") == b'x = "\xff\xfe"\n'
    # The state taken from the patch's tree is the agent's state, byte for byte.
    assert graded.snapshot()[1] == blob
