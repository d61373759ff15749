"""Finding related tests and reading their results, on literal inputs."""

from __future__ import annotations

from swescale.types import Task
from swescale.verifiers.execution import CellResult, ResultCache, summarize
from swescale.verifiers.regression import (
    broken_tests,
    directives_for,
    module_names,
    parse_imports,
    parse_ra_log,
    related_tests,
)
from swescale.verifiers.repro import ReproTest, is_test_path, new_test_files

GREP = """tests/test_parse.py:from slugkit.parse import split_words
tests/test_other.py:import json
tests/test_other.py:import slugkit.render as r
tests/unit/test_misc.py:from slugkit import parse, util
tests/test_unrelated.py:from slugkit.util import clamp
"""


def test_module_names_strip_source_roots():
    assert module_names("src/pkg/sub/m.py") == ["src.pkg.sub.m", "pkg.sub.m"]
    assert module_names("pkg/__init__.py") == ["pkg"]
    assert module_names("README.md") == []


def test_imports_are_read_from_git_grep_lines():
    imports = parse_imports(GREP)
    assert imports["tests/test_parse.py"] == {"slugkit.parse", "slugkit.parse.split_words"}
    assert "slugkit.render" in imports["tests/test_other.py"]
    assert {"slugkit.parse", "slugkit.util"} <= imports["tests/unit/test_misc.py"]


def test_related_tests_by_path_then_import_changed_tests_included():
    imports = parse_imports(GREP)
    files = list(imports) + ["tests/test_parse_edge.py"]
    related = related_tests(["slugkit/parse.py", "tests/test_parse.py"], files, imports)
    # The changed test stays: it runs at its base version for every candidate.
    assert related == ["tests/test_parse.py", "tests/test_parse_edge.py", "tests/unit/test_misc.py"]
    assert related_tests(["docs/x.md"], files, imports) == []
    assert len(related_tests(["slugkit/parse.py"], files, imports, limit=1)) == 1


def test_related_tests_are_test_modules_of_changed_source():
    """A suite's fixture files are not tests (sphinx's tests/roots/.../setup.py), and a
    changed setup.py or reproduction script relates to no test."""
    files = [
        "tests/roots/test-pycode-egg/src/setup.py",
        "tests/roots/test-ext/conf.py",
        "tests/test_setup_command.py",
        "tests/test_domain_std.py",
        "tests/queries/tests.py",
    ]
    imports = {f: set() for f in files}
    imports["tests/test_domain_std.py"] = {"sphinx.domains.std"}
    imports["tests/queries/tests.py"] = {"django.db.models.query"}
    assert related_tests(["setup.py", "tox.ini", "reproduce_bug.py"], files, imports) == []
    assert related_tests(["sphinx/domains/std.py", "setup.py"], files, imports) == [
        "tests/test_domain_std.py"
    ]
    assert related_tests(["django/db/models/query.py"], files, imports) == [
        "tests/queries/tests.py"
    ]


def test_broken_tests_count_missing_and_failing_but_not_already_failing():
    base = {"a": "PASSED", "b": "PASSED", "c": "FAILED", "d": "XFAIL"}
    cand = {"a": "PASSED", "b": "FAILED", "c": "FAILED"}
    assert broken_tests(base, cand) == ["b", "d"]
    assert broken_tests(base, base) == []


def test_pytest_summary_parser():
    log = "noise\nPASSED tests/t.py::test_a\nFAILED tests/t.py::test_b - AssertionError\n"
    assert parse_ra_log(log) == {"tests/t.py::test_a": "PASSED", "tests/t.py::test_b": "FAILED"}


def test_official_directives_for_django_and_plain_paths():
    django = Task(id="d", repo="django/django", base_commit="x", problem_statement="")
    assert directives_for(django, ["tests/foo/tests.py"]) == ["foo.tests"]
    other = Task(id="o", repo="someone/else", base_commit="x", problem_statement="")
    assert directives_for(other, ["tests/test_x.py"]) == ["tests/test_x.py"]


def test_repro_test_identity_and_runner():
    t = ReproTest("tests/test_repro.py", "def test_x():\n    assert False\n")
    assert "pytest" in t.run_command and len(t.id) == 12
    assert ReproTest("repro.py", "assert 1 == 2\n").run_command == "python repro.py"
    assert t.hash != ReproTest("tests/test_repro.py", "def test_x():\n    pass\n").hash
    assert is_test_path("tests/test_a.py") and is_test_path("pkg/a_test.py")
    assert not is_test_path("pkg/a.py")
    patch = (
        "diff --git a/tests/test_r.py b/tests/test_r.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/test_r.py\n@@ -0,0 +1 @@\n+def test_r(): pass\n"
        "diff --git a/pkg/a.py b/pkg/a.py\n--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -1 +1 @@\n-a\n+b\n"
    )
    assert new_test_files(patch) == ["tests/test_r.py"]


def test_cache_keeps_judgements_only_and_survives_damage(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put("t", "c", CellResult(outcome="pass"))
    cache.put("t", "d", CellResult(outcome="infra"))
    assert cache.get("t", "c").outcome == "pass" and cache.get("t", "c").cached
    assert cache.get("t", "d") is None
    for file in tmp_path.rglob("*.json"):
        file.write_text("{damaged")
    assert cache.get("t", "c") is None
    assert ResultCache(None).get("t", "c") is None


def test_summary_counts_only_judged_cells():
    cells = {
        "a": CellResult(outcome="pass"),
        "b": CellResult(outcome="fail"),
        "c": CellResult(outcome="timeout"),
        "d": CellResult(outcome="flaky"),
    }
    s = summarize(cells)
    assert (s["passed"], s["total"], s["unjudged"], s["applied"]) == (1, 2, 2, True)
