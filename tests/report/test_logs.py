"""A quiet terminal: third-party request logs only with -v, repeats held back and
counted, tracebacks in the log file, every record in the file."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from swescale.logs import log_to_file, setup_logging, suppressed_note


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_default_terminal_hides_request_logs_and_repeats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    setup_logging(0)
    log = logging.getLogger("swescale.scaling.explore")
    with log_to_file(tmp_path / "swescale.log") as path:
        for name in ("httpx", "httpx2", "openai"):
            logging.getLogger(name).info("HTTP Request: POST http://127.0.0.1:8080/v1/chat")
        logging.getLogger("swescale.scaling.batch").info("task t failed at explore: boom")
        for i in range(10):
            log.warning("%s: trajectory %s failed: %s", "task", i, "ModelError: down")
        for _ in range(3):
            log.warning("verifier unavailable: judge")
        try:
            raise RuntimeError("engine gone")
        except RuntimeError:
            log.exception("model failed")
        note = suppressed_note()
    err = capsys.readouterr().err
    assert "HTTP Request" not in err and "task t failed" not in err
    # Three of a kind are shown, the same message once; the rest are counted.
    assert err.count("trajectory") == 3 and err.count("verifier unavailable") == 1
    assert "RuntimeError: engine gone" in err and "Traceback" not in err
    assert str(path) in err  # where the traceback is
    assert "9 repeated log message(s) not shown" in note and str(path) in note
    text = path.read_text()
    assert text.count("HTTP Request") == 3 and text.count("trajectory") == 10
    assert "Traceback" in text and "task t failed" in text


def test_verbose_brings_request_logs_back(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    setup_logging(1)
    for _ in range(5):
        logging.getLogger("httpx2").info("HTTP Request: POST http://127.0.0.1:8080/v1/chat")
    err = capsys.readouterr().err
    assert err.count("HTTP Request") == 5
    assert suppressed_note() == ""


def test_setup_replaces_a_plain_stderr_handler(restore_logging: None) -> None:
    from swescale.logs import ConsoleHandler

    root = logging.getLogger()
    root.addHandler(logging.StreamHandler(sys.stderr))  # what logging.basicConfig adds
    setup_logging(0)
    setup_logging(2)
    assert sum(isinstance(h, ConsoleHandler) for h in root.handlers) == 1
    assert not any(type(h) is logging.StreamHandler for h in root.handlers)
    assert root.level == logging.DEBUG
