"""The ``swescale`` command line.

Each module of :mod:`swescale.commands` adds its commands (``register(app)``), so this
file stays a table of contents. Nothing below the commands imports them. Imports are
lazy inside the commands to keep ``--help`` fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Scale test-time compute for software-engineering agents.",
    pretty_exceptions_show_locals=False,
)

# Subpackages whose cli module registers commands, in help order.
_COMMAND_MODULES = [
    "swescale.commands.run",  # run, demo
    "swescale.commands.solve",  # solve
    "swescale.commands.swebench",  # eval, validate, tasks
    "swescale.commands.select",  # select, ensemble
    "swescale.commands.replay",  # replay, replay import
    "swescale.commands.report",  # report
    "swescale.commands.sandbox",  # images, gc, sandbox, engine
    "swescale.commands.serve",  # serve
    "swescale.commands.ci",  # ci
]


@app.callback()
def _root(
    verbose: int = typer.Option(
        0,
        "--verbose",
        "-v",
        count=True,
        help="More on the terminal: -v info (HTTP request logs too), -vv debug. "
        "Runs keep every log record in <run dir>/swescale.log whatever this says.",
    ),
) -> None:
    from swescale.logs import setup_logging

    setup_logging(verbose)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # that subpackage has no commands
            raise
        module.register(app)


_register_all()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
