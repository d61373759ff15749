"""Patch parsing and normalization on literal patches and on patches made by real git."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from swescale.patches import changed_paths, normalized_form, parse_patch, patch_key

BASE = "diff --git a/pkg/m.py b/pkg/m.py\n--- a/pkg/m.py\n+++ b/pkg/m.py\n"
FIX = BASE + ("@@ -1,4 +1,4 @@\n def f(x):\n-    return x + 1\n+    return x + 2\n \n def g():\n")


def test_same_fix_with_whitespace_and_comment_differences_has_one_key():
    noisy = FIX.replace("+    return x + 2", "+    return x+2   # off by one")
    assert patch_key(noisy) == patch_key(FIX) != ""


def test_indentation_change_in_python_is_a_different_fix():
    dedented = FIX.replace("+    return x + 2", "+  return x + 2")
    assert patch_key(dedented) != patch_key(FIX)


def test_whitespace_inside_a_string_literal_matters():
    # pydata__xarray-5131's gold patch only removes a space inside a string.
    a = BASE + '@@ -1 +1 @@\n-s = "a \\n"\n+s = "a\\n"\n'
    assert patch_key(a) != ""


def test_whitespace_only_and_comment_only_patches_are_no_change():
    ws = BASE + "@@ -1,2 +1,2 @@\n-x = 1\n+x = 1    \n y = 2\n"
    comment = BASE + "@@ -1,2 +1,3 @@\n x = 1\n+# explain x\n y = 2\n"
    assert patch_key(ws) == ""
    assert patch_key(comment) == ""
    assert patch_key("") == "" and patch_key("   \n") == ""


def test_crlf_and_missing_newline_at_eof_do_not_change_the_key():
    crlf = FIX.replace("\n", "\r\n")
    no_eol = FIX.rstrip("\n") + "\n\\ No newline at end of file"
    assert patch_key(crlf) == patch_key(FIX)
    assert patch_key(no_eol) == patch_key(FIX)


def test_file_order_and_index_lines_do_not_matter():
    other = (
        "diff --git a/pkg/z.py b/pkg/z.py\nindex 1234567..89abcde 100644\n"
        "--- a/pkg/z.py\n+++ b/pkg/z.py\n@@ -3 +3 @@\n-a = 1\n+a = 2\n"
    )
    plain_other = re.sub(r"index .*\n", "", other)
    assert patch_key(FIX + other) == patch_key(other + FIX) == patch_key(plain_other + FIX)


def test_diff_u_timestamps_and_format_patch_wrapping():
    diff_u = (
        "--- a/pkg/m.py\t2024-01-01 10:00:00.000000000 +0000\n"
        "+++ b/pkg/m.py\t2024-01-02 11:00:00.000000000 +0000\n"
        "@@ -1,4 +1,4 @@\n def f(x):\n-    return x + 1\n+    return x + 2\n \n def g():\n"
    )
    mail = (
        "From 3f2a Mon Sep 17 00:00:00 2001\nFrom: Dev <d@example.com>\nSubject: [PATCH] fix\n\n"
        "---\n pkg/m.py | 2 +-\n 1 file changed\n\n" + FIX + "-- \n2.39.5\n\n"
    )
    assert patch_key(diff_u) == patch_key(FIX)
    assert patch_key(mail) == patch_key(FIX)
    assert parse_patch(mail).files[0].hunks[0].lines[-1] == " def g():"


def test_miscounted_hunk_headers_are_read_by_content():
    # A model wrote "@@ -1,2 +1,2 @@" for a longer hunk, then a second file.
    bad = BASE + "@@ -1,2 +1,2 @@\n def f(x):\n-    return x + 1\n+    return x + 2\n \n def g():\n"
    parsed = parse_patch(bad)
    assert any("longer" in w for w in parsed.warnings)
    assert patch_key(bad) == patch_key(FIX)
    undercounted = BASE + "@@ -1,1 +1,1 @@\n-    return x + 1\n+    return x + 2\n+    y = 0\n"
    assert len(parse_patch(undercounted).files[0].hunks[0].lines) == 3
    overcounted = BASE + "@@ -1,9 +1,9 @@\n-    return x + 1\n+    return x + 2\n" + FIX
    parsed = parse_patch(overcounted)
    assert len(parsed.files) == 2 and any("shorter" in w for w in parsed.warnings)


def test_binary_rename_mode_new_and_deleted_files():
    text = (
        "diff --git a/img.png b/img.png\nnew file mode 100644\nindex 0000000..e69de29\n"
        "GIT binary patch\nliteral 12\nTcmZ?wbhEHb6krfwXJ7yT\n\nliteral 0\nHcmV?d00001\n\n"
        "diff --git a/old_name.py b/new_name.py\nsimilarity index 90%\n"
        "rename from old_name.py\nrename to new_name.py\n"
        "--- a/old_name.py\n+++ b/new_name.py\n@@ -1 +1 @@\n-A = 1\n+A = 2\n"
        "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n"
        "diff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\n--- a/gone.txt\n"
        "+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
        "diff --git a/blob.bin b/blob.bin\nindex 1..2 100644\n"
        "Binary files a/blob.bin and b/blob.bin differ\n"
    )
    parsed = parse_patch(text)
    by_path = {f.path: f for f in parsed.files}
    assert parsed.warnings == []
    assert by_path["img.png"].binary and by_path["img.png"].status == "added"
    assert by_path["new_name.py"].status == "renamed"
    assert by_path["new_name.py"].old_path == "old_name.py"
    assert (by_path["run.sh"].old_mode, by_path["run.sh"].new_mode) == ("100644", "100755")
    assert by_path["gone.txt"].status == "deleted"
    assert by_path["blob.bin"].binary
    assert changed_paths(text) == ["blob.bin", "gone.txt", "img.png", "new_name.py", "run.sh"]
    other_png = text.replace("TcmZ?wbhEHb6krfwXJ7yT", "TcmZ?wbhEHb6krfwXJ7yU")
    assert patch_key(other_png) != patch_key(text)
    form = {e["path"]: e for e in normalized_form(text)}
    assert form["run.sh"]["mode"] == ["100644", "100755"]


@pytest.mark.parametrize(
    "garbage",
    [None, 42, "not a patch at all", "@@ -1 +1 @@\n-x\n+y\n", "diff --git\n", "\x00\xff"],
)
def test_garbage_never_raises(garbage):
    parsed = parse_patch(garbage)
    assert isinstance(parsed.files, list)
    assert patch_key(garbage) == "" or isinstance(patch_key(garbage), str)


def test_quoted_paths_with_spaces():
    text = (
        'diff --git "a/my dir/x.py" "b/my dir/x.py"\n--- "a/my dir/x.py"\n'
        '+++ "b/my dir/x.py"\n@@ -1 +1 @@\n-a = 1\n+a = 2\n'
    )
    assert changed_paths(text) == ["my dir/x.py"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def test_real_git_diffs_with_different_context_agree(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    source = "\n".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(30))
    (repo / "m.py").write_text(source)
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    edited = source.replace("return x + 3\n", "return x - 3\n").replace(
        "return x + 20\n", "return x * 20\n"
    )
    (repo / "m.py").write_text(edited)
    keys = {patch_key(_git(repo, "diff", f"-U{n}")) for n in (0, 1, 3, 10)}
    keys.add(patch_key(_git(repo, "diff", "--no-prefix")))
    assert len(keys) == 1 and "" not in keys
    # The same edits plus blank lines and a comment: still the same fix.
    (repo / "m.py").write_text(edited.replace("return x * 20\n", "return x * 20  # scale\n\n"))
    assert patch_key(_git(repo, "diff")) in keys
    # A different edit is a different fix.
    (repo / "m.py").write_text(source.replace("return x + 3\n", "return x - 4\n"))
    assert patch_key(_git(repo, "diff")) not in keys


def test_every_swebench_gold_and_test_patch_parses_cleanly():
    pd = pytest.importorskip("pandas")
    files = sorted(Path("/work/shared/data/swebench").glob("*.parquet"))
    data_dir = Path(__file__).resolve().parents[2] / "swescale" / "swebench" / "data"
    files += sorted(data_dir.glob("*.parquet")) if data_dir.exists() else []
    if not files:
        pytest.skip("no SWE-bench records on this machine")
    keys = {}
    for file in files:
        frame = pd.read_parquet(file, columns=["instance_id", "patch", "test_patch"])
        for row in frame.itertuples():
            for patch in (row.patch, row.test_patch):
                parsed = parse_patch(patch)
                expected = sorted(set(re.findall(r"^diff --git a/.* b/(.*)$", patch, re.M)))
                assert parsed.warnings == [], row.instance_id
                assert parsed.paths == expected, row.instance_id
            key = patch_key(row.patch)
            assert key, row.instance_id
            keys.setdefault(key, set()).add(row.instance_id)
    # Distinct gold patches never collapse into one key (Lite and Verified share rows).
    repos = {k: {i.rsplit("-", 1)[0] for i in ids} for k, ids in keys.items()}
    assert all(len(v) == 1 for v in repos.values())
