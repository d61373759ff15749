"""``swescale serve``: launch the configured local model server and keep it running."""

from __future__ import annotations

import signal
import time

import typer


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        config: str = typer.Option(None, "--config", "-c", help="Run config file or preset."),
        override: list[str] = typer.Option(
            None, "--override", "-o", help="key=value, e.g. model.kind=vllm"
        ),
    ) -> None:
        """Launch the model server the config names (llama.cpp or vLLM) and print its URL.

        Point other runs at it with ``-o model.endpoints=[URL]``. Ctrl-C stops it.
        """
        from swescale.agent.models.servers import ServerError, server_for
        from swescale.config import ConfigError, load_config

        try:
            cfg = load_config(config, override or [])
            server = server_for(cfg.model)
        except (ConfigError, ServerError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"starting {server.kind}: {' '.join(server.command())}", err=True)
        typer.echo(f"log: {server.log_path}", err=True)
        try:
            server.start()
        except ServerError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        typer.echo(server.url)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while server.process is not None and server.process.poll() is None:
                time.sleep(1.0)
            typer.echo(f"server exited; log {server.log_path}", err=True)
            raise typer.Exit(1)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
