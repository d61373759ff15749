"""The state watcher: a resident process in the container that keeps the repository state
current from file-system events, so that a snapshot costs no process start and no walk.

It runs as ``/usr/bin/python3 -I -S -c <this file's text> WORKDIR BASE INDEX END`` in a
``docker exec`` of its own, opened once per sandbox (the host side is
:mod:`swescale.sandbox.watch`). Standard library only, Python 3.7 or newer: it runs on
the image's system Python, whatever the task's environment holds.

What it keeps: the state as git would store it in the private index of
:mod:`swescale.sandbox.state` (path -> mode, object id), loaded from that index once the
shell function has brought it up to date, and a tree object id per directory. inotify
says which paths changed; a snapshot looks at those paths only: it hashes changed files
with a resident ``git hash-object -w --stdin-paths`` (git's own filters and attributes),
asks a resident ``git check-ignore --stdin`` about new untracked files, writes the trees
of the changed directories itself (git's tree format, in a tmpfs object directory with the
repository's objects as alternates), and gets the diff from
a resident ``git diff-tree --stdin`` between the base tree and the new one, with the same
pinned settings as the shell function's ``git diff --cached``: the same bytes, so the
same content address, whichever way a state was computed (tests compare both ways).
No process starts and no walk of the tree on the way.

What it does not handle, answering FULL so that the host takes the shell function (which
handles everything) and then reloads it: an overflowed event queue, a directory moved
(inotify watches follow the inode, so the names would go stale), a changed
``.gitignore`` or ``.gitattributes``, a symbolic link or a special file among the changed
paths, a nested repository, a path git would quote. It refuses to start (UNSUPPORTED,
the host then keeps to the shell function) where its model would not be git's: a base
tree with submodules, ``core.filemode`` or ``core.symlinks`` off, no inotify instance
left (``fs.inotify.max_user_instances``, shared by every container that runs as root).
What no file-system event reports (a write through a shared memory map) is not seen
until the next FULL; agents' tools write with ``write(2)``.

Its own objects (new blobs, the trees of each state) go to a tmpfs; past OBJECT_BUDGET
bytes it empties that directory and answers FULL once, after which the shell function
and the reload leave only what the current state needs.

Arguments: WORKDIR BASE INDEX END [OBJECT_BUDGET bytes].

Protocol on stdin/stdout, one request at a time:
    start                      -> "W\\n" (watching) | "X <reason>\\n" (unsupported; exits)
    "R\\n" reload from INDEX   -> "OK\\n" | "F <reason>\\n" | "E <error>\\n"
    "S <force> <limit>\\n"     -> "U\\n" (unchanged since the last answer, force 0)
                                | "P <n>\\n" + n bytes (the state's diff)
                                | "F <reason>\\n" (take the shell function, then reload)
                                | "E <error>\\n"
"""

import contextlib
import ctypes
import errno
import hashlib
import os
import select
import shutil
import stat
import struct
import subprocess
import sys
import zlib

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_EXCL_UNLINK = 0x4000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
)
_EVENT = struct.Struct("iIII")

# Bytecode and tool caches: never part of a state (state.JUNK_PATHSPECS, the same rule).
JUNK_DIRS = (b"__pycache__", b".pytest_cache")
RULE_FILES = (b".gitignore", b".gitattributes")
GIT_INFO = b".git/info"
# The diff's settings, as the shell function pins them (state._DIFF_CONFIG), plus the
# options git diff's porcelain takes from them and diff-tree does not read.
DIFF_CONFIG = [
    "-c",
    "core.quotepath=off",
    "-c",
    "diff.noprefix=false",
    "-c",
    "diff.mnemonicPrefix=false",
    "-c",
    "diff.relative=false",
    "-c",
    "diff.algorithm=myers",
    "-c",
    "diff.indentHeuristic=true",
    "-c",
    "diff.suppressBlankEmpty=false",
    "-c",
    "diff.context=3",
    "-c",
    "diff.interHunkContext=0",
    "-c",
    "diff.renames=true",
    "-c",
    "diff.orderFile=/dev/null",
    "-c",
    "diff.srcPrefix=a/",
    "-c",
    "diff.dstPrefix=b/",
]
DIFF_OPTIONS = [
    "diff-tree",
    "--stdin",
    "-r",
    "-p",
    "--binary",
    "--full-index",
    "-M",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--indent-heuristic",
    "--diff-algorithm=myers",
    "-U3",
    "--inter-hunk-context=0",
]
# The variables that would point git elsewhere or change its output (as the shell
# function unsets them).
GIT_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DIFF_OPTS",
    "GIT_EXTERNAL_DIFF",
    "GIT_ATTR_SOURCE",
)


