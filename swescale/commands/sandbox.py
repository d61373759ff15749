"""Commands: ``images build|push|list|prune``, ``gc``, ``sandbox shell IMAGE``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
images_app = typer.Typer(
    help="Build, publish, list and prune swescale images.", no_args_is_help=True
)
sandbox_app = typer.Typer(help="Interactive sandboxes for debugging.", no_args_is_help=True)


def _client():
    from swescale.sandbox import EngineUnavailable, docker_client

    try:
        return docker_client()
    except EngineUnavailable as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@images_app.command("build")
def images_build(
    suite: str = typer.Option(
        "bookworm", help="Debian suite: bullseye (3.9), bookworm (3.11), trixie (3.13)."
    ),
    mirror: str = typer.Option("", help="Debian mirror; default: the host's apt sources."),
    pull: str = typer.Option(
        "", help="Pull this image as the root filesystem instead of debootstrap."
    ),
) -> None:
    """Build (or find, by content tag) the base image."""
    from swescale.sandbox import ImageBuildError, ImagesConfig, ensure_base_image

    client = _client()
    start = time.monotonic()
    try:
        tag = ensure_base_image(
            client, ImagesConfig(suite=suite, mirror=mirror, pull=pull), progress=console.print
        )
    except ImageBuildError as exc:
        console.print(f"[red]build failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"base image ready: [bold]{tag}[/bold] ({time.monotonic() - start:.0f}s)")
    print(tag)


@images_app.command("push")
def images_push(
    registry: str = typer.Option(
        ..., "--registry", help="Registry HOST:PORT (or HOST:PORT/PREFIX) to publish to."
    ),
    official_names: bool = typer.Option(
        False,
        "--official-names",
        help="Publish each instance under its official name in the official layout "
        "(repository at /testbed, the official eval script runs unchanged), for "
        "--official-images; without it, under the content tags local builds look for.",
    ),
    dataset: str = typer.Option(..., "--dataset", "-d", help="mini, a file, or a published name."),
    split: str = typer.Option(None, "--split"),
    instance: list[str] = typer.Option(None, "--instance", "-i", help="Only these instance ids."),
    repos_dir: Path = typer.Option(None, "--repos-dir", help="Local git mirrors."),
    config: str = typer.Option(None, "--config", "-c"),
    override: list[str] = typer.Option(
        None, "--set", "-o", "--override", help="Config override key=value."
    ),
) -> None:
    """Publish instance images to a registry, building those not built yet.

    Other machines and Ray nodes then pull them (--registry) instead of building. With
    --official-names, `eval --official-images --registry` grades in them as in the
    official images."""
    from swescale.commands.pulls import with_registry
    from swescale.commands.swebench import _configs, _dataset
    from swescale.swebench.datasets import DatasetError, load_tasks
    from swescale.swebench.evaluate import Grader
    from swescale.swebench.publish import publish_task

    cfg = with_registry(_configs(config, override or []), registry)
    address = cfg.images.registry
    data = _dataset(cfg, dataset, split, instance or [], None, None, repos_dir)
    try:
        tasks = load_tasks(data)
    except DatasetError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    unknown = sorted(set(instance or []) - {t.id for t in tasks})
    for iid in unknown:
        console.print(f"[red]error:[/red] no instance {iid!r} in {dataset}")
    if not tasks:
        console.print("[red]error:[/red] no tasks selected")
        raise typer.Exit(2)
    client = _client()
    # The local build is what gets published, whatever the config says about grading.
    grading = cfg.grading.model_copy(update={"use_official_images": False})
    local_images = cfg.images.model_copy(update={"registry": ""})
    grader = Grader.for_tasks(client, tasks, local_images, grading, data)
    failed: list[str] = list(unknown)
    total_bytes, total_seconds = 0, 0.0
    with _push_bars() as show:
        for task in tasks:
            image = grader.image(task)
            if isinstance(image, str):
                console.print(f"[red]FAIL[/red] {task.id}: no local image: {image}")
                failed.append(task.id)
                continue
            try:
                done = publish_task(
                    client,
                    task,
                    image,
                    registry=address,
                    official_names=official_names,
                    images=cfg.images,
                    grading=cfg.grading,
                    repos=grader.repos,
                    progress=show,
                )
            except Exception as exc:  # noqa: BLE001 - one task's failure, not the batch's
                console.print(f"[red]FAIL[/red] {task.id}: {exc}", markup=False)
                failed.append(task.id)
                continue
            for item in done:
                total_bytes += item.size_bytes
                total_seconds += item.seconds
                console.print(
                    f"pushed {item.local} -> {item.remote} ({item.size_bytes / 1e6:.0f} MB, "
                    f"{item.seconds:.1f}s, {item.digest[:19]})",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
    console.print(
        f"{len(tasks) - len(failed) + len(unknown)}/{len(tasks)} instance(s) published to "
        f"{address} ({total_bytes / 1e9:.2f} GB of images, {total_seconds:.0f}s)"
    )
    if official_names and len(failed) < len(tasks) + len(unknown):
        console.print(
            f"grade in them: swescale eval PREDICTIONS --dataset {dataset} --official-images "
            f"--registry {address}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if failed:
        raise typer.Exit(1)


def _push_bars():
    """Bars for the layers a push uploads (bytes, speed), one per image."""
    import contextlib

    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    )
    rows: dict[str, object] = {}

    def show(p) -> None:
        if p.name not in rows:
            rows[p.name] = progress.add_task(f"pushing {p.name}", total=p.total_bytes or None)
        progress.update(rows[p.name], completed=p.done_bytes, total=p.total_bytes or None)
        if p.finished:
            progress.remove_task(rows.pop(p.name))

    @contextlib.contextmanager
    def shown():
        with progress:
            yield show

    return shown()


@images_app.command("list")
def images_list() -> None:
    """swescale images, least recently used first: the tag (as `sandbox shell` takes
    it), when a sandbox last started from it, when it was built, its size."""
    from swescale.report.terminal import Column, fit_table, print_table
    from swescale.sandbox import ImagesConfig
    from swescale.sandbox.image_cache import ImageCache

    client = _client()
    cache = ImageCache(ImagesConfig().cache_dir)
    rows, total = [], 0
    for image in cache.images(client):
        total += image.size
        rows.append(
            [image.tag, _when(image.last_used), _created(client, image.id), _gb(image.size)]
        )
    out = Console()
    columns = [
        Column("tag"),
        Column("last used"),
        Column("built", optional=1),
        Column("size", "right", optional=2),
    ]
    print_table(out, fit_table(columns, rows, out.width))
    console.print(
        f"{len(rows)} image(s), {total / 1e9:,.2f} GB (shared layers counted once per image); "
        "open one with `swescale sandbox shell TAG`",
        highlight=False,
    )


def _when(stamp: float) -> str:
    """``12-07 17:13`` this year, ``2025-12-07`` before: short enough to leave the tag
    its room at 80 columns."""
    if not stamp:
        return "-"
    local = time.localtime(stamp)
    if local.tm_year == time.localtime().tm_year:
        return time.strftime("%m-%d %H:%M", local)
    return time.strftime("%Y-%m-%d", local)


def _gb(size: int) -> str:
    return f"{size / 1e9:,.2f} GB"


def _created(client, image_id: str) -> str:
    try:
        created = str(client.images.get(image_id).attrs.get("Created") or "")
    except Exception:  # noqa: BLE001 - a listing shows what it can
        return "-"
    if not created:
        return "-"
    try:
        from datetime import datetime

        return _when(datetime.fromisoformat(created[:19]).timestamp())
    except ValueError:
        return created[:16].replace("T", " ")


@images_app.command("prune")
def images_prune(
    limit_gb: float = typer.Option(None, help="Keep the cache under this size (default: config)."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="List what would be removed, least recently used first; remove nothing.",
    ),
) -> None:
    """Remove least recently used images until the cache fits its size limit."""
    from swescale.sandbox import ImagesConfig
    from swescale.sandbox.image_cache import ImageCache

    cfg = ImagesConfig()
    limit = cfg.cache_limit_gb if limit_gb is None else limit_gb
    client = _client()
    cache = ImageCache(cfg.cache_dir)
    found = {i.tag: i for i in cache.images(client)}
    removed = cache.prune(client, int(limit * 1e9), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for tag in removed:
        image = found.get(tag)
        used = (
            f"last used {_when(image.last_used)}"
            if image and image.last_used
            else "no use recorded"
        )
        detail = f" ({_gb(image.size)}, {used})" if image else ""
        # One line per image, never wrapped: the tag stays whole to copy.
        console.print(f"{verb} {tag}{detail}", markup=False, highlight=False, soft_wrap=True)
    freed = sum(found[t].size for t in removed if t in found)
    console.print(
        f"{len(removed)} image(s) {verb}, {_gb(freed)}; limit {limit:g} GB"
        + ("; nothing removed (--dry-run)" if dry_run else ""),
        highlight=False,
    )


@sandbox_app.command("shell")
def sandbox_shell(
    image: str = typer.Argument(
        ..., help="Image to start, e.g. a tag from `swescale images list`."
    ),
    workdir: str = typer.Option(
        "",
        "--workdir",
        "-w",
        help="Directory to open in; default: the image's working directory (the repository: "
        "/testbed in SWE-bench and mini images).",
    ),
    network: bool = typer.Option(False, help="Give the sandbox network access."),
) -> None:
    """An interactive shell in a sandbox with the usual limits; destroyed on exit."""
    from swescale.sandbox import DockerSandbox, SandboxConfig, SandboxError

    client = _client()
    cfg = SandboxConfig(network=network)
    cfg = cfg.model_copy(update={"workdir": workdir or _image_workdir(client, image) or "/"})
    try:
        sb = DockerSandbox.create(client, image, cfg, labels={"run": "shell"})
    except SandboxError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"sandbox {sb.container.short_id} from {image} in {sb.workdir}; `exit` or Ctrl-D "
        "leaves (the directory and variables persist between commands)",
        markup=False,
        highlight=False,
    )
    with sb:
        while True:
            try:
                line = input(f"{sb.session.cwd if sb.session else sb.workdir}$ ")
            except (EOFError, KeyboardInterrupt):
                print()
                break
            if line.strip() in ("exit", "logout"):
                break
            result = sb.execute(line)
            sys.stdout.write(result.output)
            if result.note or result.infra_error:
                console.print(f"[yellow]{result.note or result.infra_error}[/yellow]")
            if result.exit_code not in (0, None):
                console.print(f"[dim]exit {result.exit_code}[/dim]")


def _image_workdir(client, image: str) -> str:
    """The image's working directory ("" when it has none, or is "/")."""
    import docker.errors

    try:
        config = client.images.get(image).attrs.get("Config") or {}
    except docker.errors.DockerException:
        return ""  # not here yet: the sandbox pulls it, or says it cannot
    where = str(config.get("WorkingDir") or "")
    return "" if where == "/" else where


def gc(
    run_id: str = typer.Option(None, help="Only containers and networks of this run."),
    dry_run: bool = typer.Option(
        False, help="List what would be removed, and what is kept and why; remove nothing."
    ),
) -> None:
    """Remove swescale containers and networks of this installation whose owner process
    is provably gone on this host; anything else is kept."""
    from swescale.sandbox import reap
    from swescale.sandbox.gc import survey

    client = _client()
    if dry_run:
        found = survey(client, run_id)
        for item in found:
            verb = "would remove" if item.removed else "would keep"
            console.print(f"{verb} {item.describe()}", markup=False, highlight=False)
        removed = [r for r in found if r.removed]
        console.print(f"{len(removed)} to remove, {len(found) - len(removed)} to keep")
        return
    removed = reap(client, run_id=run_id)
    for item in removed:
        console.print(f"removed {item.describe()}", markup=False, highlight=False)
    containers = sum(1 for r in removed if r.kind == "container")
    console.print(f"removed {containers} container(s), {len(removed) - containers} network(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(images_app, name="images")
    app.add_typer(sandbox_app, name="sandbox")
    app.command("gc")(gc)
