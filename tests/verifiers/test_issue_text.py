"""Reproducers read from literal issue texts, and which of them become checks."""

from __future__ import annotations

from swescale.verifiers.issue import derive_checks, passes, unit_key
from swescale.verifiers.issue_text import exception_of, read_issue

RAISES = """Permutation fails with a cycle given twice

Calling it raises instead of building the identity:

```python
>>> from combinat import Permutation
>>> Permutation([[0, 1], [0, 1]])
Traceback (most recent call last):
  File "<stdin>", line 1, in <module>
  File "combinat/perm.py", line 40, in __new__
    raise ValueError("there were repeated elements")
ValueError: there were repeated elements
```
"""

COMMAND = """Traceback printed for an unrecognized option

### Command used

```shell
lintkit -Q
```

### Output

```shell
lintkit: unrecognized option Q
Traceback (most recent call last):
  File "lintkit/run.py", line 12, in main
lintkit.errors._UnrecognizedOptionError
```
"""

SCRIPT_EXPECTED = """Indexed product prints a double subscript

```python
i, j = symbols("i j")
latex(M[i, j])
```

The string produced by the last command is:
```
M_{i, _i_1}
```

Expected output:
```
M_{i, i_{1}}
```
"""

NOTHING = """Docs: the tutorial should mention the config file

The tutorial never says where the configuration file lives; a sentence in
`docs/tutorial.rst` would help new users.
"""

INLINE = """0**-oo gives 0, the documentation says it should give zoo

Using version 1.5.1, evaluate `0**-oo` produces `0`.
The documentation says it should return `ComplexInfinity`, aka `zoo`.
"""

MARKED = """detection of infinite solutions

```python
>>> solve_system((x - 1,), x, y)
Traceback (most recent call last):
...
NotImplementedError: only zero-dimensional systems supported
>>> solve_system((y - 1,), x, y)  <--- this is not handled correctly
[(1,)]
```
"""


def test_a_session_that_raises_gives_its_exception_to_the_statement():
    (program,) = read_issue(RAISES)
    assert program.kind == "python" and program.bug_words
    first, second = program.statements
    assert first.code == "from combinat import Permutation" and first.shown is None
    assert second.code == "Permutation([[0, 1], [0, 1]])"
    assert second.raises == ["ValueError"] and second.marked


def test_a_command_line_with_its_traceback():
    (program,) = read_issue(COMMAND)
    assert program.kind == "command" and program.statements[0].code == "lintkit -Q"
    stmt = program.statements[0]
    assert "Traceback" in stmt.shown and stmt.raises == ["_UnrecognizedOptionError"]


def test_a_script_with_its_output_and_the_expected_output():
    (program,) = read_issue(SCRIPT_EXPECTED)
    last = program.statements[-1]
    assert [s.code for s in program.statements] == ['i, j = symbols("i j")', "latex(M[i, j])"]
    assert last.shown == "M_{i, _i_1}" and last.expected == ["M_{i, i_{1}}"] and last.marked


def test_an_issue_with_no_reproducer_gives_no_program():
    assert read_issue(NOTHING) == []
    assert read_issue("") == []


def test_inline_produces_and_should_give_alternatives():
    (program,) = read_issue(INLINE)
    (stmt,) = program.statements
    assert stmt.code == "0**-oo" and stmt.shown == "0"
    assert stmt.expected == ["ComplexInfinity", "zoo"]


def test_a_marker_points_at_the_bug_and_strips_from_the_code():
    (program,) = read_issue(MARKED)
    first, second = program.statements
    assert first.raises == ["NotImplementedError"] and not first.marked
    assert second.code == "solve_system((y - 1,), x, y)" and second.marked
    assert second.shown == "[(1,)]"


