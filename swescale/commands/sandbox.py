"""Commands: ``images build|list|prune``, ``gc``, ``sandbox shell IMAGE``."""

from __future__ import annotations

import sys
import time

import typer
from rich.console import Console

console = Console(stderr=True)
images_app = typer.Typer(help="Build, list and prune swescale images.", no_args_is_help=True)
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
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def _gb(size: int) -> str:
    return f"{size / 1e9:,.2f} GB"


def _created(client, image_id: str) -> str:
    try:
        created = str(client.images.get(image_id).attrs.get("Created") or "")
    except Exception:  # noqa: BLE001 - a listing shows what it can
        return "-"
    return created[:16].replace("T", " ") or "-"


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
