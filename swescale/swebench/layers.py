"""What every instance image shares, whichever recipe it is built from: where the
repository and the venv live, the recipe of one image layer, and the error of an image
that cannot be provided.

The layout follows the official images (repository at /testbed), so spec commands and
eval scripts that name /testbed work; the venv at /opt/venv stands in for their conda env.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VENV = "/opt/venv"
# Where the repository lives in every instance image, as in the official images.
REPO_DIR = "/testbed"
CONDA_ENV = {
    "PATH": "/opt/miniconda3/envs/testbed/bin:/opt/miniconda3/bin:/usr/local/sbin:/usr/local/bin:"
    "/usr/sbin:/usr/bin:/sbin:/bin",
    "CONDA_DEFAULT_ENV": "testbed",
}
VENV_ENV = {
    "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "VIRTUAL_ENV": VENV,
}


class ImageError(RuntimeError):
    """An image that cannot be provided; the message names the task and why."""


@dataclass(frozen=True)
class Recipe:
    """One image layer: what it is built from and how (hashed into its tag)."""

    base: str
    tag: str
    commands: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...] = ()
    notes: tuple[str, ...] = ()
    suite: str = "bookworm"


def slug(text: str, limit: int = 60) -> str:
    """``text`` as the readable part of an image tag (lower case, ``[a-z0-9_.-]``)."""
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.")[:limit] or "x"
