"""What a patch's files are, by path and by the lines it changes (pure).

``changed_test_setup`` finds the changes that alter how the tests run rather than the
program they test: pytest's ``conftest.py`` (hooks there can rewrite any outcome, as in
SWE-bench issue #437), pytest settings (``pytest.ini``; the ``[pytest]`` section of
``tox.ini``, ``[tool:pytest]`` of ``setup.cfg``, ``[tool.pytest.ini_options]`` of
``pyproject.toml``), test plugins (``pytest_plugins``, the ``pytest11`` entry point),
what Python runs at start-up (``sitecustomize.py``, ``usercustomize.py``, ``.pth``
files), and the runner the task's test command names (``tests/runtests.py``,
``bin/test``; ``tox.ini`` whole when the command is ``tox``). The official harness
grades such a patch like any other; the grading result lists these paths so a reader
knows the tests' verdict may be the patch's own doing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from swescale.patches.parse import parse_patch

# Settings files and the sections of them that hold pytest's settings.
_PYTEST_SECTIONS = {
    "pytest.ini": None,  # every line
    ".pytest.ini": None,
    "tox.ini": ("pytest",),
    "setup.cfg": ("tool:pytest",),
    "pyproject.toml": ("tool.pytest.ini_options", "tool.pytest"),
}
_START_UP = ("sitecustomize.py", "usercustomize.py")
# pytest's ini keys (``pytest --help``, [pytest] ini-options), recognised on a changed line
# whose section the hunk does not show.
_PYTEST_KEYS = re.compile(
    r"^\s*(addopts|python_files|python_classes|python_functions|testpaths|norecursedirs|"
    r"pytest_plugins|required_plugins|confcutdir|usefixtures|xfail_strict|filterwarnings|"
    r"minversion|rootdir|console_output_style|doctest_optionflags|doctest_glob|"
    r"empty_parameter_set_mark|junit_family|log_cli|tmp_path_retention_policy|"
    r"cache_dir|consider_namespace_packages)\s*[=:]"
)
_PLUGIN_LINE = re.compile(r"\bpytest_plugins\b|\bpytest11\b")
_SECTION = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+\s*$")
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_RUNNERS = {"python", "python3", "env", "bash", "sh", "exec", "timeout"}


@dataclass
class _File:
    path: str
    # (changed line without its +/-, the last section header seen in its hunk or None)
    changes: list[tuple[str, str | None]] = field(default_factory=list)


def _files(patch: str) -> Iterator[_File]:
    """The files of a unified diff with their changed lines (and the section header
    each follows inside its hunk). Tolerant: what it cannot read it skips."""
    current: _File | None = None
    section: str | None = None
    old_left = new_left = 0  # lines of the current hunk still to come
    lines = patch.replace("\r\n", "\n").split("\n")
    for at, line in enumerate(lines):
        if old_left > 0 or new_left > 0:
            kind, text = line[:1] or " ", line[1:]
            if kind == "\\":
                continue  # "\ No newline at end of file"
            # A file header where a miscounted hunk said more lines would come.
            header_next = line.startswith("--- ") and [x[:3] for x in lines[at + 1 : at + 3]] == [
                "+++",
                "@@ ",
            ]
            if kind not in " +-" or header_next:
                old_left = new_left = 0  # a miscounted hunk ended early
            else:
                old_left -= kind in " -"
                new_left -= kind in " +"
                header = _SECTION.match(text)
                if kind in "+-" and current is not None:
                    current.changes.append((text, section))
                if header and kind != "-":
                    section = header.group(1).strip().strip("\"'")
                continue
        if line.startswith("diff --git "):
            if current is not None:
                yield current
            current = _File(_diff_git_path(line[len("diff --git ") :]))
        elif line.startswith("--- ") and (current is None or current.changes):
            if current is not None:
                yield current
            current = _File(_strip(line[4:], "a/") or "")
        elif line.startswith("+++ ") and current is not None:
            current.path = _strip(line[4:], "b/") or current.path
        elif (hunk := _HUNK.match(line)) and current is not None:
            old_left = int(hunk.group(1)) if hunk.group(1) is not None else 1
            new_left = int(hunk.group(2)) if hunk.group(2) is not None else 1
            section = None
    if current is not None:
        yield current


def _strip(name: str, prefix: str) -> str | None:
    name = name.split("\t")[0].strip()
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1]
    if name == "/dev/null":
        return None
    return name[len(prefix) :] if name.startswith(prefix) else name


def _diff_git_path(rest: str) -> str:
    rest = rest.strip()
    if rest.startswith('"'):
        end = rest.find('"', 1)
        return _strip(rest[: end + 1], "a/") or ""
    half = (len(rest) - 1) // 2
    if rest[half : half + 3] == " b/" and rest[2:half] == rest[half + 3 :]:
        return rest[2:half]
    if " b/" in rest:
        return rest.split(" b/", 1)[1]
    return rest


def patch_paths(patch: str) -> list[str]:
    """The paths of the files a patch changes (their new names), in patch order."""
    return [f.path for f in _files(patch) if f.path]


def runner_files(test_command: str) -> set[str]:
    """Files the test command runs itself: a script it names as its program
    (``./tests/runtests.py``, ``bin/test``), and ``tox.ini`` when it runs tox."""
    try:
        words = shlex.split(test_command)
    except ValueError:
        words = test_command.split()
    found: set[str] = set()
    for word in words:
        if "=" in word and not word.startswith(("-", "/", ".")):
            continue  # VAR=value
        name = PurePosixPath(word).name
        if name in _RUNNERS or word in ("-m",):
            continue
        if name == "tox":
            found.add("tox.ini")
        elif "/" in word or word.endswith(".py"):
            found.add(word.removeprefix("./"))
        break
    return found


def _setup_reason(file: _File, runners: set[str]) -> bool:
    p = PurePosixPath(file.path)
    if p.name == "conftest.py" or p.name in _START_UP or p.suffix == ".pth":
        return True
    if file.path in runners:
        return True
    if p.name in _PYTEST_SECTIONS:
        sections = _PYTEST_SECTIONS[p.name]
        if sections is None:
            return True
        for text, section in file.changes:
            if section is not None:
                if section in sections:
                    return True
                continue
            if _PYTEST_KEYS.match(text) or (_SECTION.match(text) or [None, ""])[1] in sections:
                return True
    return any(_PLUGIN_LINE.search(text) for text, _ in file.changes)


def changed_test_setup(patch: str | None, test_command: str = "") -> list[str]:
    """Paths of ``patch`` that change how the tests run (see the module docstring),
    sorted; ``test_command``: the task's, to recognise the runner it names."""
    if not patch:
        return []
    runners = runner_files(test_command) if test_command else set()
    return sorted({f.path for f in _files(patch) if f.path and _setup_reason(f, runners)})


