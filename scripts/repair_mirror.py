"""Restore objects a mirror lacks (large files cut from a copy) from the project's own
releases on the package index, each verified by its git object id.

    .venv/bin/python scripts/repair_mirror.py --mirror /srv/mirrors/pvlib__pvlib-python.git \\
        --dist pvlib [--versions 0.9.5 0.8.1] [--max-downloads 8]

Every blob the mirror's refs need and lacks (``git rev-list --objects --missing=print``)
is looked for in the files of released distributions (wheels or sdists, fetched with
``pip download --no-deps``; without ``--versions``, newest first). A file is written into
the mirror (``git hash-object -w``) only when its blob id is exactly the missing one, so
the repaired mirror holds the original bytes and nothing else. What is still missing is
listed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path


def git(mirror: Path, *args: str, data: bytes | None = None) -> str:
    proc = subprocess.run(
        ["git", f"--git-dir={mirror}", *args], input=data, capture_output=True, check=False
    )
    return proc.stdout.decode(errors="replace")


def missing_blobs(mirror: Path) -> set[str]:
    out = git(mirror, "rev-list", "--all", "--objects", "--missing=print")
    return {line[1:].strip() for line in out.splitlines() if line.startswith("?")}


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def files_of(archive: Path) -> Iterator[tuple[str, bytes]]:
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if not name.endswith("/"):
                    yield name, zf.read(name)
    elif archive.name.endswith((".tar.gz", ".tgz", ".tar.bz2")):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                if member.isfile():
                    handle = tf.extractfile(member)
                    if handle:
                        yield member.name, handle.read()


def versions(dist: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", dist],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        if line.startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",")]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mirror", type=Path, required=True)
    parser.add_argument("--dist", required=True, help="The project's name on the package index.")
    parser.add_argument("--versions", nargs="*", default=None)
    parser.add_argument("--max-downloads", type=int, default=8)
    args = parser.parse_args()
    wanted = missing_blobs(args.mirror)
    print(f"{args.mirror}: {len(wanted)} missing object(s)")
    for tried, version in enumerate(args.versions or versions(args.dist)):
        if not wanted or tried >= args.max_downloads:
            break
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    "-d",
                    tmp,
                    f"{args.dist}=={version}",
                ],
                capture_output=True,
                check=False,
            )
            for archive in Path(tmp).iterdir():
                for name, data in files_of(archive):
                    found = blob_id(data)
                    if found in wanted:
                        written = git(
                            args.mirror, "hash-object", "-w", "--stdin", data=data
                        ).strip()
                        if written == found:
                            wanted.discard(found)
                            print(f"  restored {found[:12]} {name} from {archive.name}")
    still = missing_blobs(args.mirror)
    print(
        f"{len(still)} object(s) still missing"
        + (f": {', '.join(sorted(still)[:10])}" if still else "")
    )
    return 0 if not still else 1


if __name__ == "__main__":
    sys.exit(main())
