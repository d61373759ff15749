"""Logging for the command line: a quiet terminal and a complete log file.

The terminal gets warnings and errors only (``-v`` adds info, third-party request logs
included; ``-vv`` adds debug), one line each, printed through rich so they appear above a
live progress display instead of tearing it. At the default verbosity each kind of message
(logger and message template) is shown at most a few times and the same message never
twice; the rest are counted, and :func:`suppressed_note` says how many were held back and
where they all are. Tracebacks
never reach the terminal at the default verbosity: the line names the exception and the
log file holds the traceback.

A command that has a place to keep things (``run``, ``select`` and ``report``: the run
directory, ``eval``: its results folder) attaches a log file with :func:`log_to_file`; it
receives every record at info and above (debug for swescale's own loggers), whatever the
terminal shows. A command's own warning and error lines (a config error, failed tasks,
damaged records, an interrupt) are printed with :func:`show`, which records them in that
file too: the file holds every warning and error the terminal showed.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"
# A log record's attribute saying the terminal already has the line (``show``).
ON_TERMINAL = "swescale_on_terminal"
INTERRUPTED = "interrupted; rerun the same command to resume"

_state_lock = threading.Lock()


class ConsoleHandler(logging.Handler):
    """One line per record on the current ``sys.stderr`` (looked up at each record, so a
    rich live display that redirects stderr prints it above the bars).

    With ``once`` set, a message already shown, or one more of a kind (logger, template)
    already shown ``per_kind`` times, is counted instead of printed."""

    def __init__(self, level: int, once: bool, per_kind: int = 3) -> None:
        super().__init__(level)
        self.once = once
        self.per_kind = per_kind
        self.shown: set[str] = set()
        self.kinds: dict[tuple[str, str], int] = {}
        self.held_back = 0
        self.log_file: Path | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if getattr(record, ON_TERMINAL, False):
                return  # printed by the command itself (show)
            if record.name == "py.warnings" and self.level > logging.INFO:
                return  # library deprecation chatter: the log file has it
            text = record.getMessage()
            if self.once:
                kind = (record.name, str(record.msg))
                with _state_lock:
                    if text in self.shown or self.kinds.get(kind, 0) >= self.per_kind:
                        self.held_back += 1
                        return
                    self.shown.add(text)
                    self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                text += f" ({type(exc).__name__}: {exc})"
                if self.log_file is not None and self.level > logging.DEBUG:
                    text += f"; traceback in {self.log_file}"
            if self.level <= logging.DEBUG and record.exc_info:
                text = self.format(record)
            style = {
                logging.WARNING: "yellow",
                logging.ERROR: "red",
                logging.CRITICAL: "bold red",
            }.get(record.levelno, "dim")
            _console().print(
                f"[{style}]{record.levelname.lower()}[/{style}] {_escape(text)}",
                highlight=False,
                soft_wrap=True,
            )
        except Exception:  # noqa: BLE001 - logging must never break the program
            self.handleError(record)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    # A new Console per line is cheap and follows sys.stderr wherever it points now.
    return Console(file=sys.stderr, stderr=True)


def _our_handlers(logger: logging.Logger, kind: type) -> list[logging.Handler]:
    return [h for h in logger.handlers if isinstance(h, kind)]


def setup_logging(verbosity: int = 0) -> ConsoleHandler:
    """Configure the root logger for a command: ``verbosity`` 0 (warnings, each kind
    once), 1 (info, every record; third-party request logs too), 2+ (debug). Idempotent:
    a second call replaces the terminal handler, keeping any attached log file."""
    root = logging.getLogger()
    for handler in _our_handlers(root, ConsoleHandler):
        root.removeHandler(handler)
    # Handlers installed by logging.basicConfig elsewhere would print everything again.
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (
            sys.stderr,
            sys.stdout,
        ):
            root.removeHandler(handler)
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    console = ConsoleHandler(level, once=verbosity <= 0)
    console.setFormatter(logging.Formatter(FILE_FORMAT))
    files = _our_handlers(root, RunLogHandler)
    if files:
        console.log_file = Path(files[-1].baseFilename)
    root.addHandler(console)
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    logging.getLogger("swescale").setLevel(logging.DEBUG)
    # Loggers earlier code quietened by name: their records now reach the log file, and
    # the terminal's own level decides what is shown.
    for name in ("httpx", "httpx2", "httpcore", "httpcore2", "urllib3", "docker", "openai"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.captureWarnings(True)
    return console


def show(console: Any, level: int, text: str, **options: Any) -> None:
    """Print one of a command's own lines on ``console`` (rich markup unless
    ``markup=False``; a stderr console when None) and, when it is a warning or an error,
    record it as plain text in the command's log file. The terminal handler skips that
    record: the line appears once on the terminal and once in the file."""
    from rich.console import Console
    from rich.text import Text

    console = console if console is not None else Console(stderr=True)
    options.setdefault("highlight", False)
    console.print(text, **options)
    if level < logging.WARNING:
        return
    plain = text
    if options.get("markup", True):
        try:
            plain = Text.from_markup(text).plain
        except Exception:  # noqa: BLE001 - a line that is not valid markup is kept as it is
            plain = text
    logging.getLogger("swescale.terminal").log(
        level, "%s", plain.strip(), extra={ON_TERMINAL: True}
    )


class RunLogHandler(logging.FileHandler):
    """The log file of one command (a run directory's swescale.log)."""


def console_handler() -> ConsoleHandler | None:
    found = _our_handlers(logging.getLogger(), ConsoleHandler)
    return found[-1] if found else None  # type: ignore[return-value]


@contextlib.contextmanager
def log_to_file(path: str | Path) -> Iterator[Path]:
    """Append every log record (info and up; swescale's debug too) to ``path`` while the
    block runs. The terminal handler learns the path, to point at it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handler = RunLogHandler(target, encoding="utf-8", delay=True)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    root = logging.getLogger()
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    console = console_handler()
    previous = console.log_file if console else None
    if console is not None:
        console.log_file = target
    # The first line names the command, so the file exists (and says what wrote it) even
    # when nothing else is logged.
    logging.getLogger("swescale").info("%s", " ".join(["swescale", *sys.argv[1:]]))
    try:
        yield target
    except KeyboardInterrupt:
        show(None, logging.WARNING, INTERRUPTED, markup=False)
        raise
    except Exception as exc:
        import click
        import typer

        ends = (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort)
        if not isinstance(exc, ends):
            # The terminal gets the traceback from the command line; the file keeps it.
            logging.getLogger("swescale").error(
                "the command failed", exc_info=True, extra={ON_TERMINAL: True}
            )
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
        if console is not None:
            console.log_file = previous


def suppressed_note() -> str:
    """'N more warnings not shown; all in <file>' when the terminal held some back."""
    console = console_handler()
    if console is None or not console.held_back:
        return ""
    where = f": all in {console.log_file}" if console.log_file else " (-v shows them)"
    return f"{console.held_back} repeated log message(s) not shown{where}"