TEST_SETUP_NOTE = (
    "the patch changes the test set-up ({paths}): graded as the official harness grades it, "
    "but the test outcomes may be the patch's doing rather than the program's"
)


def setup_change_note(paths: list[str]) -> str:
    """The sentence a grading result carries for ``changed_test_setup``; "" for none."""
    return TEST_SETUP_NOTE.format(paths=", ".join(paths)) if paths else ""


# -- what a changed file is -------------------------------------------------------

_SCRIPT = re.compile(r"^(reproduce|repro|reproduction|bug|issue|check|verify)[\w.-]*\.py$", re.I)
_PACKAGING = frozenset(
    {"setup.py", "setup.cfg", "tox.ini", "pyproject.toml", "MANIFEST.in", "Pipfile", ".gitignore"}
)


# Where setuptools and friends write copies of a package (``build/lib``,
# ``build/lib.linux-x86_64-3.9``, ``build/bdist.*``, ``build/temp.*``, ``.eggs``, ``.tox``,
# ``site-packages``): files there are build output, not code anyone wrote.
_BUILD_OUTPUT = re.compile(
    r"^(build/(lib|bdist|temp|scripts)[^/]*/|dist/)|(^|/)(\.eggs|\.tox|\.nox|site-packages)/"
)


def is_build_output(path: str) -> bool:
    """A copy a build wrote (``build/lib/pkg/test.py``): never a test or a script of
    its own, however it is named."""
    return bool(_BUILD_OUTPUT.search(path))


def looks_like_test(path: str) -> bool:
    """A test module or a file of a test suite (fixtures, test roots)."""
    name = PurePosixPath(path).name
    return path.endswith(".py") and (
        name.startswith("test") or name.endswith("_test.py") or "/tests/" in f"/{path}"
    )


def is_test_module(path: str) -> bool:
    """A file the test runner collects (``test_*.py``, ``*_test.py``, Django's
    ``tests.py``), not a fixture of the suite (``tests/roots/.../setup.py``)."""
    name = PurePosixPath(path).name
    return name.endswith(".py") and (
        name.startswith("test") or name.endswith("_test.py") or name == "tests.py"
    )


def is_script(path: str) -> bool:
    """A reproduction script an agent wrote (``reproduce_bug.py``, ``check_fix.py``)."""
    return bool(_SCRIPT.match(PurePosixPath(path).name))


def is_packaging_or_prose(path: str) -> bool:
    """Packaging and CI configuration (``setup.py``, ``tox.ini``, ``requirements*.txt``,
    ``.github/``) and prose (``.txt``, ``.md``, ``.rst``): files an agent edits to get its
    environment running or to take notes, which change no behaviour of the program."""
    p = PurePosixPath(path)
    return (
        p.name in _PACKAGING
        or p.name.startswith("requirements")
        or (bool(p.parts) and p.parts[0] in (".github", ".circleci"))
        or p.suffix.lower() in (".txt", ".md", ".rst")
    )


def changes_source(patch_text: str) -> bool:
    """Whether a patch changes the program: anything besides tests, reproduction
    scripts, packaging configuration and prose. A patch that only adds a
    ``reproduce.py``, pins a dependency in ``tox.ini`` or writes notes fixes nothing."""
    return any(
        fp.path
        and not looks_like_test(fp.path)
        and not is_script(fp.path)
        and not is_packaging_or_prose(fp.path)
        for fp in parse_patch(patch_text).files
    )


def harvestable_paths(patch_text: str) -> list[tuple[str, str, bool]]:
    """(path, kind, created) of the test files and reproduction scripts a patch adds or
    changes; copies under build output (``build/lib/...``) are none of them."""
    out = []
    for fp in parse_patch(patch_text).files:
        if fp.new_path is None or not fp.new_path.endswith(".py") or fp.binary:
            continue
        if is_build_output(fp.new_path):
            continue
        if looks_like_test(fp.new_path):
            out.append((fp.new_path, "test", fp.status == "added"))
        elif is_script(fp.new_path):
            out.append((fp.new_path, "script", fp.status == "added"))
    return out
