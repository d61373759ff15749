"""The repository state of a sandbox, computed inside the container by one shell function.

This function is the reference: a sandbox's resident state watcher
(:mod:`swescale.sandbox.state_watcher`) computes the same bytes from file-system events,
and hands every case it does not handle to this function.

The state is the binary diff from the base commit to the work tree: every tracked file of
the base commit as it is now, and every new file that git does not ignore, bytecode and
tool caches excluded. It is named by the sha256 of those bytes (see ``snapshot()``).

How it stays cheap at repository scale: a private index (``/tmp/.swescale-state-<base>.index``,
never the agent's ``.git/index``, whose staged changes are left alone) persists between
snapshots. ``git add -A`` on it rehashes only the files whose stat data changed since the
last snapshot (git's own change detection: size, mtime, ctime, inode), so after the first
snapshot a step costs a walk of stat calls, not a read of every file (large trees take
a cheaper walk, see below). ``git add -v`` says whether anything changed at all: when
nothing did, the diff is not even computed.

The index's stat data is trusted for change detection, so the settings that weaken it
(``core.trustctime``, ``core.checkStat``, ``core.fsmonitor``) are pinned. A changed
``.gitignore`` or ``.gitattributes`` changes which files and bytes belong to the state,
so the index is then rebuilt from scratch; the result is what a fresh sandbox computes.
Settings that change the diff's bytes are pinned too, so the same state gives the same
bytes whatever the agent put in ``.git/config``, and object ids are written in full
(an abbreviation's length grows with the number of objects in the repository, which
differs between a sandbox and one restored from it).

The function runs in a subshell with whatever the model did to the session undone
(functions named like the tools it calls, aliases, git variables, shell options such as
``set -e`` or ``set -x`` that would stop it or write into its output), in the persistent
session when there is one (defined there once, called by name) or in a fresh exec.

Exit codes: 90 no work tree, 91 the index could not be built, 92 ``git status`` or
``git add`` failed, 93 ``git diff`` failed, 94 the patch did not apply, 95 bad arguments,
97 the upload of the patch to restore did not happen.
"""

from __future__ import annotations

import shlex

from swescale.sandbox.config import BASE_PATH

FUNCTION = "__swx_state"
# Files of the state machinery in the container, per base commit: <prefix><base>.index etc.
STATE_PREFIX = "/tmp/.swescale-state-"
MISSING = 199  # the session lost the function (the model unset it, or a new shell)
APPLY_FAILED = 94

# Files that are never part of a patch: bytecode and tool caches that running code leaves.
JUNK_PATHSPECS = [
    ":(exclude,glob)**/__pycache__/**",
    ":(exclude,glob)**/*.pyc",
    ":(exclude,glob)**/*.pyo",
    ":(exclude,glob)**/.pytest_cache/**",
    ":(exclude,glob)**/*.egg-info/**",
]
# The same files as a `case` pattern, for paths that `git status` names one by one.
_JUNK_CASE = (
    "__pycache__/*|*/__pycache__/*|*.pyc|*.pyo|.pytest_cache/*|*/.pytest_cache/*|*.egg-info/*"
)

LARGE_TREE = 2000

# Change detection must see every change: ctime included (no unprivileged program can set
# it back), no hook or daemon that could answer "nothing changed" for us.
_INDEX_CONFIG = (
    "-c core.trustctime=true -c core.checkStat=default -c core.fsmonitor=false "
    "-c core.untrackedCache=true -c core.quotepath=off"
)
# The diff's bytes depend on the state only, not on the repository's config.
_DIFF_CONFIG = (
    "-c core.quotepath=off -c diff.noprefix=false -c diff.mnemonicPrefix=false "
    "-c diff.relative=false -c diff.algorithm=myers -c diff.indentHeuristic=true "
    "-c diff.suppressBlankEmpty=false -c diff.context=3 -c diff.interHunkContext=0 "
    "-c diff.renames=true -c diff.orderFile=/dev/null -c diff.srcPrefix=a/ -c diff.dstPrefix=b/"
)

