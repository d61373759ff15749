"""Observation comparison and difference causes on literal texts."""

from __future__ import annotations

import pytest

from swescale.replay.compare import (
    ObservationPair,
    compare_observation,
    difference_cause,
    mask_volatile,
)


def pair(
    rec: str, rep: str, rec_exit: int | None = 0, rep_exit: int | None = 0, **kw
) -> ObservationPair:
    return ObservationPair(
        recorded_output=rec,
        recorded_exit=rec_exit,
        replayed_output=rep,
        replayed_exit=rep_exit,
        **kw,
    )


def test_identical_masked_differs() -> None:
    assert compare_observation(pair("a\n", "a\n")) == "identical"
    assert compare_observation(pair("ran in 0.52s\n", "ran in 0.31s\n")) == "masked"
    listing = "-rw-r--r-- 1 root root 30 May  6  2025 .coveragerc"
    assert (
        compare_observation(pair(listing, listing.replace("May  6  2025", "Dec  7 15:02")))
        == "masked"
    )
    assert compare_observation(pair("a\n", "b\n")) == "differs"
    assert compare_observation(pair("a\n", "a\n", 0, 1)) == "differs"
    # An exit status the record lacks is not compared.
    assert compare_observation(pair("a\n", "a\n", None, 3)) == "identical"


def test_timeouts_compare_on_both_sides() -> None:
    both = pair("", "partial", -1, 124, recorded_timed_out=True, replayed_timed_out=True)
    assert compare_observation(both) == "masked"
    one = pair("", "done", -1, 0, recorded_timed_out=True)
    assert compare_observation(one) == "differs"
    assert difference_cause(one) == "timeout"


@pytest.mark.parametrize(
    ("recorded", "replayed", "cause"),
    [
        ("ok\n", "pip: Could not find a version that satisfies the requirement x\n", "network"),
        ("ok\n", "ModuleNotFoundError: No module named 'appdirs'\n", "package"),
        # pip retried a connection the recording's network dropped.
        (
            "WARNING: Retrying (Retry(total=4)) after connection broken by 'SSLError(...)'\n",
            "",
            "network",
        ),
        (
            "platform linux -- Python 3.9.20, pytest-7.4.0\n",
            "platform linux -- Python 3.9.2, pytest-7.4.0\n",
            "interpreter",
        ),
        (
            '  File "/opt/miniconda3/envs/testbed/lib/x.py", line 3\n',
            '  File "/opt/venv/lib/x.py", line 3\n',
            "path",
        ),
        # The interpreter's own frames move between patch versions.
        (
            '  File "<frozen importlib._bootstrap>", line 1204, in _gcd_import\n',
            '  File "<frozen importlib._bootstrap>", line 1206, in _gcd_import\n',
            "interpreter",
        ),
        (
            '  File "/opt/miniconda3/lib/python3.11/json/decoder.py", line 353, in raw\n',
            '  File "/opt/miniconda3/lib/python3.11/json/decoder.py", line 355, in raw\n',
            "interpreter",
        ),
        (
            '  File "/opt/miniconda3/lib/python3.11/site-packages/x.py", line 3\n',
            '  File "/opt/miniconda3/lib/python3.11/site-packages/x.py", line 4\n',
            "package",
        ),
        ("b\na\n", "a\nb\n", "nondeterministic"),
        ("<object at 140017>\n", "<object at 140093>\n", "nondeterministic"),
        # A dict printed in another order: string hashing is randomized per process.
        (
            "result: {'b': 2, 'a': 1, 'c': 3}\n",
            "result: {'a': 1, 'c': 3, 'b': 2}\n",
            "nondeterministic",
        ),
        ("result: {'a': 1}\n", "result: {'a': 2}\n", "other"),
        ("x = 1\n", "x = 2\n", "other"),
    ],
)
def test_causes(recorded: str, replayed: str, cause: str) -> None:
    assert difference_cause(pair(recorded, replayed)) == cause


def test_after_divergence_only_when_nothing_else_explains() -> None:
    assert difference_cause(pair("x = 1\n", "x = 2\n"), after_divergence=True) == "after_divergence"
    assert difference_cause(pair("ok\n", "No module named y\n"), after_divergence=True) == "package"


