"""Pure parts of the sandbox package, on literal inputs (no Docker)."""

from __future__ import annotations

import pytest

from swescale.record import BlobStore
from swescale.sandbox import SandboxError, content_tag, host_apt_mirror
from swescale.sandbox.stream import CappedOutput


def test_capped_output_keeps_head_and_tail_and_marks_the_cut():
    out = CappedOutput(limit=10)
    for chunk in (b"0123", b"456789", b"abcdefghij" * 100, b"XYZ!!"):
        out.add(chunk)
    text = out.text()
    assert out.truncated and text.startswith("01234") and text.endswith("XYZ!!")
    assert f"[... {out.total - 10} bytes of output cut ...]" in text


def test_capped_output_small_output_untouched_and_bad_bytes_replaced():
    out = CappedOutput(limit=100)
    out.add(b"ok \xff\xfe done")
    assert not out.truncated
    assert out.text() == "ok \ufffd\ufffd done"


def test_mirror_from_deb822_sources(tmp_path):
    (tmp_path / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\n"
    )
    assert host_apt_mirror([str(tmp_path)]) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path):
    listing = tmp_path / "sources.list"
    listing.write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"
    )
    assert host_apt_mirror([str(listing)]) == "http://one.example/debian"


def test_mirror_missing_is_a_clear_error(tmp_path):
    (tmp_path / "other.list").write_text("deb https://packages.example/apt cloud-sdk main\n")
    with pytest.raises(SandboxError, match=r"images\.mirror"):
        host_apt_mirror([str(tmp_path)])


def test_content_tag_changes_exactly_with_the_recipe():
    a = content_tag("swescale/env", "x", ["pip install a"], "3.11")
    assert a == content_tag("swescale/env", "x", ["pip install a"], "3.11")
    assert a != content_tag("swescale/env", "x", ["pip install b"], "3.11")
    assert a.startswith("swescale/env:x-")


def test_blob_store_round_trip_and_corruption(tmp_path):
    store = BlobStore(tmp_path)
    ref = store.put(b"diff --git a/x b/x\n")
    assert store.put(b"diff --git a/x b/x\n") == ref and ref.sha256 in store
    assert store.get(ref.sha256) == b"diff --git a/x b/x\n"
    store.path(ref.sha256).write_bytes(b"tampered")
    with pytest.raises(ValueError, match="corrupt"):
        store.get(ref.sha256)
    with pytest.raises(KeyError):
        store.get("0" * 64)


def test_state_bytes_are_found_between_their_markers_whatever_surrounds_them():
    from swescale.sandbox.state import parse_snapshot

    patch = b"diff --git a/x b/x\n+\x00SWX not a marker\n"
    traced = b"+ eval '__swx_state snapshot'\n+ printf 'SWX\\0PATCH\\n'\n"
    data = traced + b"SWX\0PATCH\n" + patch + b"SWX\0END\n" + b"+ builtin printf x\n"
    assert parse_snapshot(data) == patch
    assert parse_snapshot(b"SWX\0PATCH\nSWX\0END\n") == b""
    assert parse_snapshot(b"+ trace\nSWX\0UNCHANGED\n") is None
    with pytest.raises(ValueError, match="no state"):
        parse_snapshot(b"SWX\0PATCH\ncut short")


def test_raw_output_keeps_bytes_exactly_and_says_when_it_stopped():
    from swescale.sandbox.stream import RawOutput

    out = RawOutput(limit=6)
    out.add(b"\x00\xff\n")
    assert not out.truncated and bytes(out.data) == b"\x00\xff\n"
    out.add(b"abcdef")
    assert out.truncated and bytes(out.data) == b"\x00\xff\nabc" and out.total == 9


def test_container_settings_lock_a_sandbox_down_by_default():
    from swescale.sandbox.config import DEFAULT_ENV, SandboxConfig
    from swescale.sandbox.container import container_settings

    settings = container_settings(SandboxConfig(memory="1g", pids_limit=64, cpus=0.5), {"run": "r"})
    assert settings["network_mode"] == "none" and "dns_opt" not in settings
    assert settings["cap_drop"] == ["ALL"] and settings["security_opt"] == ["no-new-privileges"]
    assert settings["privileged"] is False
    assert (settings["mem_limit"], settings["memswap_limit"]) == ("1g", "1g")  # no swap
    assert (settings["pids_limit"], settings["nano_cpus"]) == (64, 500_000_000)
    # Nothing of the host: no mounts, no devices (the engine's socket included), and an
    # environment that is the allow-list alone.
    assert not {"volumes", "mounts", "devices", "volumes_from"} & settings.keys()
    assert settings["environment"] == DEFAULT_ENV
    labels = settings["labels"]
    assert labels["swescale"] == "1" and labels["swescale.run"] == "r"
    assert labels["swescale.owner_pid"] == str(__import__("os").getpid())
    # Network only when configured: the default bridge, or a named network that answers
    # unknown names at once.
    assert container_settings(SandboxConfig(network=True))["network_mode"] == "bridge"
    named = container_settings(SandboxConfig(network=True, network_name="grading-net"))
    assert named["network_mode"] == "grading-net" and named["dns_opt"] == [
        "timeout:1",
        "attempts:1",
    ]


def test_label_filters_select_all_one_run_or_one_owner():
    from swescale.sandbox.owner import label_filters, owned_labels

    assert label_filters() == ["swescale=1"]
    assert label_filters("r1") == ["swescale=1", "swescale.run=r1"]
    assert label_filters(None, owner_pid="42") == ["swescale=1", "swescale.owner_pid=42"]
    labels = owned_labels({"task": "t-1", "build": 3})  # values become strings
    assert labels["swescale.task"] == "t-1" and labels["swescale.build"] == "3"
    assert labels["swescale.install"] and labels["swescale.owner_start"]