# Arguments: $1 mode (snapshot | restore), $2 work tree, $3 base commit, then
# snapshot: $4 = 1 to print the patch even when nothing changed;
# restore: $4 = the patch file to apply (leading and trailing lines that are not part of
# a patch are skipped by `git apply`).
# Output of snapshot: "SWX\0UNCHANGED\n", or the diff's bytes between "SWX\0PATCH\n" and
# "SWX\0END\n". The markers hold a NUL byte, which no trace line of a model's `set -x` can,
# so the bytes are found exactly whatever else the session prints around them.
#
# A snapshot updates the private index with `git add -A`, which stats every file and
# reads every directory. On a large tree (LARGE_TREE files or more) it does so in two
# steps instead: `git status` (the same stat walk, but the untracked cache spares reading
# directories whose mtime did not move) names the paths that differ from the index, and
# `git add -A` takes just those. Measured in container CPU per snapshot after a one-line
# edit (benchmarks/bench_snapshots.py's trees): django-size 190 ms in one step, 110 ms in
# two; pytest-size 17 ms in one step, 20 ms in two (the extra process outweighs the
# saved directory reads on 70 directories).
_BODY = r"""
__swx_state() {
  (
    unset -f git cp mv rm cat command printf read cd exit set 2>/dev/null; unalias -a 2>/dev/null
    set +e +u +x +v +C +o pipefail
    PATH=$PATH:@PATH@  # the image's tools first, and still git if the model emptied PATH
    unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_CONFIG_PARAMETERS \
      GIT_CONFIG_COUNT GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_NAMESPACE GIT_CEILING_DIRECTORIES \
      GIT_DIFF_OPTS GIT_EXTERNAL_DIFF GIT_ATTR_SOURCE
    [ $# -eq 4 ] || exit 95
    base=$3
    cd -- "$2" || exit 90
    s=@PREFIX@$base
    fail() { [ ! -s "$s.err" ] || command cat "$s.err"; exit "$1"; }
    fresh_index() {
      # Content from the base commit, whatever the agent staged; stat data lent by the
      # index named in $1 (entries that match the base are then not rehashed), none if "".
      # An index that already holds exactly the base (a fresh sandbox's) is taken as it
      # is: its cache tree answers that in a moment, where reading the base's trees
      # again costs a second on a cold django-size repository.
      # The copy keeps the index's mtime: git takes an entry as changed-maybe ("racily
      # clean") when its file is not older than the index, and a newer copy would turn a
      # file written in the same second as the index into a file git trusts unchanged.
      command rm -f "$s.new"
      [ -z "$1" ] || command cp -fp "$1" "$s.new" 2>/dev/null || command rm -f "$s.new"
      [ -s "$s.new" ] && GIT_INDEX_FILE=$s.new command git diff-index --cached --quiet \
        "$base" -- 2>/dev/null ||
        GIT_INDEX_FILE=$s.new command git read-tree -m "$base" 2>/dev/null ||
        GIT_INDEX_FILE=$s.new command git read-tree "$base" 2>"$s.err" || fail 91
      command mv -f "$s.new" "$s.index" || exit 91
      command rm -f "$s.large"
      [ "$(command git ls-files | command wc -l)" -lt @LARGE@ ] || : >"$s.large"
    }
    add_all() {
      command git @INDEX@ add -A -v -- . @JUNK@ >"$s.added" 2>"$s.err" || fail 92
    }
    update() {
      # Sets: $s.added lists what `git add` changed in the index; rules=1 when a
      # .gitignore changed, 2 when a .gitattributes did.
      rules=0
      if [ ! -e "$s.large" ]; then
        add_all
        [ -s "$s.added" ] || return 0
        IFS= read -r -d '' added <"$s.added"
        case $added in *".gitattributes'"*) rules=2 ;; *".gitignore'"*) rules=1 ;; esac
        return 0
      fi
      command git @INDEX@ status --porcelain=v1 -z -unormal --no-renames \
        --ignore-submodules=dirty >"$s.status" 2>"$s.err" || fail 92
      : >"$s.paths"; : >"$s.added"; n=0; dirs=0
      while IFS= read -r -d '' rec; do
        case ${rec:0:2} in ?M|?D|?T|'??') ;; *) continue ;; esac
        p=${rec:3}
        case $p in @JUNKCASE@) continue ;; */) dirs=1 ;; esac
        case /$p in */.gitattributes) rules=2 ;; */.gitignore) [ $rules = 2 ] || rules=1 ;; esac
        printf ':(literal)%s\0' "$p" >>"$s.paths"; n=$((n + 1))
      done <"$s.status"
      [ $n -gt 0 ] || return 0
      # Files by name. A new directory may hold junk, which only the exclude pathspecs
      # keep out, and git 2.39 drops untracked files when literal and exclude pathspecs
      # are mixed: then everything, with the excludes.
      if [ $dirs = 1 ]; then add_all; return; fi
      command git @INDEX@ add -A -v --pathspec-from-file="$s.paths" --pathspec-file-nul \
        >"$s.added" 2>"$s.err" || fail 92
    }
    case $1 in
    snapshot)
      export GIT_INDEX_FILE=$s.index
      force=$4
      if [ ! -s "$s.index" ]; then fresh_index .git/index; force=1; fi
      update
      # A changed ignore or attribute rule changes which files and bytes the state holds:
      # start over from the base, as a fresh sandbox would.
      case $rules in
      2) fresh_index ""; update; force=1 ;;
      1) fresh_index "$s.index"; update; force=1 ;;
      esac
      if [ "$force" != 1 ] && [ ! -s "$s.added" ]; then printf 'SWX\0UNCHANGED\n'; exit 0; fi
      printf 'SWX\0PATCH\n'
      command git @DIFF@ diff --cached --binary --full-index --no-color --no-ext-diff \
        --no-textconv "$base" 2>"$s.err" || fail 93
      printf 'SWX\0END\n' ;;
    restore)
      [ "${__swx_up:-0}" = 0 ] || exit 97
      command git apply --binary --whitespace=nowarn "$4" 2>&1 || exit 94
      # Rebuilt from the restored work tree at the next snapshot.
      : >"$s.index" ;;
    *) exit 95 ;;
    esac
  )
}
"""