def test_mask_keeps_environment_differences() -> None:
    assert mask_volatile("Python 3.9.20") != mask_volatile("Python 3.11.2")
    assert mask_volatile("a  \r\nb\n\n") == "a\nb"


def test_masks_for_file_systems_and_builds() -> None:
    assert (
        compare_observation(
            pair(
                "drwxrwxrwx 8 root root  4096 May  6  2025 .git\n",
                "drwxrwxrwx 1 root root  4096 Dec  7 16:00 .git\n",
            )
        )
        == "masked"
    )
    built = "  Created wheel for m: filename=m.whl size=45 sha256={}\n  Stored in directory: /tmp/pip-ephem-wheel-cache-{}/w\n"
    assert (
        compare_observation(pair(built.format("a" * 64, "x1"), built.format("b" * 64, "y2")))
        == "masked"
    )
    index = "Looking in indexes: http://swescale-index-proxy:8080/snapshot/2026-04-11T07:06:59Z/\n"
    assert (
        compare_observation(
            pair("Obtaining file:///testbed\n", index + "Obtaining file:///testbed\n")
        )
        == "masked"
    )
    # Another index line is the environment's own and is kept.
    other = "Looking in indexes: https://mirror.example/simple\n"
    assert compare_observation(pair("Obtaining x\n", other + "Obtaining x\n")) == "differs"


def test_line_order_alone_is_masked_but_content_is_not() -> None:
    assert (
        compare_observation(pair("tests/a.py\ntests/b.py\n", "tests/b.py\ntests/a.py\n"))
        == "masked"
    )
    assert compare_observation(pair("{'a': 1, 'b': 2}\n", "{'b': 2, 'a': 1}\n")) == "differs"


def test_replay_index_artifacts_and_log_times_are_masked() -> None:
    recorded = (
        "Collecting scipy\n"
        "  Downloading scipy-1.17.1-cp311-cp311-manylinux_2_28_x86_64.whl.metadata (62 kB)\n"
        "Downloading scipy-1.17.1-cp311-cp311-manylinux_2_28_x86_64.whl (35.3 MB)\n"
    )
    replayed = (
        "Collecting scipy\n"
        "  Downloading http://swescale-index-proxy:8080/resources/scipy/"
        "scipy-1.17.1-cp311-cp311-manylinux_2_28_x86_64.whl (35.3 MB)\n"
    )
    assert compare_observation(pair(recorded, replayed)) == "masked"
    log = "2026-04-10 06:01:02,{} :: DEBUG :: pydicom :: Reversing DICOM dictionary\n"
    assert compare_observation(pair(log.format(341), log.format(626))) == "masked"


def test_walks_of_the_file_system_are_nondeterministic() -> None:
    walked = pair("./a/x.py\n./a/y.py\n", "./b/z.py\n./a/x.py\n")
    assert difference_cause(walked, command="find . -name '*.py' | head -2") == "nondeterministic"
    assert difference_cause(walked, command="cat files.txt") == "other"
    listing = pair(
        "drwxr-xr-x 2 root root 4096 May  6  2025 src\n",
        "drwxrwxrwx 2 root root 4096 May  6  2025 src\n",
    )
    assert difference_cause(listing, command="ls -la") == "path"


def test_the_fidelity_table_fits_80_columns_with_the_share_kept() -> None:
    from rich.console import Console

    from swescale.commands.replay import _print_table
    from swescale.scaling.imported import RepoSummary

    rows = [
        RepoSummary(
            "marshmallow-code/marshmallow",
            4,
            0,
            467,
            435,
            24,
            8,
            0,
            4,
            65.4,
            3101.0,
            {"interpreter": 5},
        ),
        RepoSummary("pyvista/pyvista", 0, 2),
    ]
    console = Console(width=80, record=True)
    _print_table(console, rows)
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    row = next(line for line in text.splitlines() if "marshmallow-code/marshmallow" in line)
    assert "98.3%" in row and "4/4" in row  # (435 + 24) / 467 identical or masked
    assert "pyvista/pyvista" in text and "interpreter 5" in text
