"""Commands: ``images build|list|prune``, ``gc``, ``sandbox shell IMAGE``."""

from __future__ import annotations

import sys
import time

import typer
from rich.console import Console
from rich.table import Table

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
    """swescale images, least recently used first."""
    from swescale.sandbox import ImagesConfig
    from swescale.sandbox.image_cache import ImageCache

    cache = ImageCache(ImagesConfig().cache_dir)
    table = Table("tag", "size", "last used")
    total = 0
    for image in cache.images(_client()):
        total += image.size
        used = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(image.last_used))
            if image.last_used
            else "-"
        )
        table.add_row(image.tag, f"{image.size / 1e9:.2f} GB", used)
    Console().print(table)
    console.print(f"total {total / 1e9:.2f} GB (shared layers counted once per image)")


@images_app.command("prune")
def images_prune(
    limit_gb: float = typer.Option(None, help="Keep the cache under this size (default: config)."),
) -> None:
    """Remove least recently used images until the cache fits its size limit."""
    from swescale.sandbox import ImagesConfig
    from swescale.sandbox.image_cache import ImageCache

    cfg = ImagesConfig()
    limit = cfg.cache_limit_gb if limit_gb is None else limit_gb
    removed = ImageCache(cfg.cache_dir).prune(_client(), int(limit * 1e9))
    for tag in removed:
        console.print(f"removed {tag}")
    console.print(f"{len(removed)} image(s) removed; limit {limit:g} GB")


@sandbox_app.command("shell")
def sandbox_shell(
    image: str = typer.Argument(
        ..., help="Image to start, e.g. a tag from `swescale images list`."
    ),
    network: bool = typer.Option(False, help="Give the sandbox network access."),
) -> None:
    """An interactive shell in a sandbox with the usual limits; destroyed on exit."""
    from swescale.sandbox import DockerSandbox, SandboxConfig, SandboxError

    client = _client()
    try:
        sb = DockerSandbox.create(
            client, image, SandboxConfig(network=network), labels={"run": "shell"}
        )
    except SandboxError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"sandbox {sb.container.short_id} from {image}; `exit` or Ctrl-D leaves (state persists per command)"
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
