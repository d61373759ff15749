"""The official install recipes of SWE-bench, from the 4.x line of the ``swebench`` package.

swebench 5.x (the package swescale grades with) no longer ships how to build an
environment: its images come prebuilt, and its Dockerfiles live in a separate task
repository. The recipes that say how each (repository, version) is installed —
``MAP_REPO_VERSION_TO_SPECS`` (Python version, packages, ``pre_install``, ``install``,
``test_cmd``), the requirements and environment.yml paths, the repository setup script and
the eval script generator — are those of swebench 4.1.0, the last release that has them.

Both releases are called ``swebench`` and cannot be installed side by side, so 4.1.0 is
installed (``pip install --no-deps --target``) into a directory of its own and imported
under another name (``ALIAS``), its own ``import swebench...`` statements redirected
there: its modules see each other, and ``import swebench`` everywhere else (in any
thread, at any time) keeps meaning 5.x. Only the recipe modules are loaded.

``recipes()`` installs on first use (one ``pip`` call, needs the package index) unless
``SWESCALE_RECIPES_DIR`` or the default directory already holds it; ``scripts/setup.sh``
installs it ahead of time.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RECIPES_RELEASE = "4.1.0"
_lock = threading.Lock()
_loaded: Recipes | None = None


class RecipesUnavailable(RuntimeError):
    """The 4.x recipes are not installed and could not be installed."""


@dataclass(frozen=True)
class Recipes:
    """The parts of swebench 4.1.0 that describe how to build and test an instance."""

    specs: dict[str, dict[str, dict[str, Any]]]  # MAP_REPO_VERSION_TO_SPECS
    reqs_paths: dict[str, list[str]]  # MAP_REPO_TO_REQS_PATHS
    env_yml_paths: dict[str, list[str]]  # MAP_REPO_TO_ENV_YML_PATHS
    repo_install: dict[str, str]  # MAP_REPO_TO_INSTALL
    repo_ext: dict[str, str]  # MAP_REPO_TO_EXT
    parser_names: dict[str, str]  # repo -> name of its log parser (MAP_REPO_TO_PARSER)
    module: types.ModuleType  # swebench.harness.test_spec.python of 4.1.0

    def test_directives(self, repo: str, test_patch: str) -> list[str]:
        """``get_test_directives``: the test files of a test patch, as the test command's
        arguments (Django: dotted module names)."""
        return list(self.module.get_test_directives({"repo": repo, "test_patch": test_patch}))

    def eval_script_list(
        self, instance: dict[str, Any], spec: dict[str, Any], workdir: str, base_commit: str
    ) -> list[str]:
        """``make_eval_script_list_py``: the eval script's commands for rows that do not
        carry their own ``eval_script``."""
        return list(
            self.module.make_eval_script_list_py(
                instance, spec, "testbed", workdir, base_commit, instance["test_patch"]
            )
        )

    def clean_requirements(self, text: str) -> str:
        """``clean_requirements``: yanked packages replaced (types-pkg_resources)."""
        return str(self.module.clean_requirements(text))

    def requirements_line_dropped(self, line: str) -> bool:
        """The rule of ``get_requirements_by_commit``: lines the official build never
        installs (comments, empty lines, ``-e .``, ``.[test]`` style self-installs)."""
        return _exclude_line(line)


def _exclude_line(line: str) -> bool:
    # Mirrors the `exclude_line` closure inside 4.1.0's get_requirements_by_commit,
    # which cannot be called on its own (it lives inside a function that downloads
    # the file from GitHub).
    return any(line.strip().startswith(x) for x in ("-e .", "#", ".[test")) or not line.strip()


def recipes_dir() -> Path:
    """Where the 4.x recipes live: ``SWESCALE_RECIPES_DIR``, else beside the running
    interpreter's environment (``<prefix>/share/swescale/swebench-4.1.0``)."""
    env = os.environ.get("SWESCALE_RECIPES_DIR")
    if env:
        return Path(env)
    return Path(sys.prefix) / "share" / "swescale" / f"swebench-{RECIPES_RELEASE}"


