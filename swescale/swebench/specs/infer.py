"""How to install and test a repository that has no ``.swescale.yaml``, read from its own
files at a commit (pure given a reader of those files and the commit's date).

What is read, most specific first:

- the interpreter: ``requires-python`` (``pyproject.toml``), ``python_requires``
  (``setup.cfg`` or a literal in ``setup.py``), the newest ``Programming Language ::
  Python :: 3.X`` classifier or tox ``envlist`` version, and the commit's date (an
  interpreter counts as available half a year after its release, when the packages of
  its time have wheels for it);
- what the tests need: a test extra (``[project.optional-dependencies]``,
  ``[options.extras_require]``, ``extras_require=`` in ``setup.py``) with the ``all``
  extra when it resolves, ``tox.ini``'s
  ``[testenv]`` extras and deps, PEP 735 ``[dependency-groups]``, the usual test
  requirements files (``-r`` includes inlined, self-installs dropped) and
  ``requirements.txt``;
- versions: everything is resolved by uv from the package index *as of the commit's
  date* (``--exclude-newer``), so an old repository gets the releases its own CI had; the
  same install-date caps as the official recipes get (``ERA_CAPS``) are added as
  constraints, and the pins of a lock file (``uv.lock``, ``poetry.lock``,
  ``Pipfile.lock``) too. When the dated resolution finds no solution the install is
  retried against today's index with those constraints (the build log says so).

The project itself is then installed editable by pip without build isolation (pip keeps
the ``setup.py develop`` path that old setuptools needs; uv does not). The result is a
``RepoConfig`` whose ``source`` lists what it was inferred from.
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import shlex
import tomllib
from collections.abc import Callable
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from swescale.swebench.specs.repo_config import RepoConfig

Reader = Callable[[str], str | None]

# Extras and dependency groups that hold what the tests need, most specific first.
TEST_GROUPS = ("tests", "test", "testing")
# Extras that name every optional dependency.
ALL_EXTRAS = ("all", "full", "complete")
REQUIREMENTS_FILES = (
    "requirements/tests.txt",
    "requirements/test.txt",
    "requirements/testing.txt",
    "requirements-test.txt",
    "requirements_test.txt",
    "requirements-tests.txt",
    "requirements_tests.txt",
    "test-requirements.txt",
    "test_requirements.txt",
    "tests/requirements.txt",
    "requirements/dev.txt",
    "requirements-dev.txt",
    "requirements_dev.txt",
    "dev-requirements.txt",
)
# Debian's interpreters (bullseye, bookworm, trixie) and the day each counts as usable:
# half a year after its release, when the packages of the time ship wheels for it.
PYTHONS: tuple[tuple[str, str], ...] = (
    ("3.9", "2020-10-05"),
    ("3.11", "2023-04-24"),
    ("3.13", "2025-04-07"),
)
# The dated index is never older than this for an interpreter: before it, numpy, scipy
# and pandas had no wheels for it and would be compiled from source (or fail to).
INDEX_FLOOR = {"3.9": "2020-12-15", "3.11": "2023-01-15", "3.13": "2024-12-15"}
# Without a date or classifier, the best supported of Debian's interpreters.
PYTHON_PREFERENCE = ("3.11", "3.13", "3.9")
# Installed by pip into the venv first: pip 24.0 still has the `setup.py develop` path
# for old setuptools (25.3 removed it) and reads the non-PEP 440 versions old pins carry;
# uv resolves against the dated index.
UV = "uv==0.13.10"
BOOTSTRAP_PACKAGES = ["pip==24.0", "wheel", UV]
CONSTRAINTS = "/tmp/swescale-constraints.txt"
# ``python -m``: pytest before 3.0 installs no ``pytest`` script, only ``py.test``.
TEST_COMMAND = "python -m pytest -rA"
# Releases that broke older test suites (the official recipes' install-date caps; see
# ``swescale.swebench.specs.venv.ERA_CAPS``): (name, release date, cap).
_ERA_CAPS: tuple[tuple[str, str, str], ...] = (
    ("pytest", "2024-01-27", "pytest<8"),
    ("numpy", "2024-06-16", "numpy<2"),
    ("cython", "2023-07-17", "cython<3"),
    ("docutils", "2025-07-29", "docutils<0.22"),
    ("zarr", "2025-01-09", "zarr<3"),
)
_CLASSIFIER = re.compile(r"Programming Language :: Python :: (3\.\d+)")


# -- reading files -------------------------------------------------------------------


def _toml(read: Reader, path: str) -> dict[str, Any]:
    text = read(path)
    if not text:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def _ini(read: Reader, path: str) -> configparser.ConfigParser | None:
    text = read(path)
    if not text:
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return parser


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def relax_pins(lines: list[str]) -> list[str]:
    """Requirement lines with each exact pin ``name==X`` (or ``===``) made ``name>=X``;
    markers, extras and other specifiers kept. Pure."""
    out = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            out.append(line)
            continue
        specs = [
            f">={spec.version}"
            if spec.operator in ("==", "===") and "*" not in spec.version
            else str(spec)
            for spec in req.specifier
        ]
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        marker = f"; {req.marker}" if req.marker else ""
        out.append(f"{req.name}{extras}{','.join(specs)}{marker}")
    return out


def _requirement_list(value: Any) -> list[str]:
    """An extra's requirements as setup.cfg (one string of lines) or a list gives them."""
    if isinstance(value, str):
        return _lines(value)
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if isinstance(v, str)]
    return []


