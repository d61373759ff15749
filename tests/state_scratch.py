"""The reference a snapshot is checked against: the shell function of
swescale.sandbox.state, run from scratch in a fresh exec with a private index of its own,
sharing nothing with the sandbox's session or state watcher."""

from __future__ import annotations

from swescale.sandbox import state


def shell_from_scratch(sb) -> bytes:
    """The state's bytes as the shell function computes them from nothing kept."""
    function = state.standalone("snapshot", sb.workdir, sb.base_commit, "1")
    made = sb.exec_once(
        "export TMPDIR=$(mktemp -d) && ( "
        + function.replace(state.STATE_PREFIX, "$TMPDIR/s-")
        + " ) > /tmp/scratch.patch"
    )
    assert made.exit_code == 0, made.output
    blob = state.parse_snapshot(sb._get_bytes("/tmp/scratch.patch"))
    assert blob is not None
    return blob
