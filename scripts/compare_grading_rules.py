"""How many verdicts the current official grading rules (swebench 5.x, what swescale
grades with) change against the 4.1.0 rules, on stored test logs.

    .venv/bin/python scripts/compare_grading_rules.py --dataset D.parquet \\
        logs/run_validation/<run_id> [logs/run_evaluation/<run_id>/<model> ...]

Every ``<instance>/<run>/test_output.txt`` (validation) or ``<instance>/test_output.txt``
(evaluation) under the given folders is graded twice — with 5.x ``get_logs_eval`` /
``get_eval_tests_report`` and with the same functions of 4.1.0 (loaded from the recipes
install) — and every instance whose verdict differs is listed with the reason (the 5.x
rule that decided it).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from swebench.harness.constants import TestStatus
from swebench.harness.grading import parse_test_exit_code

from swescale.swebench.config import DatasetConfig
from swescale.swebench.datasets import load_tasks
from swescale.swebench.grading import instance_report
from swescale.swebench.recipes import import_release_modules, install_recipes
from swescale.swebench.specs import log_parser_for


def legacy_resolved(release, task, log_path: Path) -> bool:
    """The 4.1.0 verdict: its own get_logs_eval (its parsers and validity rules),
    get_eval_tests_report and get_resolution_status on the same log file."""
    grading4 = release["swebench.harness.grading"]
    spec = release["swebench.harness.test_spec.test_spec"].TestSpec(
        instance_id=task.id,
        repo=task.repo,
        version=task.version or "",
        repo_script_list=[],
        eval_script_list=[],
        env_script_list=[],
        arch="x86_64",
        FAIL_TO_PASS=list(task.fail_to_pass),
        PASS_TO_PASS=list(task.pass_to_pass),
        language="py",
        docker_specs={},
        namespace=None,
    )
    status, found = grading4.get_logs_eval(spec, str(log_path))
    if not found:
        return False
    gold = {"FAIL_TO_PASS": task.fail_to_pass, "PASS_TO_PASS": task.pass_to_pass}
    report = grading4.get_eval_tests_report(status, gold)
    return grading4.get_resolution_status(report) == "RESOLVED_FULL"


def reason(task, log: str) -> str:
    parse = log_parser_for(task)
    status = parse(log)
    code = parse_test_exit_code(log)
    if (
        code not in (None, 0)
        and status
        and not any(s in (TestStatus.FAILED.value, TestStatus.ERROR.value) for s in status.values())
    ):
        return "test command exited non-zero with no failure in the log"
    if any(status.get(t) == TestStatus.SKIPPED.value for t in task.fail_to_pass):
        return "a FAIL_TO_PASS test was skipped"
    if any(
        t not in status and t.count("[") > t.count("]")
        for t in task.fail_to_pass + task.pass_to_pass
    ):
        return "a truncated parametrized id matched by prefix"
    if not status:
        return "nothing parsed and no sign the suite ran"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    tasks = {t.id: t for t in load_tasks(DatasetConfig(name=args.dataset))}
    release = import_release_modules(
        install_recipes(), ["swebench.harness.grading", "swebench.harness.test_spec.test_spec"]
    )
    logs = [p for folder in args.folders for p in sorted(folder.rglob("test_output.txt"))]
    changed: list[tuple[str, str, bool, bool, str]] = []
    total = 0
    for path in logs:
        iid = next((part for part in path.parts if part in tasks), None)
        if iid is None:
            continue
        task, log = tasks[iid], path.read_text(errors="replace")
        total += 1
        new = bool(instance_report(task, "x", log)[iid]["resolved"])
        old = legacy_resolved(release, task, path)
        if new != old:
            changed.append((iid, path.parent.name, old, new, reason(task, log)))
    print(f"{total} logs graded under both rule sets; {len(changed)} verdicts differ")
    for iid, run, old, new, why in changed:
        print(
            f"  {iid} [{run}]: 4.1.0 {'resolved' if old else 'unresolved'} -> 5.x "
            f"{'resolved' if new else 'unresolved'} ({why})"
        )
    print(json.dumps(Counter(c[4] for c in changed)))


if __name__ == "__main__":
    main()