def functions(large_tree: int = LARGE_TREE) -> str:
    """The shell code defining the state function (``large_tree``: see above)."""
    return (
        _BODY.replace("@PREFIX@", shlex.quote(STATE_PREFIX))
        .replace("@PATH@", BASE_PATH)
        .replace("@INDEX@", _INDEX_CONFIG)
        .replace("@DIFF@", _DIFF_CONFIG)
        .replace("@JUNKCASE@", _JUNK_CASE)
        .replace("@LARGE@", str(large_tree))
        .replace("@JUNK@", " ".join(shlex.quote(p) for p in JUNK_PATHSPECS))
        .strip()
        + "\n"
    )


FUNCTIONS = functions()

UNCHANGED = b"SWX\0UNCHANGED\n"
_PATCH = b"SWX\0PATCH\n"
_END = b"SWX\0END\n"


def parse_snapshot(data: bytes) -> bytes | None:
    """The diff's bytes from the state function's output; None when it said UNCHANGED.
    Raises ValueError when the output holds neither answer."""
    start = data.find(_PATCH)
    end = data.rfind(_END)
    if start >= 0 and end >= start + len(_PATCH):
        return data[start + len(_PATCH) : end]
    if UNCHANGED in data:
        return None
    raise ValueError(f"no state in the output: {data[-200:]!r}")


def call(*args: str) -> str:
    """A call of the state function by name, through the session: exit code ``MISSING``
    when the session no longer has it (then define ``FUNCTIONS`` and call again)."""
    quoted = " ".join(shlex.quote(a) for a in args)
    return (
        f"if declare -F {FUNCTION} >/dev/null; then {FUNCTION} {quoted}; else (exit {MISSING}); fi"
    )


def standalone(*args: str) -> str:
    """The same call for a fresh ``bash -c``, with the function defined in it."""
    return FUNCTIONS + f"{FUNCTION} " + " ".join(shlex.quote(a) for a in args)
