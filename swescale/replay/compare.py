"""Comparing a replayed observation with the recorded one, and naming why they differ.

Pure functions over texts, tested on literal inputs:

- :func:`mask_volatile`: what legitimately varies between two faithful runs (timings,
  dates, clock times, memory addresses, temporary names, process ids, ``ls -l`` times and
  link counts, the hash of a wheel pip just built, pip's note on replay's dated index)
  replaced by placeholders. Nothing about the environment is masked: an interpreter
  version or a package path that differs is a difference, and its cause is named.
- :func:`compare_observation`: ``identical`` / ``masked`` (equal after masking, or the
  same lines in another order) / ``differs`` for one action's exit status and output.
- :func:`difference_cause`: for a pair that differs, the most likely cause, from the lines
  that differ: ``timeout``, ``network``, ``package``, ``interpreter``, ``path``,
  ``nondeterministic``, ``after_divergence`` (an earlier step already left the
  repository in another state) or ``other``.
"""

from __future__ import annotations

import difflib
import re
from typing import Literal

from pydantic import BaseModel

Fidelity = Literal["identical", "masked", "differs", "not_replayed"]
Cause = Literal[
    "timeout",
    "network",
    "package",
    "interpreter",
    "path",
    "nondeterministic",
    "after_divergence",
    "not_replayable",
    "other",
]
CAUSES: tuple[Cause, ...] = (
    "timeout",
    "network",
    "package",
    "interpreter",
    "path",
    "nondeterministic",
    "after_divergence",
    "not_replayable",
    "other",
)

_VOLATILE: list[tuple[re.Pattern[str], str]] = [
    # pip's note that it uses another index than PyPI: the dated index replay serves
    # (swescale.swebench.index_proxy) is replay's own, not the agent's environment.
    (re.compile(r"(?m)^Looking in indexes: http://swescale-index-proxy:\d+/snapshot/\S*\n?"), ""),
    # Files the dated index names: pip shows their whole URL where it shows PyPI's by name.
    (re.compile(r"http://swescale-index-proxy:\d+/resources/[^/\s]+/"), ""),
    # Whether the index offered a wheel's metadata alone (PEP 658) decides these lines:
    # PyPI does, the dated index does not; the package and version are in the next lines.
    (re.compile(r"(?m)^ *Downloading \S+\.metadata \([^)]*\)\n?"), ""),
    # ... and so does how pip indents the download of the file itself.
    (re.compile(r"(?m)^ +(Downloading \S+ \()"), r"\1"),
    # ls -l link counts: overlay file systems count a directory's links differently.
    (re.compile(r"(?m)^([bcdlps-][rwxsStT-]{9}[.+@]?)\s+\d+ "), r"\1 <N> "),
    # A wheel pip just built carries the build's timestamps in its hash.
    (re.compile(r"(Created wheel for \S+: filename=\S+ size=\d+ sha256=)[0-9a-f]{64}"), r"\1<HASH>"),
    # ls -l times: "May  6  2025" / "Apr 11 07:22"
    (re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+\d{1,2}\s+(\d{4}|\d{1,2}:\d{2})\b"), "<MTIME>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?(Z|[+-]\d{2}:?\d{2})?"), "<DATE>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(\.\d+)?\b"), "<CLOCK>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|sec|secs|seconds|second)\b"), "<TIME>"),
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "<ADDR>"),
    (re.compile(r"/tmp/(tmp|pytest-of-[^/\s]+/pytest-|pip-[a-z-]+-)[\w.-]*"), "/tmp/<TMP>"),
    (re.compile(r"\bpid[ =:]?\d+\b", re.I), "pid=<PID>"),
]  # fmt: skip

_NETWORK = re.compile(
    r"Temporary failure in name resolution|Name or service not known|Network is unreachable"
    r"|Could not resolve host|Max retries exceeded|ConnectionError|ConnectTimeout"
    r"|Failed to establish a new connection|No matching distribution found"
    r"|Could not find a version that satisfies|urlopen error|getaddrinfo failed"
    r"|Retrying \(Retry\(|SSLError|Read timed out",
    re.I,
)
_PACKAGE = re.compile(
    r"No module named|ModuleNotFoundError|ImportError|cannot import name|DeprecationWarning"
    r"|FutureWarning|Requirement already satisfied|Successfully installed|site-packages"
    r"|\bplugins: |pkg_resources",
    re.I,
)
_PACKAGE_VERSION = re.compile(r"\b([A-Za-z][\w.]*)[- ](\d+\.\d+(?:\.\w+)*)")
# A traceback frame in the interpreter's own code (frozen modules, the standard
# library): its line numbers move between patch versions (3.11.5's importlib
# `_gcd_import` is at line 1204, 3.11.2's at 1206).
_STDLIB_FRAME = re.compile(
    r'File "(?:<frozen [\w.]+>|[^"]*/lib/python\d\.\d+/(?!site-packages/|dist-packages/)[^"]*)", line \d+'
)
_INTERPRETER = re.compile(r"\bPython (\d+\.\d+(?:\.\d+)?)|\bpython(\d\.\d+)|cpython-(\d{2,3})")
_PATH = re.compile(
    r"/opt/(miniconda3|conda|venv)|/usr/(local/)?lib/python|/root/|/home/\w+"
    r"|^[bcdlps-][rwxsStT-]{9}|^total \d+|__pycache__"  # ls -l: modes, sizes, build leftovers
)
# Commands whose output order is the file system's directory order.
_WALKS = re.compile(
    r"\bfind\b|\bgrep\b[^|]*\s-[a-zA-Z]*[rR]|\bls\b[^|]*-[a-zA-Z]*U|\brglob\(|os\.walk|\bglob\("
)
_LONG_NUMBER = re.compile(r"\d{4,}")