def test_exception_of_reads_the_last_traceback_and_chained_names():
    text = "Traceback (most recent call last):\n  x\nSyntaxError: eof\n\nDuring handling...\n" \
        "Traceback (most recent call last):\n  y\npkg.core.SympifyError: could not parse\n" \
        "SyntaxError: unexpected EOF"  # fmt: skip
    assert exception_of(text) == ["SympifyError", "SyntaxError"]
    assert exception_of("plain output") == []


def _records(program, *records):
    return {unit_key(program, i): r for i, r in enumerate(records)}


def test_checks_are_kept_only_when_base_reproduces_and_scored_by_flips():
    (program,) = read_issue(RAISES)
    ok = {"exc": None, "out": "", "repr": None}
    base = _records(program, ok, {"exc": "ValueError", "out": ""})
    (check,) = derive_checks([program], base, base)
    assert check.kind == "raises" and check.source == "Permutation([[0, 1], [0, 1]])"
    assert passes(check, {"exc": None, "out": "Permutation(1)\n"}) is True
    assert passes(check, {"exc": "ValueError", "out": ""}) is False
    assert passes(check, {"exc": "Timeout", "out": ""}) is None
    # Base raising something else (the snippet is incomplete here): nothing is kept.
    assert derive_checks([program], *[_records(program, ok, {"exc": "NameError"})] * 2) == []
    # Unstable on base (two runs disagree): nothing is kept.
    other = _records(program, ok, {"exc": None, "out": "1\n"})
    assert derive_checks([program], base, other) == []


def test_an_expected_value_and_a_marked_output():
    (program,) = read_issue(SCRIPT_EXPECTED)
    base = _records(program, {"exc": None, "out": ""}, {"exc": None, "out": "'M_{i, _i_1}'\n",
                    "repr": "'M_{i, _i_1}'", "str": "M_{i, _i_1}"})  # fmt: skip
    (check,) = derive_checks([program], base, base)
    assert check.kind == "expected"
    assert passes(check, {"exc": None, "out": "", "str": "M_{i, i_{1}}"}) is True
    assert passes(check, {"exc": None, "out": "", "str": "M_{i, i_1}"}) is False
    (program,) = read_issue(MARKED)
    base = _records(program, {"exc": "NotImplementedError"}, {"exc": None, "out": "[(1,)]\n"})
    (check,) = derive_checks([program], base, base)  # the raise is not called a bug here
    assert check.kind == "differs" and check.index == 1
    assert passes(check, {"exc": "NotImplementedError", "out": ""}) is True
    assert passes(check, {"exc": None, "out": "[(1,)]\n"}) is False


def test_a_command_check_flips_when_the_traceback_goes():
    (program,) = read_issue(COMMAND)
    base = _records(program, {"out": "unrecognized option Q\nTraceback (most recent call last):\n",
                              "exit": 1, "exc": None})  # fmt: skip
    (check,) = derive_checks([program], base, base)
    assert check.kind == "raises"
    assert passes(check, {"out": "usage: lintkit ...\n", "exit": 2, "exc": None}) is True
    assert passes(check, base[check.id]) is False


def test_issue_and_doctest_are_verifier_specs_a_run_builds():
    from swescale.verifiers.config import BuildContext, VerifiersConfig, build_verifiers
    from swescale.verifiers.doctests import DoctestVerifier
    from swescale.verifiers.issue import IssueReproVerifier

    specs = VerifiersConfig(enabled=["issue", "doctest"], test_timeout=42).specs()
    built, notes = build_verifiers(specs, BuildContext(make_sandbox=lambda: None, workers=3))
    assert notes == []
    assert isinstance(built[0], IssueReproVerifier) and built[0].timeout == 42
    assert isinstance(built[1], DoctestVerifier) and built[1].workers == 3
    # Without sandboxes (a task with no environment) neither can run, and says so.
    built, notes = build_verifiers(specs, BuildContext())
    assert built == [] and notes == [
        "issue: no sandbox for this task",
        "doctest: no sandbox for this task",
    ]