# Where the watcher's own objects go (new blobs, the trees of states): a tmpfs, where a
# write costs a fraction of one into the repository's object directory on the
# container's overlay file system; the repository's objects stay readable as alternates.
SHM_OBJECTS = "/dev/shm/.swescale-objects"
# What may pile up there (the trees of every state answered, every version of the changed
# files) before it is emptied: Docker's default /dev/shm holds 64 MiB.
OBJECT_BUDGET = 16 << 20


class Full(Exception):
    """This change needs the shell function (see the module docstring)."""


class Unsupported(Exception):
    """This repository needs the shell function for good."""


def is_junk(path):
    """True for bytecode and tool-cache paths (``**/__pycache__/**``, ``**/*.pyc``,
    ``**/*.pyo``, ``**/.pytest_cache/**``, ``**/*.egg-info/**``)."""
    parts = path.split(b"/")
    for part in parts[:-1]:
        if part in JUNK_DIRS or part.endswith(b".egg-info"):
            return True
    return parts[-1].endswith((b".pyc", b".pyo"))


def join(directory, name):
    return directory + b"/" + name if directory else name


def parent_of(path):
    cut = path.rfind(b"/")
    return path[:cut] if cut >= 0 else b""


def parse_ls_tree(data):
    """``git ls-tree -r -t -z`` output -> (files {path: (mode, oid)}, trees {path: oid})."""
    files, trees = {}, {}
    for record in data.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, oid = meta.split(b" ")
        if kind == b"tree":
            trees[path] = oid
        elif kind == b"blob":
            files[path] = (mode, oid)
        else:
            raise Unsupported("the base tree holds a submodule")
    return files, trees


def parse_raw_diff(data):
    """``git diff-index --raw -z --no-renames`` output -> [(status, path, mode, oid)]."""
    fields = data.split(b"\0")
    out = []
    for i in range(0, len(fields) - 1, 2):
        meta, path = fields[i], fields[i + 1]
        if not meta:
            break
        _, new_mode, _, new_oid, status = meta[1:].split(b" ")
        out.append((status[:1], path, new_mode, new_oid))
    return out


