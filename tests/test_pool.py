"""The one interruptible pool (``swescale.pool``): failures stay with their item, a stop
lets jobs in flight end and starts nothing new, signals stop it, progress events arrive
where they are documented to."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from swescale.pool import run_pool, stop_on_signals

ROOT = Path(__file__).resolve().parents[1]


def test_a_failing_job_is_that_items_failure_and_the_others_run() -> None:
    seen: list[tuple[int, str]] = []

    def job(n: int) -> int:
        if n == 2:
            raise ValueError("bad input 2")
        return n * 10

    ran = run_pool(
        job,
        range(6),
        workers=3,
        on_failed=lambda n, exc: seen.append((n, str(exc))),
    )
    assert [o.status for o in ran.outcomes] == ["done", "done", "failed", "done", "done", "done"]
    assert [o.value for o in ran.outcomes if o.status == "done"] == [0, 10, 30, 40, 50]
    assert isinstance(ran.outcomes[2].error, ValueError)
    assert seen == [(2, "bad input 2")]
    assert not ran.stopped and ran.not_run == []


def test_a_stop_set_by_a_policy_starts_nothing_new_and_jobs_in_flight_see_it() -> None:
    stop = threading.Event()
    saw_stop: list[int] = []

    def job(n: int) -> str:
        if n == 0:
            raise RuntimeError("first failure")
        if n == 1:
            # In flight when the policy stops the pool: it sees the event and ends.
            if stop.wait(60):
                saw_stop.append(n)
            return "stopped early"
        return "ran"

    item_1_started = threading.Event()

    def policy(n: int, _exc: Exception) -> None:
        item_1_started.wait(60)  # so that a job is in flight when the stop comes
        stop.set()  # e.g. "N tasks failed in a row"

    # One worker: item 1 holds it until the stop, so every later item meets the stop
    # before it starts.
    ran = run_pool(
        job,
        range(8),
        workers=1,
        stop=stop,
        on_started=lambda n: item_1_started.set() if n == 1 else None,
        on_failed=policy,
    )
    statuses = [o.status for o in ran.outcomes]
    assert statuses[:2] == ["failed", "done"]
    assert ran.outcomes[1].value == "stopped early" and saw_stop == [1]
    assert statuses[2:] == ["not_run"] * 6
    assert ran.not_run == list(range(2, 8))
    assert ran.stopped


def test_progress_events_started_in_workers_and_outcomes_in_the_callers_thread() -> None:
    events: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    caller = threading.current_thread().name

    def note(kind: str, n: int) -> None:
        with lock:
            events.append((kind, n, threading.current_thread().name))

    def job(n: int) -> int:
        if n % 3 == 0:
            raise KeyError(n)
        return n

    run_pool(
        job,
        range(7),
        workers=2,
        name="unit",
        on_started=lambda n: note("started", n),
        on_finished=lambda n, _v: note("finished", n),
        on_failed=lambda n, _e: note("failed", n),
    )
    for n in range(7):
        mine = [e for e in events if e[1] == n]
        assert [e[0] for e in mine] == ["started", "failed" if n % 3 == 0 else "finished"]
        assert mine[0][2].startswith("unit_")
        assert mine[1][2] == caller


def test_an_interrupt_from_a_job_is_raised_and_stops_the_rest() -> None:
    stop = threading.Event()
    started: list[int] = []

    def job(n: int) -> int:
        started.append(n)
        if n == 0:
            raise KeyboardInterrupt
        return n

    with pytest.raises(KeyboardInterrupt):
        run_pool(job, range(20), workers=1, stop=stop)
    assert stop.is_set()
    assert len(started) < 20


def test_outside_the_main_thread_signals_are_left_alone() -> None:
    before = signal.getsignal(signal.SIGTERM)
    found: list[object] = []

    def elsewhere() -> None:
        with stop_on_signals() as stop:
            found.append(signal.getsignal(signal.SIGTERM))
            found.append(stop.is_set())

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert found == [before, False]


def test_signal_handlers_are_restored_on_leaving() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_on_signals():
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {s: signal.getsignal(s) for s in before} == before


# A program using the pool as the commands do: jobs announce themselves, then wait for
# the stop; the outcomes are printed as JSON; a KeyboardInterrupt exits 130.
PROGRAM = textwrap.dedent(
    """
    import json, sys, threading
    from swescale.pool import run_pool, stop_on_signals

    ignore_stop = sys.argv[1] == "ignore-stop"
    signals = []
    release = threading.Event()

    def job(n):
        print(f"started {n}", flush=True)
        if ignore_stop:
            release.wait(120)  # a job that does not look at the stop
        else:
            stop.wait(120)
        return n

    try:
        def seen(number):
            signals.append(number)
            print(f"signal {number}", flush=True)

        with stop_on_signals(on_signal=seen) as stop:
            ran = run_pool(job, range(6), workers=2, stop=stop)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        release.set()
        sys.exit(130)
    print(json.dumps({"signals": signals, "stopped": ran.stopped,
                      "statuses": [o.status for o in ran.outcomes]}), flush=True)
    """
)


def _start(mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PROGRAM, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        # Signals as a terminal or a job runner sends them, even where the test's own
        # process ignores SIGINT.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_started(proc: subprocess.Popen[str], count: int) -> list[str]:
    lines: list[str] = []
    assert proc.stdout is not None
    while sum(line.startswith("started") for line in lines) < count:
        line = proc.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    return lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_pool_in_a_subprocess(sig: signal.Signals) -> None:
    proc = _start("wait-for-stop")
    lines = _wait_for_started(proc, 2)
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["signals"] == [sig.name]
    assert summary["stopped"] is True
    # The two jobs in flight saw the stop and finished; nothing else started.
    assert summary["statuses"] == ["done", "done"] + ["not_run"] * 4
    assert output.count("started") == 2


def test_a_second_signal_interrupts_a_pool_whose_jobs_do_not_stop() -> None:
    proc = _start("ignore-stop")
    lines = _wait_for_started(proc, 2)
    proc.send_signal(signal.SIGTERM)  # sets the stop; these jobs do not look at it
    # Sent together, both may be pending at once, and Python runs pending handlers in
    # signal-number order (SIGINT first): the second is sent once the first was seen.
    assert proc.stdout is not None
    while not lines[-1].startswith("signal"):
        line = proc.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    proc.send_signal(signal.SIGINT)  # the second signal raises KeyboardInterrupt
    rest, _ = proc.communicate(timeout=60)
    output = "".join(lines) + rest
    assert proc.returncode == 130, output
    assert "interrupted" in output
    assert output.count("started") == 2
