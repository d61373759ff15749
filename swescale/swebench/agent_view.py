"""The environment an agent saw in an official SWE-bench image, rebuilt for replay.

The official instance images keep the task's environment in the conda env ``testbed``
and activate it from ``~/.bashrc``. An agent that runs each command with a plain,
non-login ``bash -c`` (mini-swe-agent's ``DockerEnvironment``) never reads ``.bashrc``:
its ``python`` is the base conda interpreter, ``/opt/miniconda3/bin/python`` (Python
3.11), with none of the project's packages. Every recorded trajectory of mini-swe-agent
on those images shows it: ``No module named pytest``, then ``pip install`` from the
internet. Replaying such a trajectory in the testbed environment gives other outputs
than the agent saw at almost every test run.

The *base view* of an instance image rebuilds what the agent saw: the repository at
``/testbed`` exactly as the instance image holds it (the base commit, the setup's
changes and egg-info, and the official setup's ``SWE-bench`` commit on top), a bare
interpreter of the same minor version at ``/opt/miniconda3`` first on ``PATH`` (Debian
bookworm's Python 3.11 installed under that prefix: not a virtual environment, as the
base env is not one, so pip behaves as there; its packages in
``lib/python3.11/site-packages``), the repository's directories as writable as the
official checkout (``drwxrwxrwx``), git abbreviating object names to the length the
recording shows, and the official container's variables only (no ``LANG``, ``TERM`` or
``PYTHONDONTWRITEBYTECODE`` of swescale's own sandboxes). Packages the agent
installed come from the package index as of the moment the trajectory was recorded (a
dated index, pypi-timemachine, beside the allow-listed proxy), so pip picks the versions
it picked; the base env's own packages are those of the official image's Miniconda.
What still differs is named by the replay (the interpreter's patch version, conda's own
packages).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swescale.sandbox import ImagesConfig, build_layer, content_tag, ensure_base_image
from swescale.swebench.layers import REPO_DIR

if TYPE_CHECKING:
    import docker

BASE_PREFIX = "/opt/miniconda3"
BASE_SUITE = "bookworm"  # Python 3.11, the minor version of the official base env
_PATH = f"{BASE_PREFIX}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The base env of the official images (Miniconda3 py311_23.11.0-2): the packages of it
# that PyPI has wheels of, at its versions (recorded outputs show pip 23's warnings,
# setuptools 68.2.2, packaging 23.1, pluggy 1.0.0, tqdm 4.65.0 already there, and
# `pip install -e .` of a project without pyproject.toml going through `setup.py
# develop`, which pip 23 takes only when `wheel` is importable: wheel 0.41.2 is there).
MINICONDA_BASE = (
    "pip==23.3.1", "setuptools==68.2.2", "wheel==0.41.2", "packaging==23.1",
    "pluggy==1.0.0", "tqdm==4.65.0", "requests==2.31.0", "urllib3==1.26.18",
    "certifi==2023.11.17", "charset-normalizer==2.0.4", "idna==3.4", "PySocks==1.7.1",
    "platformdirs==3.10.0", "ruamel.yaml==0.17.21", "boltons==23.0.0",
    "jsonpatch==1.32", "jsonpointer==2.1", "distro==1.8.0", "zstandard==0.19.0",
    "truststore==0.8.0", "archspec==0.2.1", "cffi==1.16.0", "pycparser==2.21",
    "cryptography==41.0.7",
)  # fmt: skip
# The variables of an official image's container (its Dockerfile's ENV and Docker's
# HOME); a command replayed in the view sees these, the recorded agent's own, and
# nothing the view's image declares (``SandboxConfig.exact_env``).
OFFICIAL_ENV = {"PATH": _PATH, "TZ": "Etc/UTC", "HOME": "/root"}
_PIP = "pip==23.3.1"


@dataclass(frozen=True)
class AgentView:
    """How to rebuild what an agent saw. ``git_abbrev``: hex digits git used for object
    names in the recorded outputs (None: git's default). ``fresh_dirs``: the
    repository's directories that git created when the official image reset its clone
    to the base commit (absent from the default branch the image cloned), which keep
    git's mode 755 (:func:`fresh_directories`)."""

    kind: str = "official-base"
    git_abbrev: int | None = None
    fresh_dirs: tuple[str, ...] = ()


def fresh_directories(git_handle: Any, base_commit: str, tip: str = "HEAD") -> tuple[str, ...]:
    """Directories of ``base_commit``'s tree that ``tip`` (the default branch) lacks.

    The official image clones the default branch, makes the checkout's directories
    world-writable and resets to the base commit: directories the reset creates (a
    package before its move to ``src/``, pydicom's ``pydicom/`` and ``source/``) are
    ``drwxr-xr-x`` in the recorded ``ls -la``, the others ``drwxrwxrwx``. ``git_handle``:
    a ``git.Git`` on the mirror. Returns sorted relative paths; () when git fails."""
    try:
        base = set(git_handle.ls_tree("-r", "-d", "--name-only", base_commit).splitlines())
        at_tip = set(git_handle.ls_tree("-r", "-d", "--name-only", tip).splitlines())
    except Exception:  # noqa: BLE001 - a view without the detail rather than no view
        return ()
    return tuple(sorted(d for d in base - at_tip if d))


def repository_archive(client: docker.DockerClient, image: str, path: str = REPO_DIR) -> bytes:
    """The tar of ``path`` in ``image`` (the repository as the instance image holds it)."""
    container = client.containers.create(image, command=["true"])
    try:
        stream, _ = container.get_archive(path)
        return b"".join(stream)
    finally:
        container.remove(force=True)


def base_view_image(
    client: docker.DockerClient,
    instance_tag: str,
    view: AgentView,
    images: ImagesConfig | None = None,
) -> str:
    """The base view of ``instance_tag`` (built once, found by its content tag)."""
    images = images or ImagesConfig()
    suite_cfg = images.model_copy(update={"suite": BASE_SUITE})
    base = ensure_base_image(client, suite_cfg)
    commands = [*base_interpreter_commands(BASE_PREFIX), *_official_checkout(view.fresh_dirs)]
    if view.git_abbrev:
        commands.append(f"git -C {REPO_DIR} config core.abbrev {int(view.git_abbrev)}")
    image_id = client.images.get(instance_tag).id
    tag = content_tag("swescale/agent-view", "base", base, image_id, commands)
    archive = repository_archive(client, instance_tag)
    return build_layer(
        client,
        base,
        tag,
        commands,
        archives=[("/", archive)],
        env={"PATH": _PATH},
        workdir=REPO_DIR,
        network=True,
        pip_config=True,
        log_path=images.cache_dir / "logs" / f"agent-view-{tag.rsplit(':', 1)[-1]}.log",
    )


def base_interpreter_commands(prefix: str) -> list[str]:
    """Shell commands installing Debian's Python 3.11 under ``prefix`` as a standalone
    interpreter (stdlib copied, Debian's install layout turned back to the upstream one,
    no EXTERNALLY-MANAGED marker) with the base env's packages."""
    lib = f"{prefix}/lib/python3.11"
    site = f"{lib}/site-packages"
    return [
        f"mkdir -p {prefix}/bin {prefix}/lib && cp -a /usr/lib/python3.11 {prefix}/lib/",
        f"cp /usr/bin/python3.11 {prefix}/bin/python3.11 && "
        f"ln -s python3.11 {prefix}/bin/python3 && ln -s python3.11 {prefix}/bin/python",
        # Debian's own hooks go: the externally-managed marker, its sitecustomize, and
        # `_distutils_system_mod`, through which setuptools' distutils installs into
        # local/lib/.../dist-packages (so `setup.py develop` would not land where pip
        # then looks, and pip would print "Successfully installed pkg" without version).
        f"rm -f {lib}/EXTERNALLY-MANAGED {lib}/sitecustomize.py {lib}/__pycache__/sysconfig.* "
        f"{lib}/_distutils_system_mod.py {lib}/__pycache__/_distutils_system_mod.*",
        # Debian installs into local/lib/.../dist-packages; conda (and upstream) into
        # lib/pythonX.Y/site-packages. site.py is frozen in 3.11, so the directory is
        # added by sitecustomize and the install scheme fixed in sysconfig.
        f"sed -i \"s/prefix_scheme = 'posix_local'/prefix_scheme = 'posix_prefix'/\" "
        f"{lib}/sysconfig.py",
        f"mkdir -p {site} && printf 'import site\\nsite.addsitedir(\"{site}\")\\n' "
        f"> {lib}/sitecustomize.py",
        f"python3 -m venv /tmp/bootstrap-pip && /tmp/bootstrap-pip/bin/pip install -q "
        f"--target {site} '{_PIP}' && rm -rf /tmp/bootstrap-pip",
        f"{prefix}/bin/python -m pip install -q --force-reinstall --no-deps "
        f"--root-user-action=ignore '{_PIP}'",
        f"{prefix}/bin/python -m pip install -q --no-deps --root-user-action=ignore "
        + " ".join(f"'{p}'" for p in MINICONDA_BASE),
        # conda installed these there: pip checks for a newer version of itself only
        # when pip installed it (and the recorded outputs show no such notice).
        f'for f in {site}/*.dist-info/INSTALLER; do echo conda > "$f"; done',
    ]


def _official_checkout(fresh_dirs: Sequence[str] = ()) -> list[str]:
    commands = [
        # The official checkout's directories are world-writable; generated ones are not.
        f"find {REPO_DIR} -type d -not -name __pycache__ -not -name '*.egg-info' "
        "-not -path '*/__pycache__/*' -exec chmod 777 {} +",
    ]
    if fresh_dirs:
        # Those git created at the reset to the base commit keep its 755.
        quoted = " ".join(shlex.quote(d) for d in fresh_dirs)
        commands.append(f"cd {REPO_DIR} && printf '%s\\0' {quoted} | xargs -0 chmod 755")
    # The official install ran setup.py with bytecode written: the top-level modules it
    # imports (pvlib's versioneer.py, pydicom's dicom.py) left a top-level __pycache__.
    commands.append(f"cd {REPO_DIR} && {BASE_PREFIX}/bin/python -c {shlex.quote(_SETUP_IMPORTS)}")
    return [
        *commands,
        # The official setup ends with `git commit --allow-empty -am SWE-bench` by the
        # identity it configures globally (so HEAD is one commit past the base, and
        # `git stash` or `git commit` work): the instance image's setup commit becomes
        # that one.
        "git config --global user.email setup@swebench.config && "
        "git config --global user.name SWE-bench",
        f"cd {REPO_DIR} && if [ \"$(git log -1 --format=%s)\" = 'SWE-bench setup' ]; "
        "then git commit -q --amend --allow-empty --reset-author -m SWE-bench; "
        "else git commit -q --allow-empty -am SWE-bench; fi",
    ]


# Byte-compiles the repository's top-level modules that setup.py imports.
_SETUP_IMPORTS = """
import ast, os, py_compile
try:
    tree = ast.parse(open("setup.py", "rb").read())
except (OSError, SyntaxError, ValueError):
    tree = None
names = set()
for node in ast.walk(tree) if tree else ():
    if isinstance(node, ast.Import):
        names.update(a.name.split(".")[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        names.add(node.module.split(".")[0])
for name in sorted(names):
    if name != "setup" and os.path.isfile(name + ".py"):
        py_compile.compile(name + ".py")
"""


def view_environment() -> dict[str, str]:
    """The variables of a sandbox of the base view: an official container's."""
    return dict(OFFICIAL_ENV)


def describe(view: AgentView) -> dict[str, Any]:
    return {"kind": view.kind, "git_abbrev": view.git_abbrev, "python": f"{BASE_SUITE} 3.11"}