class Helper:
    """A resident git process fed one request at a time (GIT_FLUSH=1: it answers at once)."""

    def __init__(self, args, env):
        self.proc = subprocess.Popen(
            ["git"] + args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def ask(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def line(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"git {self.proc.args[1]} ended")
        return line

    def close(self):
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Watcher:
    def __init__(self, base, index, end, objects=SHM_OBJECTS, budget=OBJECT_BUDGET):
        self.base = base
        self.index = index
        self.end = end.encode()
        self.env = {k: v for k, v in os.environ.items() if k not in GIT_VARIABLES}
        self.env["GIT_FLUSH"] = "1"
        self.objects = self.object_directory(objects)
        self.budget = budget
        self.written = 0  # bytes written into a tmpfs object directory since it was emptied
        self.helpers = {}
        libc = ctypes.CDLL(None, use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._rm_watch = libc.inotify_rm_watch
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise Unsupported("inotify: " + os.strerror(ctypes.get_errno()))
        for key in ("core.filemode", "core.symlinks"):
            value = self.git(["config", "--bool", key], check=False).strip()
            if value == b"false":
                raise Unsupported(key + " is false")
        self.base_tree = self.git(["rev-parse", "--verify", self.base + "^{tree}"]).strip()
        self.base_files, self.base_trees = parse_ls_tree(
            self.git(["ls-tree", "-r", "-t", "-z", "--full-tree", self.base])
        )
        self.base_children = {b"": set()}
        for path in list(self.base_trees) + list(self.base_files):
            self.base_children.setdefault(parent_of(path), set()).add(path.rpartition(b"/")[2])
        self.wd_path = {}
        self.path_wd = {}
        self.pending = set()  # paths to look at
        self.new_dirs = set()  # directories to walk whole
        self.stale = ""  # why the next snapshot needs the shell function
        self.last = None  # the root tree of the state last answered
        self.load_base()
        self.watch_tree()

    # ------------------------------------------------------------------ git
    def object_directory(self, wanted):
        """The object directory the helpers write to: ``wanted`` when it can be made,
        with the repository's own as an alternate; else the repository's own."""
        own = os.path.abspath(self.git(["rev-parse", "--git-path", "objects"]).strip()).decode()
        self.own_objects = own
        try:
            os.makedirs(wanted, exist_ok=True)
            probe = os.path.join(wanted, ".probe")
            with open(probe, "wb"):
                pass
            os.unlink(probe)
        except OSError:
            return own
        self.env["GIT_OBJECT_DIRECTORY"] = wanted
        self.env["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = own
        return wanted

    def git(self, args, check=True, env=None):
        done = subprocess.run(["git", *args], capture_output=True, env=env or self.env, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"git {args[0]}: {done.stderr.decode(errors='replace')}")
        return done.stdout

    def helper(self, name):
        found = self.helpers.get(name)
        if found is None or found.proc.poll() is not None:
            args = {
                "hash": ["hash-object", "-w", "--stdin-paths"],
                "ignore": ["check-ignore", "--stdin", "-z", "-v", "-n", "--no-index"],
                "diff": DIFF_CONFIG + DIFF_OPTIONS,
            }[name]
            found = self.helpers[name] = Helper(args, self.env)
        return found

    def close_helpers(self):
        for found in self.helpers.values():
            found.close()
        self.helpers = {}

    def hash_file(self, path):
        if b"\n" in path or path.startswith(b'"'):
            raise Full("a path git would quote")
        found = self.helper("hash")
        found.ask(path + b"\n")
        return found.line().strip()

    def ignored(self, path):
        found = self.helper("ignore")
        found.ask(path + b"\0")
        # -v -n -z: source, line number, pattern, path; all but the path empty if not ignored
        fields = []
        while len(fields) < 4:
            chunk = b""
            while not chunk.endswith(b"\0"):
                byte = found.proc.stdout.read(1)
                if not byte:
                    raise RuntimeError("git check-ignore ended")
                chunk += byte
            fields.append(chunk[:-1])
        return bool(fields[2]) and not fields[2].startswith(b"!")

    def write_tree(self, records):
        """A tree object from ``[(name, mode, oid hex, is_tree)]``, stored loose in the
        watcher's object directory: its id. Git's tree format: entries ``mode SP name NUL
        20-byte id``, sorted by name with a directory's name taken as ``name/``."""
        records.sort(key=lambda r: r[0] + b"/" if r[3] else r[0])
        body = b"".join(
            (b"40000" if is_tree else mode) + b" " + name + b"\0" + bytes.fromhex(oid.decode())
            for name, mode, oid, is_tree in records
        )
        raw = b"tree %d\0" % len(body) + body
        oid = hashlib.sha1(raw).hexdigest()
        folder = os.path.join(self.objects, oid[:2])
        path = os.path.join(folder, oid[2:])
        if not os.path.exists(path):
            os.makedirs(folder, exist_ok=True)
            temporary = f"{path}.{os.getpid()}.tmp"
            data = zlib.compress(raw, 1)
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
            self.written += len(data)
        return oid.encode()

    def diff(self, tree):
        found = self.helper("diff")
        found.ask(self.base_tree + b" " + tree + b"\n" + self.end + b"\n")
        found.line()  # diff-tree echoes the pair first
        chunks = []
        while True:
            line = found.line()
            if line == self.end + b"\n":
                return b"".join(chunks)
            chunks.append(line)

    # ---------------------------------------------------------------- model
    def load_base(self):
        self.files = dict(self.base_files)
        self.children = {d: set(names) for d, names in self.base_children.items()}
        self.trees = dict(self.base_trees)
        self.trees[b""] = self.base_tree
        self.dirty = set()

    def load_index(self):
        """The model from the private index, which the shell function just brought up to
        date: the base tree plus what differs from it there."""
        env = dict(self.env, GIT_INDEX_FILE=self.index)
        raw = self.git(
            ["diff-index", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev", self.base],
            env=env,
        )
        self.load_base()
        for status, path, mode, oid in parse_raw_diff(raw):
            if status == b"D":
                self.remove(path)
            else:
                self.set_file(path, mode, oid)
        self.last = self.write_trees()

    def touch(self, directory):
        while True:
            self.dirty.add(directory)
            self.trees.pop(directory, None)
            if not directory:
                return
            directory = parent_of(directory)

    def set_file(self, path, mode, oid):
        if self.files.get(path) == (mode, oid):
            return
        if path in self.children:
            self.remove(path)
        directory = parent_of(path)
        # Any file on the way is replaced by a directory.
        ancestor = directory
        while ancestor and ancestor not in self.children:
            if ancestor in self.files:
                self.remove(ancestor)
            ancestor = parent_of(ancestor)
        child, d = path, directory
        while True:
            names = self.children.setdefault(d, set())
            names.add(child.rpartition(b"/")[2])
            if not d:
                break
            child, d = d, parent_of(d)
        self.files[path] = (mode, oid)
        self.touch(directory)

    def remove(self, path):
        """Drop ``path`` (a file, or a directory and what it holds) from the state; junk
        paths keep their base version, as ``git add`` with the junk pathspecs does."""
        if path in self.files and not is_junk(path):
            del self.files[path]
            self.unlink(path)
        names = self.children.get(path)
        if names is not None:
            for name in list(names):
                self.remove(join(path, name))

    def unlink(self, path):
        directory = parent_of(path)
        names = self.children.get(directory)
        if names is not None:
            names.discard(path.rpartition(b"/")[2])
        self.touch(directory)

    def write_trees(self):
        """Tree objects for the changed directories, deepest first; the root's id."""
        for directory in sorted(self.dirty, key=lambda d: -d.count(b"/") - bool(d)):
            names = self.children.get(directory, set())
            records = []
            for name in names:
                path = join(directory, name)
                if path in self.files:
                    mode, oid = self.files[path]
                    records.append((name, mode, oid, False))
                elif self.trees.get(path):
                    records.append((name, b"40000", self.trees[path], True))
            if records or not directory:
                self.trees[directory] = self.write_tree(records)
            else:
                # An empty directory is no tree: gone from its parent as from git's.
                self.children.pop(directory, None)
                parent = self.children.get(parent_of(directory))
                if parent is not None and directory not in self.files:
                    parent.discard(directory.rpartition(b"/")[2])
        self.dirty = set()
        return self.trees[b""]

    # -------------------------------------------------------------- watches
    def watch(self, directory):
        wd = self._add_watch(self.fd, directory or b".", WATCH_MASK)
        if wd < 0:
            code = ctypes.get_errno()
            if code in (errno.ENOENT, errno.ENOTDIR):
                return False
            raise Full("inotify watch: " + os.strerror(code))
        known = self.wd_path.get(wd)
        if known is not None and known != directory:
            self.stale = "a directory moved"
        self.wd_path[wd] = directory
        self.path_wd[directory] = wd
        return True

    def watch_tree(self):
        """Watch every directory the state can hold files of, from the top, and the
        repository's own rule files (``.git/info/exclude``, ``.git/info/attributes``)."""
        self.walk(b"", new=False)
        if os.path.isdir(GIT_INFO):
            self.watch(GIT_INFO)

    def watch_state_directories(self):
        """Watch the directories that hold files of the state but were passed over (an
        ignored directory with files the index still tracks)."""
        for directory in list(self.children):
            if directory not in self.path_wd and os.path.isdir(directory or b"."):
                self.walk(directory, new=False)

    def walk(self, directory, new):
        """Watch ``directory`` and what is below it; with ``new``, also take every file
        found into the state (a directory created or moved in since the last look)."""
        tracked = directory in self.children
        if directory and not tracked and self.ignored(directory):
            return  # nothing in an ignored directory is part of the state
        if not self.watch(directory):
            return
        try:
            entries = list(os.scandir(directory or b"."))
        except (FileNotFoundError, NotADirectoryError):
            return
        seen = set()
        for entry in entries:
            path = join(directory, entry.name)
            if not directory and entry.name == b".git":
                continue
            if entry.name == b".git":
                raise Full("a nested repository")
            if new and entry.name in RULE_FILES:
                # Rules the resident helpers have not read: the shell function, then a
                # reload with helpers started afresh.
                raise Full("ignore or attribute rules changed")
            if entry.is_dir(follow_symlinks=False):
                if entry.name in JUNK_DIRS or entry.name.endswith(b".egg-info"):
                    continue
                seen.add(entry.name)
                self.walk(path, new)
            elif not is_junk(path):
                seen.add(entry.name)
                if new:
                    self.look(path)
        if new:
            for name in list(self.children.get(directory, ())):
                if name not in seen:
                    self.remove(join(directory, name))

    # --------------------------------------------------------------- events
    def drain(self):
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                wd, mask, _, size = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + size].rstrip(b"\0")
                offset += _EVENT.size + size
                self.event(wd, mask, name)

    def event(self, wd, mask, name):
        if mask & IN_Q_OVERFLOW:
            self.stale = "the event queue overflowed"
            return
        directory = self.wd_path.get(wd)
        if mask & IN_IGNORED:
            if directory is not None and self.path_wd.get(directory) == wd:
                del self.path_wd[directory]
            self.wd_path.pop(wd, None)
            return
        if directory is None:
            return
        if directory == GIT_INFO:
            if name in (b"exclude", b"attributes"):
                self.stale = "repository ignore or attribute rules changed"
            return
        if mask & IN_MOVE_SELF or (mask & IN_ISDIR and mask & (IN_MOVED_FROM | IN_MOVED_TO)):
            self.stale = "a directory moved"
            return
        if not name:
            return  # the directory's own attributes: git keeps none
        if not directory and name == b".git":
            return
        if name in RULE_FILES:
            self.stale = "ignore or attribute rules changed"
            return
        path = join(directory, name)
        self.pending.add(path)
        if mask & IN_ISDIR and mask & IN_CREATE:
            self.new_dirs.add(path)

    def look(self, path):
        """Bring ``path`` in the state up to what the work tree holds now."""
        if is_junk(path):
            return
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            self.remove(path)
            return
        if stat.S_ISDIR(st.st_mode):
            if path in self.files:
                self.remove(path)
            if path in self.new_dirs or path not in self.path_wd:
                self.walk(path, new=True)
            return
        if not stat.S_ISREG(st.st_mode):
            raise Full("a symbolic link or special file changed")
        if path not in self.files and self.ignored(path):
            return
        mode = b"100755" if st.st_mode & stat.S_IXUSR else b"100644"
        self.set_file(path, mode, self.hash_file(path))
        self.written += st.st_size  # at most what hash-object stored

    # ------------------------------------------------------------- requests
    def snapshot(self, force, limit):
        self.drain()
        if self.stale:
            raise Full(self.stale)
        if self.written > self.budget and self.objects != self.own_objects:
            # Every object there can go: the shell function puts the state's files into
            # the repository's objects, and the reload writes the state's trees again.
            self.close_helpers()
            shutil.rmtree(self.objects, ignore_errors=True)
            os.makedirs(self.objects, exist_ok=True)
            self.written = 0
            raise Full("the watcher's object directory was emptied")
        paths = sorted(self.pending | self.new_dirs)
        try:
            for path in paths:
                self.look(path)
        except Full as exc:
            # Paths not looked at, and directories not watched yet: the reload after the
            # shell function watches the whole tree again.
            self.stale = self.stale or str(exc)
            raise
        finally:
            self.pending = set()
            self.new_dirs = set()
        if self.stale:
            raise Full(self.stale)
        tree = self.write_trees()
        if tree == self.last and not force:
            return None
        blob = b"" if tree == self.base_tree else self.diff(tree)
        if len(blob) > limit:
            raise Full("a state larger than the session takes")
        self.last = tree
        return blob

    def reload(self):
        self.drain()
        self.close_helpers()  # rules or attributes may have changed under them
        if self.stale:
            self.stale = ""
            for wd in list(self.wd_path):
                self._rm_watch(self.fd, wd)
            self.wd_path, self.path_wd = {}, {}
            self.drain()
            self.load_base()
            self.watch_tree()
        # Events still pending are looked at again at the next snapshot: looking at a path
        # whose change the index already holds changes nothing.
        self.load_index()
        self.watch_state_directories()
        if self.stale:
            raise Full(self.stale)


def serve(argv, stdin, stdout):
    base, index, end = argv[1], argv[2], argv[3]
    budget = int(argv[4]) if len(argv) > 4 else OBJECT_BUDGET
    os.chdir(argv[0])
    try:
        watcher = Watcher(base, index, end, budget=budget)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the host keeps to the shell
        stdout.write(b"X " + str(exc).encode(errors="replace").replace(b"\n", b" ") + b"\n")
        stdout.flush()
        return
    stdout.write(b"W\n")
    stdout.flush()
    buffer = b""
    while True:
        ready, _, _ = select.select([stdin, watcher.fd], [], [])
        if watcher.fd in ready:
            watcher.drain()
        if stdin not in ready:
            continue
        chunk = os.read(stdin, 4096)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            stdout.write(answer(watcher, line.split()))
            stdout.flush()


def answer(watcher, request):
    try:
        if request[:1] == [b"S"]:
            blob = watcher.snapshot(request[1] == b"1", int(request[2]))
            if blob is None:
                return b"U\n"
            return b"P %d\n" % len(blob) + blob
        if request[:1] == [b"R"]:
            watcher.reload()
            return b"OK\n"
        return b"E unknown request\n"
    except Full as exc:
        return b"F " + str(exc).encode(errors="replace").replace(b"\n", b" ") + b"\n"
    except Exception as exc:  # noqa: BLE001 - the host falls back to the shell function
        text = f"{type(exc).__name__}: {exc}"
        return b"E " + text.encode(errors="replace").replace(b"\n", b" ") + b"\n"


if __name__ == "__main__":
    serve(sys.argv[1:], sys.stdin.fileno(), sys.stdout.buffer)