def setup_py_literals(text: str) -> dict[str, Any]:
    """The keyword arguments of the ``setup(...)`` call of a ``setup.py``
    (``python_requires``, ``extras_require``, ``install_requires``, ``classifiers``) that
    are literals once module-level names bound to literals are put in and lists joined
    by ``+`` are added up (``extras_require={"test": TESTS_REQUIRE}``); a dict keeps the
    entries that resolve, and a key set later (``EXTRAS['all'] = sorted(...)``) is kept
    with an empty value, since pip still knows the extra. What does not resolve is left
    out (pure, never executes the file)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    names: dict[str, ast.expr] = {}
    later_keys: dict[str, list[str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name):
            names[target.id] = node.value
        elif (
            isinstance(target, ast.Subscript)
            and isinstance(target.value, ast.Name)
            and isinstance(target.slice, ast.Constant)
            and isinstance(target.slice.value, str)
        ):
            later_keys.setdefault(target.value.id, []).append(target.slice.value)
    found: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name != "setup":
            continue
        for keyword in node.keywords:
            if keyword.arg not in (
                "python_requires",
                "extras_require",
                "install_requires",
                "classifiers",
            ):
                continue
            try:
                value = _resolve(keyword.value, names, depth=0)
            except ValueError:
                continue
            if isinstance(keyword.value, ast.Name) and isinstance(value, dict):
                for key in later_keys.get(keyword.value.id, []):
                    value.setdefault(key, [])
            found[keyword.arg] = value
    return found


def _resolve(node: ast.expr, names: dict[str, ast.expr], depth: int) -> Any:
    """The value of a literal expression with module-level names put in; a dict keeps
    the entries that resolve. ValueError when it is not such an expression."""
    if depth > 20:
        raise ValueError("names nest too deep")
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ValueError(f"unbound name {node.id}")
        return _resolve(names[node.id], names, depth + 1)
    if isinstance(node, ast.Dict):
        out: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                continue
            try:
                out[_resolve(key, names, depth + 1)] = _resolve(value, names, depth + 1)
            except (ValueError, TypeError):
                continue
        return out
    if isinstance(node, ast.List | ast.Tuple):
        items = [_resolve(item, names, depth + 1) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _resolve(node.left, names, depth + 1)
        right = _resolve(node.right, names, depth + 1)
        if isinstance(left, list | tuple) and isinstance(right, list | tuple):
            return [*left, *right]
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        raise ValueError("not a sum of lists or strings")
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(str(error)) from error


def requirement_lines(read: Reader, path: str, seen: set[str] | None = None) -> list[str]:
    """The requirements of a requirements file, ``-r`` includes inlined (paths relative
    to the file), options, self-installs (``-e .``, ``.[test]``) and comments dropped."""
    seen = seen if seen is not None else set()
    if path in seen:
        return []
    seen.add(path)
    text = read(path)
    if text is None:
        return []
    folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ", "-r")) and not line.startswith("--r"):
            include = (line.split(None, 1)[1] if " " in line else line[2:]).strip()
            # Linters' and docs' pins (pre-commit hooks, sphinx) are not what tests need
            # and often conflict with the project itself (pylint pinned in astroid's).
            if not _TOOLING.search(include.rsplit("/", 1)[-1]):
                out += requirement_lines(read, _join(folder, include), seen)
            continue
        line = line.split(" --hash", 1)[0].rstrip(" \\")
        if _is_requirement(line):
            out.append(line)
    return out


_TOOLING = re.compile(r"pre[-_]?commit|lint|docs?\b|doc[-_]", re.IGNORECASE)


def _quoted(items: list[str]) -> str:
    return " ".join(shlex.quote(i) for i in items)


def _names(requirements: list[str]) -> list[str]:
    out = []
    for line in requirements:
        try:
            out.append(canonicalize_name(Requirement(line).name))
        except InvalidRequirement:
            continue
    return out


# A requirement with no release of the commit's date left on the index (atomicwrites:
# every release before 2022 was deleted) makes the whole dated resolution fail. uv then
# names it in a hint ("`atomicwrites` was filtered by `exclude-newer`"); each package it
# names is taken from the index as it is (``--exclude-newer-package``, today) and the
# resolution tried again, at most five times, instead of giving up the date for all.
LATE_RELEASES = (
    "swescale_dated() { local extra='' out rc late p; for _ in 1 2 3 4 5; do "
    'out=$("$@" $extra 2>&1); rc=$?; printf "%s\\n" "$out"; '
    '[ "$rc" -eq 0 ] && return 0; '
    'late=$(printf "%s\\n" "$out" | '
    "sed -n 's/.*`\\([^`]*\\)` was filtered by `exclude-newer`.*/\\1/p' | sort -u); "
    '[ -n "$late" ] || return "$rc"; '
    'for p in $late; do case "$extra " in *" --exclude-newer-package $p="*) return "$rc";; esac; '
    'extra="$extra --exclude-newer-package $p=$(date -u +%Y-%m-%d)"; '
    'echo "swescale: $p has no release of the commit date left on the index; taken as it is" >&2; '
    'done; done; return "$rc"; };'
)


def _say(what: str) -> str:
    return f"echo 'swescale: no solution among the packages of the commit date; {what}' >&2"


def suite_paths(read: Reader) -> list[str]:
    """Where the whole suite is, for a run without arguments: [] when the pytest
    configuration names its ``testpaths`` (pytest finds them itself), else the first of
    ``tests``, ``test``, ``testing`` the repository has (a bare run from the root would
    also collect docs and examples)."""
    for path, section in (
        ("pytest.ini", "pytest"),
        ("tox.ini", "pytest"),
        ("setup.cfg", "tool:pytest"),
    ):
        ini = _ini(read, path)
        if ini and ini.has_option(section, "testpaths"):
            return []
    options = (_toml(read, "pyproject.toml").get("tool") or {}).get("pytest") or {}
    if isinstance(options, dict) and "testpaths" in (options.get("ini_options") or {}):
        return []
    return next(([d] for d in ("tests", "test", "testing") if read(d) is not None), [])


def merge_requirements(lines: list[str]) -> list[str]:
    """One requirement per distribution name, the last one given winning (pure)."""
    by_name: dict[str, str] = {}
    for line in lines:
        try:
            name = canonicalize_name(Requirement(line).name)
        except InvalidRequirement:
            continue
        by_name.pop(name, None)
        by_name[name] = line
    return list(by_name.values())


def _is_requirement(line: str) -> bool:
    """A requirement by name from the index (not an option, a path, a URL or VCS)."""
    if line.startswith(("-", ".", "/", "{")) or "://" in line or line.startswith("git+"):
        return False
    try:
        Requirement(line)
    except InvalidRequirement:
        return False
    return "/" not in line.split(";", 1)[0]


def _join(folder: str, path: str) -> str:
    parts = (folder + path).split("/")
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        elif part and part != ".":
            out.append(part)
    return "/".join(out)


def lock_pins(read: Reader) -> tuple[list[str], str]:
    """(``name==version`` lines, the lock file read) from ``uv.lock``, ``poetry.lock`` or
    ``Pipfile.lock``; ([], "") without one. Used as constraints: a pin applies only to
    what the install needs anyway."""
    for path in ("uv.lock", "poetry.lock"):
        data = _toml(read, path)
        packages = data.get("package")
        if isinstance(packages, list):
            pins = [
                f"{canonicalize_name(p['name'])}=={p['version']}"
                for p in packages
                if isinstance(p, dict)
                and isinstance(p.get("name"), str)
                and isinstance(p.get("version"), str)
                and not p.get("source", {}).get("editable")
                and not p.get("source", {}).get("virtual")
            ]
            if pins:
                return sorted(set(pins)), path
    text = read("Pipfile.lock")
    if text:
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        pins = []
        for section in ("default", "develop"):
            for name, entry in (data.get(section) or {}).items():
                version = entry.get("version") if isinstance(entry, dict) else None
                if isinstance(version, str) and version.startswith("=="):
                    pins.append(f"{canonicalize_name(name)}{version}")
        if pins:
            return sorted(set(pins)), "Pipfile.lock"
    return [], ""


# -- choices -------------------------------------------------------------------------


def choose_python(requires: str | None) -> tuple[str | None, str]:
    """(python, why): the preferred Debian interpreter the specifier admits (no date)."""
    return pick_python(requires, [], None)


def pick_python(
    requires: str | None,
    classifiers: list[str],
    committed: str | None,
    tox_versions: tuple[str, ...] = (),
) -> tuple[str | None, str]:
    """(python, why): of Debian's interpreters that ``requires`` admits, the newest that
    the classifiers or tox's envlist (``tox_versions``, "3.X") name as tested (or, without
    either, that was usable at the commit's date ``committed``, YYYY-MM-DD); the oldest
    admitted one when none is that old."""
    allowed = [v for v, _ in PYTHONS]
    why = ""
    if requires:
        try:
            spec = SpecifierSet(requires)
        except InvalidSpecifier:
            why = f"unreadable Python requirement {requires!r}; "
        else:
            admitted = [v for v in allowed if spec.contains(f"{v}.0")]
            if admitted:
                allowed = admitted
            else:
                why = f"no Debian Python satisfies {requires!r}; "
    by_classifier = {_minor(m) for m in _CLASSIFIER.findall(" ".join(classifiers))}
    by_tox = {_minor(v) for v in tox_versions}
    listed = sorted(by_classifier | by_tox)
    if listed:
        newest = listed[-1]
        fitting = [v for v in allowed if _minor(v) <= newest]
        chosen = fitting[-1] if fitting else allowed[0]
        named_by = "classifiers" if newest in by_classifier else "tox's envlist"
        return chosen, why + f"Python {chosen}: {named_by} name up to 3.{newest[1]}"
    if committed:
        usable = dict(PYTHONS)
        fitting = [v for v in allowed if usable[v] <= committed]
        chosen = fitting[-1] if fitting else allowed[0]
        return chosen, why + f"Python {chosen}: the newest usable on {committed}"
    if not requires or why:
        if not requires:
            return None, "no Python requirement: the default interpreter"
        return None, why + "the default interpreter"
    for version in PYTHON_PREFERENCE:
        if version in allowed:
            return version, f"Python {version} satisfies {requires!r}"
    return None, f"no Debian Python satisfies {requires!r}: the default interpreter"


def tox_pythons(envlist: str) -> tuple[str, ...]:
    """The Python versions ("3.X") a tox ``envlist`` tests, braces expanded as tox does
    (``py3{12,11}``, ``py{38,39}-django``, ``py310``, ``py3.11``, ``3.12``); Python 2
    and PyPy factors are left out. Pure."""
    versions: set[str] = set()
    for env in _expand_braces(envlist):
        for factor in env.split("-"):
            match = re.fullmatch(r"(?:py)?3\.?(\d{1,2})", factor.strip())
            if match:
                versions.add(f"3.{int(match.group(1))}")
    return tuple(sorted(versions, key=_minor))


def _expand_braces(text: str) -> list[str]:
    """tox's generative envlist: ``a{1,2}-b`` is ``a1-b``, ``a2-b``; entries are split at
    commas and new lines outside braces."""
    entries: list[str] = []
    depth, current = 0, ""
    for char in text:
        depth += (char == "{") - (char == "}")
        if depth == 0 and char in ",\n":
            entries.append(current)
            current = ""
        else:
            current += char
    entries.append(current)
    out: list[str] = []
    for entry in (e.strip() for e in entries):
        match = re.search(r"\{([^{}]*)\}", entry)
        if not entry:
            continue
        if not match:
            out.append(entry)
            continue
        head, tail = entry[: match.start()], entry[match.end() :]
        for option in match.group(1).split(","):
            out += _expand_braces(head + option.strip() + tail)
    return out


def _minor(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def index_date(python: str | None, committed: str | None) -> str | None:
    """The day the package index is read as of: the commit's date, not before the
    interpreter's floor (``INDEX_FLOOR``); None without a date."""
    if not committed:
        return None
    floor = INDEX_FLOOR.get(python or PYTHON_PREFERENCE[0], "")
    return max(committed, floor)