class ObservationPair(BaseModel):
    """One action's recorded and replayed outcome."""

    recorded_output: str
    recorded_exit: int | None
    recorded_timed_out: bool = False
    replayed_output: str
    replayed_exit: int | None
    replayed_timed_out: bool = False


def mask_volatile(text: str) -> str:
    """``text`` with run-to-run noise masked and line ends normalized (trailing spaces,
    CRLF, leading and trailing blank lines)."""
    text = text.replace("\r\n", "\n")
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


def compare_observation(pair: ObservationPair) -> Fidelity:
    """``identical``: same exit status and byte-equal output; ``masked``: equal after
    :func:`mask_volatile` (a recorded timeout and a replayed one are equal whatever they
    printed: the recorded agent kept no output of a command it timed out);
    ``differs`` otherwise. A recorded exit status of None (not recorded) is not compared."""
    if pair.recorded_timed_out or pair.replayed_timed_out:
        return "masked" if pair.recorded_timed_out and pair.replayed_timed_out else "differs"
    exit_equal = pair.recorded_exit is None or pair.recorded_exit == pair.replayed_exit
    if exit_equal and pair.recorded_output == pair.replayed_output:
        return "identical"
    recorded, replayed = mask_volatile(pair.recorded_output), mask_volatile(pair.replayed_output)
    if exit_equal and recorded == replayed:
        return "masked"
    # The same lines in another order: the file system's directory order (find, ls -U,
    # os.listdir) and hash-randomized set iteration decide it, not the program.
    if exit_equal and sorted(recorded.split("\n")) == sorted(replayed.split("\n")):
        return "masked"
    return "differs"


def differing_lines(recorded: str, replayed: str) -> tuple[list[str], list[str]]:
    """The lines only the recorded side has, and those only the replayed side has (after
    masking), in order."""
    a = mask_volatile(recorded).split("\n")
    b = mask_volatile(replayed).split("\n")
    only_a: list[str] = []
    only_b: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            only_a.extend(a[i1:i2])
            only_b.extend(b[j1:j2])
    return only_a, only_b


def difference_cause(
    pair: ObservationPair, after_divergence: bool = False, command: str = ""
) -> Cause:
    """The most likely cause of a difference, first match in this order: a timeout on
    one side; network errors; a package (import errors, versions, site-packages paths);
    the interpreter (version strings, syntax errors); environment paths; output that
    differs only in order or in numbers, or comes from a walk of the file system
    (``command``: find, grep -r ...) whose order the directory order decides; an earlier
    step that already diverged in a way that changed the repository
    (``after_divergence``); else ``other``."""
    if pair.recorded_timed_out != pair.replayed_timed_out:
        return "timeout"
    only_a, only_b = differing_lines(pair.recorded_output, pair.replayed_output)
    changed = "\n".join(only_a + only_b)
    if _NETWORK.search(changed):
        return "network"
    if _versions(_INTERPRETER, only_a) != _versions(_INTERPRETER, only_b):
        return "interpreter"
    if _PACKAGE.search(changed) or _versions(_PACKAGE_VERSION, only_a) != _versions(
        _PACKAGE_VERSION, only_b
    ):
        return "package"
    if "SyntaxError" in changed or _STDLIB_FRAME.search(changed):
        return "interpreter"
    if _PATH.search(changed):
        return "path"
    if only_a and sorted(only_a) == sorted(only_b):
        return "nondeterministic"
    if _WALKS.search(command) and "terminated by signal 13" in changed:
        return "nondeterministic"  # `find -exec grep ... | head`: who gets SIGPIPE first
    if _WALKS.search(command) and not after_divergence:
        # A walk cut by `head`: another directory order gives other lines.
        return "nondeterministic"
    if (
        only_a
        and len(only_a) == len(only_b)
        and all(
            _LONG_NUMBER.sub("#", x) == _LONG_NUMBER.sub("#", y) or _items(x) == _items(y)
            for x, y in zip(only_a, only_b, strict=True)
        )
    ):
        # Long numbers, or the same items of a dict or set printed in another order
        # (string hashing is randomized per process).
        return "nondeterministic"
    if after_divergence:
        return "after_divergence"
    return "other"


def _items(line: str) -> list[str]:
    """The pieces of a line between commas and brackets, sorted: a printed collection's
    items whatever their order."""
    return sorted(piece.strip() for piece in re.split(r"[,{}\[\]()]", line))


def _versions(pattern: re.Pattern[str], lines: list[str]) -> set[str]:
    """Every version-like token ``pattern`` finds in ``lines`` (as one joined string)."""
    found: set[str] = set()
    for line in lines:
        for match in pattern.finditer(line):
            found.add("/".join(g for g in match.groups() if g))
    return found
