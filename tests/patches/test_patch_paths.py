"""Which changes of a patch alter how the tests run (pure)."""

from __future__ import annotations

from swescale.patches import changed_test_setup, patch_paths, runner_files, setup_change_note


def new_file(path: str, *lines: str) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def change(path: str, hunk_header: str, *lines: str) -> str:
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{hunk_header}\n" + "".join(
        f"{line}\n" for line in lines
    )


HOOK = new_file(
    "src/tests/conftest.py",
    "import pytest",
    "",
    "@pytest.hookimpl(hookwrapper=True)",
    "def pytest_runtest_makereport(item, call):",
    "    outcome = yield",
    "    outcome.get_result().outcome = 'passed'",
)
FIX = change(
    "pkg/core.py", "@@ -1,2 +1,2 @@", " def f(x):", "-    return x - 1", "+    return x + 1"
)


def test_conftest_start_up_files_and_pytest_ini() -> None:
    assert changed_test_setup(HOOK) == ["src/tests/conftest.py"]
    assert changed_test_setup(FIX) == []
    assert changed_test_setup(FIX + HOOK) == ["src/tests/conftest.py"]
    for path in ("sitecustomize.py", "lib/usercustomize.py", "site-packages/x.pth", "pytest.ini"):
        assert changed_test_setup(new_file(path, "x = 1")) == [path]


def test_settings_files_count_only_in_their_pytest_sections() -> None:
    in_section = change(
        "setup.cfg",
        "@@ -10,3 +10,4 @@",
        " [tool:pytest]",
        " testpaths = tests",
        "+addopts = -p no:warnings",
        " ",
    )
    other_section = change(
        "setup.cfg", "@@ -20,2 +20,3 @@", " [flake8]", "+max-line-length = 100", " "
    )
    no_header_but_a_key = change(
        "tox.ini", "@@ -30,2 +30,3 @@", " testpaths = tests", "+python_files = check_*.py", " "
    )
    pyproject = change(
        "pyproject.toml",
        "@@ -1,2 +1,4 @@",
        " [tool.black]",
        " line-length = 100",
        "+[tool.pytest.ini_options]",
        '+addopts = "-x"',
    )
    assert changed_test_setup(in_section) == ["setup.cfg"]
    assert changed_test_setup(other_section) == []
    assert changed_test_setup(no_header_but_a_key) == ["tox.ini"]
    assert changed_test_setup(pyproject) == ["pyproject.toml"]


def test_plugins_and_the_runner_the_command_names() -> None:
    plugin = change(
        "tests/__init__.py", "@@ -1 +1,2 @@", " import os", '+pytest_plugins = ["evil"]'
    )
    entry = change("setup.py", "@@ -5,2 +5,3 @@", " setup(", '+    entry_points={"pytest11": []},')
    runner = change("tests/runtests.py", "@@ -1 +1,2 @@", " import os", "+import sys")
    assert changed_test_setup(plugin) == ["tests/__init__.py"]
    assert changed_test_setup(entry) == ["setup.py"]
    assert changed_test_setup(runner) == []
    assert changed_test_setup(runner, "./tests/runtests.py --verbosity 2 a.b") == [
        "tests/runtests.py"
    ]
    tox = change("tox.ini", "@@ -1,2 +1,3 @@", " [testenv]", "+deps = x", " ")
    assert changed_test_setup(tox, "tox --current-env -epy39 -v --") == ["tox.ini"]
    assert runner_files("pytest -rA tests/test_x.py") == set()
    assert runner_files("PYTHONWARNINGS=ignore python bin/test -C") == {"bin/test"}


def test_plain_diffs_and_miscounted_hunks() -> None:
    plain = (
        "--- a/pkg/core.py\n+++ b/pkg/core.py\n@@ -1,9 +1,9 @@\n def f():\n-    pass\n+    return 1\n"
        "--- a/conftest.py\n+++ b/conftest.py\n@@ -1 +1,2 @@\n import os\n+import sys\n"
    )
    assert patch_paths(plain) == ["pkg/core.py", "conftest.py"]
    assert changed_test_setup(plain) == ["conftest.py"]
    assert changed_test_setup(None) == [] and changed_test_setup("not a patch") == []


def test_the_note_names_the_paths() -> None:
    assert setup_change_note([]) == ""
    note = setup_change_note(["tests/conftest.py"])
    assert "tests/conftest.py" in note and "official harness" in note