def install_recipes(target: Path | None = None) -> Path:
    """``pip install --no-deps --target`` the 4.x release (idempotent)."""
    target = target or recipes_dir()
    if (target / "swebench" / "harness" / "constants" / "python.py").is_file():
        return target
    log.info("installing the swebench %s recipes into %s", RECIPES_RELEASE, target)
    partial = target.with_name(target.name + ".partial")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-compile",
        "--target",
        str(partial),
        f"swebench=={RECIPES_RELEASE}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RecipesUnavailable(
            f"cannot install swebench {RECIPES_RELEASE} (its install recipes) into {target}: "
            f"{proc.stderr.strip()[-500:]}. Run `bash scripts/setup.sh` on a machine that "
            "reaches the package index, or set SWESCALE_RECIPES_DIR to a directory holding it."
        )
    partial.rename(target)
    return target


def recipes() -> Recipes:
    """The 4.x recipes, installed and imported once per process."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _import(install_recipes())
        return _loaded


# The 4.x modules live under this name, never under ``swebench``: their own
# ``import swebench...`` statements are redirected here, so nothing the rest of the
# process imports (and no other thread) ever sees them, and ``sys.modules['swebench']``
# is never touched.
ALIAS = "_swebench_recipes"
_finder_lock = threading.Lock()


def _redirected_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and (name == "swebench" or name.startswith("swebench.")):
        name = ALIAS + name[len("swebench") :]
    return builtins.__import__(name, globals, locals, fromlist, level)


_BUILTINS = {**builtins.__dict__, "__import__": _redirected_import}


class _ReleaseLoader(importlib.machinery.SourceFileLoader):
    """Runs a module of the installed release with imports of ``swebench`` redirected."""

    def exec_module(self, module: types.ModuleType) -> None:
        module.__builtins__ = _BUILTINS
        super().exec_module(module)


class _ReleaseFinder(importlib.abc.MetaPathFinder):
    """Finds ``_swebench_recipes.*`` in the release's ``swebench`` folder. The package
    itself and ``.harness`` are bare (their ``__init__`` imports the whole 4.x harness)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        parts = fullname.split(".")[1:]
        folder = self.root.joinpath("swebench", *parts)
        if fullname in (ALIAS, f"{ALIAS}.harness"):
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            return spec
        if (folder / "__init__.py").is_file():
            origin = folder / "__init__.py"
            locations: list[str] | None = [str(folder)]
        elif folder.with_suffix(".py").is_file():
            origin, locations = folder.with_suffix(".py"), None
        else:
            return None
        loader = _ReleaseLoader(fullname, str(origin))
        return importlib.util.spec_from_file_location(
            fullname, origin, loader=loader, submodule_search_locations=locations
        )


def import_release_modules(root: Path, names: list[str]) -> dict[str, types.ModuleType]:
    """Modules of the swebench release installed at ``root`` (``names`` as the release
    spells them, ``swebench.harness....``), imported under ``ALIAS``: thread-safe, and the
    installed ``swebench`` stays what every other import sees."""
    with _finder_lock:
        if not any(isinstance(f, _ReleaseFinder) and f.root == root for f in sys.meta_path):
            # First: the path finder would load these files without the redirection.
            sys.meta_path.insert(0, _ReleaseFinder(root))
    return {name: importlib.import_module(ALIAS + name[len("swebench") :]) for name in names}


def _import(root: Path) -> Recipes:
    found = import_release_modules(
        root,
        [
            "swebench.harness.constants",
            "swebench.harness.test_spec.python",
            "swebench.harness.log_parsers",
        ],
    )
    constants = found["swebench.harness.constants"]
    python = found["swebench.harness.test_spec.python"]
    parsers = found["swebench.harness.log_parsers"]
    return Recipes(
        specs=constants.MAP_REPO_VERSION_TO_SPECS,
        reqs_paths=constants.MAP_REPO_TO_REQS_PATHS,
        env_yml_paths=constants.MAP_REPO_TO_ENV_YML_PATHS,
        repo_install=dict(getattr(constants, "MAP_REPO_TO_INSTALL", {})),
        repo_ext=constants.MAP_REPO_TO_EXT,
        parser_names={repo: fn.__name__ for repo, fn in parsers.MAP_REPO_TO_PARSER.items()},
        module=python,
    )
