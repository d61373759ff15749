"""The ``swescale`` command line.

Each module of :mod:`swescale.commands` adds its commands (``register(app)``), so this
file stays a table of contents. Nothing below the commands imports them. Imports are
lazy inside the commands to keep ``--help`` fast.
"""

from __future__ import annotations

import importlib
import inspect
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
    _reflow_help(app)


def reflow(doc: str | None) -> str | None:
    """A docstring's paragraphs each on one line (the help reflows them to the terminal;
    the source breaks them at 90 columns). Indented lines and list items stay as they are."""
    if not doc:
        return doc
    paragraphs = []
    for block in inspect.cleandoc(doc).split("\n\n"):
        lines = block.splitlines()
        out = [lines[0]] if lines else []
        for line in lines[1:]:
            if line.startswith((" ", "-", "*", "```")) or out[-1].startswith((" ", "```")):
                out.append(line)
            else:
                out[-1] += " " + line.strip()
        paragraphs.append("\n".join(out))
    return "\n\n".join(paragraphs)


def _reflow_help(typer_app: typer.Typer) -> None:
    """The help of every command and group, from its docstring, reflowed."""
    for command in typer_app.registered_commands:
        if command.help is None and command.callback is not None:
            command.help = reflow(command.callback.__doc__)
    for group in typer_app.registered_groups:
        sub = group.typer_instance
        if sub is None:
            continue
        if group.help is None and sub.info.help is not None:
            sub.info.help = reflow(sub.info.help)
        _reflow_help(sub)


_register_all()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
