"""Fixture repositories with the file counts and size distributions of real projects, as
images with the repository committed at /repo (like a SWE-bench instance image).

The files are generated (seeded, so the same profile gives the same commit everywhere):
what a snapshot costs depends on how many files and directories git must stat and how
large the changed files are, not on what the files say. Where a real mirror is present
(`real_repo_tar`), a benchmark can add it beside the fixtures; it never needs it.

Profiles (measured, see each ``source``):
- pytest-size: pytest at 2f406bb (2020-06-01, the SWE-bench era) has 512 tracked files in
  66 directories, 3.6 MB, 1.8 % binary; SWE-bench's pytest instances have 500-560 files.
  We use 550 files, 70 directories, its size distribution.
- django-size: Django 4.2.7's source distribution (PyPI, 2023-11) holds 6,713 files in
  3,192 directories, 42.7 MB, 20 % binary (compiled translations); the git tree of a 2023
  commit adds CI and tooling files, about 6,900 in all. We use 6,900 files, 3,300
  directories, its size distribution.
"""

from __future__ import annotations

import io
import random
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from swescale.sandbox import build_layer, content_tag

GENERATOR_VERSION = "2"
# Fixed dates and author: the same files give the same commit hash in every build.
COMMIT = (
    "cd /repo && git init -q && git add -A && GIT_AUTHOR_DATE=2020-01-01T00:00:00Z "
    "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z git -c user.name=fixture "
    "-c user.email=fixture@example.com commit -qm base"
)


@dataclass(frozen=True)
class RepoProfile:
    name: str
    files: int
    dirs: int
    max_depth: int
    # File sizes in bytes at 0, 5, 10, ..., 100 percent (21 points); sizes between are
    # interpolated linearly.
    size_vigintiles: tuple[int, ...]
    binary_share: float
    source: str


PYTEST = RepoProfile(
    name="pytest-size",
    files=550,
    dirs=70,
    max_depth=6,
    size_vigintiles=(
        0,
        25,
        70,
        111,
        191,
        294,
        439,
        492,
        567,
        721,
        983,
        1284,
        1818,
        2719,
        3944,
        5817,
        7841,
        11799,
        20606,
        38563,
        329448,
    ),  # fmt: skip
    binary_share=0.018,
    source="pytest 2f406bb (2020-06-01): 512 files, 66 dirs, 3.6 MB",
)
DJANGO = RepoProfile(
    name="django-size",
    files=6900,
    dirs=3300,
    max_depth=9,
    size_vigintiles=(
        0,
        0,
        19,
        113,
        286,
        476,
        684,
        835,
        1019,
        1228,
        1511,
        2010,
        2499,
        3255,
        4477,
        5894,
        7560,
        10004,
        16804,
        27385,
        709050,
    ),  # fmt: skip
    binary_share=0.20,
    source="Django 4.2.7 sdist: 6,713 files, 3,192 dirs, 42.7 MB; git tree about 6,900 files",
)
PROFILES = {p.name: p for p in (PYTEST, DJANGO)}


def _size(rng: random.Random, vigintiles: tuple[int, ...]) -> int:
    u = rng.random() * 20
    i = min(int(u), 19)
    lo, hi = vigintiles[i], vigintiles[i + 1]
    return int(lo + (hi - lo) * (u - i))


def _text(rng: random.Random, size: int) -> bytes:
    lines, total, n = [], 0, 0
    while total < size:
        line = f"value_{n} = {rng.randrange(10**9)}  # {'x' * rng.randrange(40)}\n"
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines).encode()[:size]


def generate(profile: RepoProfile, seed: int = 0) -> tuple[bytes, list[str]]:
    """A tar of the repository's files under ``repo/``, and its text files' paths
    (sorted by size, smallest first) for benchmarks to edit."""
    rng = random.Random(f"{profile.name}-{seed}-{GENERATOR_VERSION}")
    dirs = [("", 0)]
    for i in range(profile.dirs):
        parent, depth = rng.choice([d for d in dirs if d[1] < profile.max_depth] or dirs[:1])
        dirs.append((f"{parent}d{i}/", depth + 1))
    buf = io.BytesIO()
    texts: list[tuple[int, str]] = []
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, _ in dirs[1:]:
            info = tarfile.TarInfo(f"repo/{path.rstrip('/')}")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1577836800
            tar.addfile(info)
        for i in range(profile.files):
            parent = rng.choice(dirs)[0]
            size = _size(rng, profile.size_vigintiles)
            if rng.random() < profile.binary_share:
                path, data = f"{parent}b{i}.bin", b"\0" + rng.randbytes(max(size - 1, 0))
            else:
                path, data = f"{parent}m{i}.py", _text(rng, size)
                texts.append((len(data), path))
            info = tarfile.TarInfo(f"repo/{path}")
            info.size, info.mode, info.mtime = len(data), 0o644, 1577836800
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), [p for _, p in sorted(texts)]


def fixture_image(client, base_image: str, profile: RepoProfile) -> tuple[str, list[str]]:
    """The image with ``profile``'s repository committed at /repo (built once, found by
    its content tag afterwards), and the repository's text files."""
    archive, texts = generate(profile)
    tag = content_tag("swescale/bench-repo", profile.name, base_image, GENERATOR_VERSION, COMMIT)
    build_layer(
        client,
        base_image,
        tag,
        [COMMIT],
        archives=[("/", archive)],
        workdir="/repo",
        network=False,
        timeout=1800,
    )
    return tag, texts


def real_repo_tar(mirror: Path, commit: str) -> bytes | None:
    """``git archive`` of a bare mirror at ``commit`` under ``repo/``; None without it."""
    if not (mirror / "HEAD").exists():
        return None
    made = subprocess.run(
        ["git", f"--git-dir={mirror}", "archive", "--prefix=repo/", commit],
        capture_output=True,
        check=False,
    )
    return made.stdout if made.returncode == 0 else None


def mirror_image(
    client, base_image: str, name: str, mirror: Path, commit: str
) -> tuple[str, list[str]] | None:
    """An image of a real repository from a local mirror, or None without the mirror."""
    archive = real_repo_tar(mirror, commit)
    if archive is None:
        return None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        texts = sorted(
            (m.size, m.name.removeprefix("repo/"))
            for m in tar.getmembers()
            if m.isfile() and m.name.endswith(".py")
        )
    tag = content_tag("swescale/bench-repo", name, base_image, commit, COMMIT)
    build_layer(
        client,
        base_image,
        tag,
        [COMMIT],
        archives=[("/", archive)],
        workdir="/repo",
        network=False,
        timeout=1800,
    )
    return tag, [p for _, p in texts]


def mini_instance(client, task_id: str, workdir: Path):
    """A bundled mini task and its instance image, built with the default configs when
    missing (``workdir``: where its repository is checked out): ``(task, InstanceImage)``."""
    from swescale.sandbox import ImagesConfig
    from swescale.swebench.config import GradingConfig
    from swescale.swebench.images import instance_image
    from swescale.swebench.mini import mini_tasks
    from swescale.swebench.specs import repo_source_for

    task = next(t for t in mini_tasks() if t.id == task_id)
    image = instance_image(
        client,
        task,
        images=ImagesConfig(),
        grading=GradingConfig(),
        repos=repo_source_for([task], Path(workdir)),
    )
    return task, image
