"""What the commands share about registries: the ``--registry`` option, long pulls and
pushes on the terminal, and the check that a registry has the images a command needs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import typer

REGISTRY_HELP = (
    "Registry HOST:PORT (or HOST:PORT/PREFIX) to pull instance images from "
    "(images.registry): official "
    "images as HOST:PORT/<official name>, local builds by content tag."
)


def registry_option() -> Any:
    return typer.Option(None, "--registry", help=REGISTRY_HELP)


def with_registry(cfg: Any, registry: str | None) -> Any:
    """``cfg`` with ``images.registry`` set from ``--registry`` (checked as the config
    key is); a bad address exits with status 2 and says why."""
    if registry is None:
        return cfg
    from swescale.sandbox.registry import check_registry

    try:
        address = check_registry(registry)
    except ValueError as exc:
        _error(f"error: --registry: {exc}")
        raise typer.Exit(2) from exc
    return cfg.model_copy(update={"images": cfg.images.model_copy(update={"registry": address})})


def _error(line: str) -> None:
    from swescale.logs import show

    show(None, logging.ERROR, line, markup=False, soft_wrap=True)


@contextlib.contextmanager
def transfer_bars(status: Callable[[str], None] | None = None) -> Iterator[None]:
    """A bar per image being pulled (bytes, speed), removed when it is done. A command
    that already shows a live display passes ``status`` instead: it gets one line per
    update ("pulling NAME: 120/910 MB, 3/7 layers"; "" when the pull is done)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    from swescale.sandbox.registry import pull_progress

    if status is not None:

        def line(p: Any) -> None:
            status("" if p.finished else p.describe())

        with pull_progress(line):
            yield
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    rows: dict[str, Any] = {}

    def show(p: Any) -> None:
        if p.name not in rows:
            rows[p.name] = progress.add_task(f"pulling {p.name}", total=p.total_bytes or None)
        progress.update(rows[p.name], completed=p.done_bytes, total=p.total_bytes or None)
        if p.finished:
            progress.remove_task(rows.pop(p.name))

    with progress, pull_progress(show):
        yield


def missing_in_registry(client: Any, tasks: list[Any], images: Any, grading: Any) -> list[str]:
    """Ids of ``tasks`` whose official image the configured registry lacks (asked
    before anything runs, so one line can say what to publish). [] when no registry is
    set, official images are not used, or the registry cannot be asked (each task's pull
    then says why)."""
    from swescale.sandbox.registry import RegistryError, in_registry
    from swescale.swebench.images import official_image_name

    if not images.registry or not grading.use_official_images:
        return []
    missing = []
    for task in tasks:
        name = official_image_name(task, grading, images.registry)
        try:
            if not in_registry(client, name):
                missing.append(task.id)
        except RegistryError as exc:
            _error(f"error: {exc}")
            return []
    return missing


def warn_missing(missing: list[str], images: Any, dataset: str) -> None:
    """The warning about images a registry lacks, with the command that publishes them."""
    from swescale.logs import show
    from swescale.swebench.evaluate import summarize_names
    from swescale.swebench.images import publish_command

    if not missing:
        return
    show(
        None,
        logging.WARNING,
        f"warning: the registry {images.registry} lacks the official image of "
        f"{len(missing)} instance(s) ({summarize_names(missing, 5)}); they end as errors. "
        f"Publish them from a machine that has built them: "
        f"{publish_command(images.registry, missing[:20], dataset)}"
        + (" ..." if len(missing) > 20 else ""),
        markup=False,
        soft_wrap=True,
    )