def era_caps(committed: str | None, own_name: str = "") -> list[str]:
    """The install-date caps for a commit older than the release that broke old code
    (never the repository's own package)."""
    if not committed:
        return []
    own = canonicalize_name(own_name) if own_name else ""
    return [cap for name, day, cap in _ERA_CAPS if committed < day and name != own]


# -- the inference -------------------------------------------------------------------


def infer_repo_config(read: Reader, committed: str | None = None) -> RepoConfig:
    """A RepoConfig from a repository's files (``read(path)`` gives a file's text at the
    commit, or None) and the commit's date (``committed``, YYYY-MM-DD; None: today's
    index). Pure given ``read``."""
    found: list[str] = []
    pyproject = _toml(read, "pyproject.toml")
    project = pyproject.get("project") if isinstance(pyproject.get("project"), dict) else {}
    poetry = (
        (pyproject.get("tool") or {}).get("poetry")
        if isinstance(pyproject.get("tool"), dict)
        else None
    )
    setup_cfg = _ini(read, "setup.cfg")
    setup_py_text = read("setup.py")
    setup_py = setup_py_literals(setup_py_text) if setup_py_text else {}
    tox = _ini(read, "tox.ini")

    requires = project.get("requires-python")
    if not requires and setup_cfg and setup_cfg.has_option("options", "python_requires"):
        requires = setup_cfg.get("options", "python_requires")
    if not requires:
        requires = setup_py.get("python_requires")
    classifiers = [str(c) for c in project.get("classifiers") or [] if isinstance(c, str)]
    if setup_cfg and setup_cfg.has_option("metadata", "classifiers"):
        classifiers += _lines(setup_cfg.get("metadata", "classifiers"))
    if isinstance(setup_py.get("classifiers"), list | tuple):
        classifiers += [str(c) for c in setup_py["classifiers"]]
    if isinstance(poetry, dict):
        classifiers += [str(c) for c in poetry.get("classifiers") or []]
    envlist = ""
    for config, section in ((tox, "tox"), (setup_cfg, "tox:tox")):
        if config and config.has_option(section, "envlist"):
            envlist = config.get(section, "envlist")
            break
    python, why_python = pick_python(
        requires if isinstance(requires, str) else None,
        classifiers,
        committed,
        tox_pythons(envlist),
    )
    found.append(why_python)

    # The test extras, from the project's metadata then tox.
    optional: dict[str, Any] = {}
    if isinstance(setup_py.get("extras_require"), dict):
        optional.update(setup_py["extras_require"])
    if setup_cfg and setup_cfg.has_section("options.extras_require"):
        optional.update(dict(setup_cfg.items("options.extras_require")))
    optional.update(project.get("optional-dependencies") or {})
    if isinstance(poetry, dict):
        optional.update(poetry.get("extras") or {})
    extras = [name for name in TEST_GROUPS if name in optional][:1]
    if extras:
        found.append(f"test extra [{extras[0]}]")
    # Tests of optional features skip without their packages; a project's CI usually
    # installs them all, so its "all" extra is asked for first (dropped if it will not
    # resolve).
    everything = next((name for name in ALL_EXTRAS if name in optional), None)
    if everything:
        found.append(f"extra [{everything}] when it resolves")
    tox_direct: list[str] = []
    file_lines: list[str] = []
    if tox and tox.has_section("testenv"):
        if tox.has_option("testenv", "extras"):
            tox_extras = tox.get("testenv", "extras").replace(",", "\n").split()
            tox_extras = [e.strip() for e in tox_extras if re.fullmatch(r"[\w.-]+", e.strip())]
            extras += [e for e in tox_extras if e not in extras]
            found.append("tox.ini [testenv] extras")
        if tox.has_option("testenv", "deps"):
            for dep in _lines(tox.get("testenv", "deps")):
                if dep.startswith("-r"):
                    path = dep[2:].strip().replace("{toxinidir}/", "")
                    file_lines += requirement_lines(read, path)
                elif _is_requirement(dep):
                    tox_direct.append(dep)
            found.append("tox.ini [testenv] deps")
    groups = pyproject.get("dependency-groups") or {}
    group = next((name for name in TEST_GROUPS if name in groups), None)
    if group:
        found.append(f"dependency group {group!r}")
    if not extras and not group:
        for path in REQUIREMENTS_FILES:
            lines = requirement_lines(read, path)
            if lines:
                file_lines += lines
                found.append(path)
                break
    has_project = bool(
        setup_py_text or project or poetry or (setup_cfg and setup_cfg.has_section("metadata"))
    )
    runtime = requirement_lines(read, "requirements.txt")
    if runtime and (not has_project or not extras):
        file_lines = runtime + file_lines
        found.append("requirements.txt")
    # One requirement per name, the files' over tox's (a tox env may lag behind them).
    tested = [
        _minor(v) for v in [*_CLASSIFIER.findall(" ".join(classifiers)), *tox_pythons(envlist)]
    ]
    if python and tested and _minor(python) > max(tested):
        # An interpreter newer than any the project tested: its exact pins are of a time
        # before that interpreter (requests' coverage==4.0.3 fails at import on 3.9),
        # so each becomes a lower bound, resolved at the packages' date.
        file_lines = relax_pins(file_lines)
        tox_direct = relax_pins(tox_direct)
        found.append(f"exact pins as lower bounds (Python {python} is newer than tested)")
    requirements = merge_requirements(["pytest", *tox_direct, *file_lines])

    build = pyproject.get("build-system") if isinstance(pyproject.get("build-system"), dict) else {}
    build_requires = [str(r) for r in build.get("requires") or [] if isinstance(r, str)]
    if has_project and not build_requires:
        build_requires = ["setuptools", "wheel"]
    own_name = str(project.get("name") or "")
    if not own_name and setup_cfg and setup_cfg.has_option("metadata", "name"):
        own_name = setup_cfg.get("metadata", "name")
    constraints = era_caps(committed, own_name)
    pins, lock = lock_pins(read)
    if lock:
        found.append(f"versions pinned by {lock}")
        pinned = {p.split("==")[0] for p in pins}
        constraints = [
            c for c in constraints if canonicalize_name(re.split("[<>=!]", c)[0]) not in pinned
        ]
        constraints += pins
    when = index_date(python, committed)
    if when:
        found.append(f"packages as of {when}")
    if constraints and not lock:
        found.append("install-date caps " + ", ".join(constraints))

    def project_with(names: list[str]) -> list[str]:
        if not has_project:
            return []
        return [f".[{','.join(names)}]" if names else "."]

    def arguments(packages: list[str], names: list[str]) -> str:
        text = _quoted([*dict.fromkeys(packages), *project_with(names)])
        return text + (f" --group {shlex.quote(group)}" if group else "")

    with_extras = [*extras, everything] if everything and everything not in extras else extras
    widest = arguments(build_requires + requirements, with_extras)
    full = arguments(build_requires + requirements, extras)
    minimal = arguments([*build_requires, "pytest"], extras)
    install: list[str] = []
    # pip compiles bytecode on install and uv does not: without it, a suite that turns
    # warnings into errors fails on an old dependency's invalid escape sequences at import.
    uv = "uv pip install --compile-bytecode"
    # The venv's own setuptools and wheel would satisfy the build requirements without
    # being of the commit's time (too old for [project] metadata): upgraded explicitly.
    for name in dict.fromkeys(_names(build_requires)):
        uv += f" --upgrade-package {shlex.quote(name)}"
    if constraints:
        install.append(
            "printf '%s\\n' " + " ".join(shlex.quote(c) for c in constraints) + f" > {CONSTRAINTS}"
        )
        uv += f" -c {CONSTRAINTS}"
    if when:
        # uv reads a bare date as "uploaded before the end of that day". When the
        # packages of that day have no solution (a requirement that is gone from the
        # index, conflicting pins), the project and pytest alone are tried, then today's
        # index: each step says so in the build log.
        dated = f"swescale_dated {uv} --exclude-newer {when}"
        attempts = [f"{LATE_RELEASES} {dated} {widest}"]
        if widest != full:
            attempts.append(f"{{ {_say(f'the extra [{everything}] dropped')}; {dated} {full}; }}")
        attempts += [
            f"{{ {_say('the requirement files dropped')}; {dated} {minimal}; }}",
            f"{{ {_say('resolving against the current index')}; {uv} {full}; }}",
        ]
        install.append(" || ".join(attempts))
    elif widest != full:
        install.append(
            f"{uv} {widest} || {{ {_say(f'the extra [{everything}] dropped')}; {uv} {full}; }}"
        )
    else:
        install.append(f"{uv} {full}")
    if widest != full:
        # When the whole extra will not resolve (one of its packages has no wheel and no
        # buildable sdist of the time), each of its packages is still tried on its own:
        # the tests that skip without one (pvlib's ``requires ephem``) then run.
        one = f"{uv} --exclude-newer {when}" if when else uv
        named = _requirement_list(optional.get(everything))
        if not named:  # computed (pvlib's sum of the other extras): their union
            named = [r for value in optional.values() for r in _requirement_list(value)]
        packages = [r for r in named if _is_requirement(r)]
        if packages:
            quoted = " ".join(shlex.quote(p) for p in dict.fromkeys(packages))
            install.append(
                f'for r in {quoted}; do {one} "$r" >/dev/null 2>&1 || '
                f'echo "swescale: [{everything}]: $r has no solution; left out" >&2; done'
            )
    if has_project:
        install.append("python -m pip install --no-deps --no-build-isolation -e .")
    config = RepoConfig(
        python=python,
        python_packages=list(BOOTSTRAP_PACKAGES),
        install=install,
        test_command=TEST_COMMAND,
    )
    config.source = "inferred: " + "; ".join(found)
    return config
