"""Reproducers read from an issue's own text, no model: what a bug report shows.

Bug reports carry what shows the bug: an interpreter session (``>>>`` or IPython's
``In [n]:``) with its outputs, a script followed by the traceback it raised or the output
it printed, a shell command with its output, an "expected" value next to an "actual" one.
:func:`read_issue` turns a problem statement into :class:`Program` objects, each a unit
that runs as a whole in a sandbox, made of :class:`Statement` objects that each carry
what the issue says about them:

- ``shown``: the output the issue shows (the behaviour reported, often the bug);
- ``expected``: what the issue says it should give instead (``Expected:`` blocks,
  ``should be `X```, a ``# should be X`` comment), alternatives allowed;
- ``marked``: the issue points at this statement as the bug (``<---``, ``# wrong``), or it
  is the last statement of its session or script with a shown output;
- ``raises``: the exception type the shown traceback ends with, if any.

Whether a statement is a check is decided later, on the base commit (``issue.py``): only
what reproduces there is kept, as harvested tests are kept only when they fail on base.
Everything here is pure text processing (``ast`` decides what is Python), tested on
literal issue texts.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field

# A fenced block: ``` or ~~~, an optional language tag, the body.
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+.-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.M | re.S)  # fmt: skip
_INLINE = re.compile(r"`([^`\n]+)`")
_PROMPT = re.compile(r"^\s*(>>>|\.\.\.)( |$)")
_IPY_IN = re.compile(r"^\s*In \[\d+\]:\s?(.*)$")
_IPY_OUT = re.compile(r"^\s*Out\[\d+\]:\s?(.*)$")
_IPY_CONT = re.compile(r"^\s*\.\.\.+:\s?(.*)$")
_MARKER = re.compile(r"\s*(<-+|#\s*(?:<-+|wrong|bug|incorrect|should|expected|error)).*$", re.I)
_SHOULD_COMMENT = re.compile(r"#\s*(?:should (?:be|give|return)|expected:?)\s*(.+)$", re.I)
_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Warning|Interrupt|Failure))\b")
_SHELL_LANGS = {"sh", "shell", "bash", "console", "shell-session", "zsh", "cmd", "terminal"}
_PY_LANGS = {"py", "python", "python3", "pycon", "ipython", "pytb", "py3"}
_OUTPUT_LANGS = {"", "text", "txt", "none", "output", "plain", "plaintext", "pytb", "log"}
_EXPECTED_CUE = re.compile(
    r"(expected|expect|should (?:be|print|output|give|return|produce|look)|desired|correct "
    r"(?:output|result)|ought to|would like)",
    re.I,
)
_ACTUAL_CUE = re.compile(
    r"(actual|instead|but (?:got|get|i get|it gives)|output|result|gives|produces|returns|"
    r"prints|complains|raises|error|fails|traceback|got|get:|shows)",
    re.I,
)
_BUG_WORDS = re.compile(
    r"\b(error|exception|raises?|crash\w*|fails?|failure|traceback|cannot|can't|unable|"
    r"breaks?|broken|segfault)\b",
    re.I,
)
_PRODUCES = re.compile(
    r"`(?P<expr>[^`\n]+)`\s*(?:produces|returns|gives|evaluates to|yields|is|=|==|->)\s*"
    r"`(?P<value>[^`\n]+)`",
    re.I,
)
_SHOULD_INLINE = re.compile(
    r"should (?:be|return|give|produce|evaluate to|yield)[^.`\n]*((?:`[^`\n]+`[^.`\n]*)+)", re.I
)


@dataclass
class Statement:
    """One statement of a program and what the issue says of it."""

    code: str
    shown: str | None = None
    expected: list[str] = field(default_factory=list)
    marked: bool = False
    # Exception types the issue's traceback names after its last "Traceback" header
    # (a chained or wrapped error names more than one).
    raises: list[str] = field(default_factory=list)


@dataclass
class Program:
    """A unit that runs as a whole: a Python session or script, or a shell command.

    ``source`` is the issue's text it came from (shown in verdicts); ``files`` are files
    the issue gives that a command needs (name -> content); ``bug_words``: the issue's
    title or the paragraph before it calls the behaviour an error or a failure."""

    kind: str  # "python" | "command"
    statements: list[Statement]
    source: str
    files: dict[str, str] = field(default_factory=dict)
    bug_words: bool = False

    @property
    def id(self) -> str:
        text = "\0".join([self.kind, *(s.code for s in self.statements)])
        return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]


@dataclass
class _Block:
    lang: str
    body: str
    before: str  # the prose between the previous block and this one
    start: int


def blocks(text: str) -> list[_Block]:
    """Fenced code blocks in order, each with the prose that precedes it."""
    out, last = [], 0
    for m in _FENCE.finditer(text):
        out.append(
            _Block(m.group("lang").lower(), m.group("body"), text[last : m.start()], m.start())
        )
        last = m.end()
    return out


def exception_of(text: str) -> list[str]:
    """The exception types a traceback (Python's or IPython's) names after its last
    ``Traceback`` header, as last dotted components (``sympy.core.sympify.SympifyError``
    -> ``SympifyError``); [] when the text shows none."""
    lines = text.splitlines()
    heads = [i for i, x in enumerate(lines) if "Traceback" in x]
    found: list[str] = []
    for line in lines[heads[-1] + 1 if heads else 0 :]:
        m = _EXC_LINE.match(line.strip())
        if m:
            name = m.group(1).rsplit(".", 1)[-1]
            if name not in found:
                found.append(name)
    return found


def is_python(code: str) -> bool:
    """Parses as Python and is more than a bare word (prose and shell commands are rarely
    both)."""
    stripped = code.strip()
    if not stripped or stripped.startswith(("$ ", "#!")):
        return False
    try:
        tree = ast.parse(stripped)
    except (SyntaxError, ValueError):
        return False
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
        value = tree.body[0].value
        return not isinstance(value, ast.Name | ast.Constant)
    return bool(tree.body)


def _strip_marker(line: str) -> tuple[str, bool]:
    m = _MARKER.search(line)
    if m and not line.lstrip().startswith("#"):
        return line[: m.start()].rstrip(), True
    return line, False


def parse_session(body: str) -> list[Statement]:
    """A ``>>>`` or IPython session: statements with the outputs printed after them."""
    statements: list[Statement] = []
    lines = body.splitlines()
    current: list[str] | None = None
    output: list[str] = []

    def close() -> None:
        nonlocal current, output
        if current is None:
            return
        code_lines, code_marked = [], False
        for code_line in current:
            stripped, marked = _strip_marker(code_line)
            if marked and "<-" in code_line:
                code_line, code_marked = stripped, True
            code_lines.append(code_line)
        code = "\n".join(code_lines)
        stmt = Statement(code=code, marked=code_marked)
        should = _SHOULD_COMMENT.search(code)
        if should:
            stmt.expected.append(should.group(1).strip().strip("`"))
            stmt.marked = True
        marked_out = False
        cleaned = []
        for out_line in output:
            text, marked = _strip_marker(out_line)
            marked_out |= marked
            cleaned.append(text)
        shown = "\n".join(cleaned).strip("\n")
        if shown.strip():
            stmt.shown = shown
            stmt.raises = exception_of(shown) if "Traceback" in shown or len(cleaned) < 4 else []
        stmt.marked |= marked_out or bool(re.search(r"#\s*(wrong|bug|incorrect)", code, re.I))
        statements.append(stmt)
        current, output = None, []

    for line in lines:
        ipy_in, ipy_out = _IPY_IN.match(line), _IPY_OUT.match(line)
        if line.lstrip().startswith(">>>") or ipy_in:
            close()
            current = [ipy_in.group(1) if ipy_in else re.sub(r"^\s*>>> ?", "", line)]
        elif current is not None and (
            re.match(r"^\s*\.\.\.( |$)", line) or (_IPY_CONT.match(line) and not output)
        ):
            cont = _IPY_CONT.match(line)
            current.append(
                cont.group(1)
                if cont and not line.lstrip().startswith("... ")
                else re.sub(r"^\s*\.\.\. ?", "", line)
            )
        elif current is not None:
            output.append(ipy_out.group(1) if ipy_out else line)
    close()
    # Statements with nothing but blank continuation lines, or comments only, are noise.
    kept = [s for s in statements if s.code.strip() and not s.code.strip().startswith("#")]
    if kept and not any(s.marked for s in kept):
        shown = [s for s in kept if s.shown is not None]
        if shown:
            shown[-1].marked = True
    return kept


def parse_script(body: str) -> list[Statement]:
    """A script: one statement per top-level node (run as an interpreter would, so a
    last bare expression shows its value)."""
    tree = ast.parse(body)
    lines = body.splitlines()
    out = []
    for node in tree.body:
        end = getattr(node, "end_lineno", node.lineno)
        out.append(Statement(code="\n".join(lines[node.lineno - 1 : end])))
    return out


def _single_expression(body: str) -> bool:
    try:
        tree = ast.parse(body.strip())
    except (SyntaxError, ValueError):
        return False
    return len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)


def _session(body: str) -> bool:
    return any(_PROMPT.match(x) or _IPY_IN.match(x) for x in body.splitlines())


def _commands(block: _Block) -> list[str]:
    """Shell commands of a shell block: ``$ ``-prompted lines, else every line when the
    block holds nothing that looks like output."""
    lines = [x for x in block.body.splitlines() if x.strip()]
    prompted = [re.sub(r"^\s*\$ ?", "", x) for x in lines if x.lstrip().startswith("$ ")]
    if prompted:
        return prompted
    if (
        block.lang in _SHELL_LANGS
        and len(lines) <= 3
        and not any(_EXC_LINE.match(x.strip()) or ":" in x.split(" ", 1)[0] for x in lines)
    ):
        return [x.strip() for x in lines]
    return []


def _filename_before(prose: str) -> str | None:
    tail = prose.strip().splitlines()[-1:] or [""]
    m = re.search(
        r"`?([\w./-]+\.(?:py|cfg|ini|toml|txt|rst|yaml|yml|json|pyi))`?\s*:?\s*$", tail[0]
    )
    return m.group(1) if m else None


def _inline_programs(text: str, bug: bool) -> list[Program]:
    """``EXPR`` produces ``VALUE`` ... should be ``OTHER``: one-statement programs."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        for m in _PRODUCES.finditer(paragraph):
            expr = m.group("expr").strip()
            if not is_python(expr):
                continue
            stmt = Statement(code=expr, shown=m.group("value").strip(), marked=True)
            should = _SHOULD_INLINE.search(paragraph[m.end() :])
            if should:
                stmt.expected = [v.strip() for v in _INLINE.findall(should.group(1))]
            out.append(Program("python", [stmt], m.group(0), bug_words=bug))
    return out


def read_issue(problem_statement: str) -> list[Program]:
    """The programs an issue shows, in order (possibly none).

    A Python block (session or script) is a program; a non-Python block right after it is
    its shown output when the prose between them reads as output (``gives``, ``error``,
    ``Traceback``...) or as an expectation (``Expected:``, ``should be``), and goes to its
    last statement (a traceback to the statement that raised: decided on base). Shell
    blocks give commands, with the files named just before earlier blocks. Inline
    ``EXPR`` produces ``VALUE`` sentences give one-statement programs."""
    text = problem_statement.replace("\r\n", "\n")
    title = text.strip().splitlines()[0] if text.strip() else ""
    title_bug = bool(_BUG_WORDS.search(title))
    programs: list[Program] = []
    files: dict[str, str] = {}
    last: Program | None = None
    found = blocks(text)
    for block in found:
        _expected_in_prose(last, block.before)
        body = block.body.rstrip("\n")
        bug = title_bug or bool(_BUG_WORDS.search(block.before))
        if block.lang == "diff" or body.lstrip().startswith(("diff --git", "--- a/")):
            last = None
            continue
        name = _filename_before(block.before)
        if _session(body):
            stmts = parse_session(body)
            if stmts:
                last = Program("python", stmts, body, bug_words=bug)
                programs.append(last)
            continue
        commands = _commands(block) if block.lang in _SHELL_LANGS or "$ " in body else []
        if commands:
            for command in commands:
                last = Program("command", [Statement(code=command)], command, dict(files), bug)
                programs.append(last)
            continue
        if name and block.lang not in _SHELL_LANGS:
            files[name] = body + "\n"
        python = block.lang in _PY_LANGS or (
            block.lang not in _OUTPUT_LANGS - {""} and is_python(body)
        )
        lead = ([x for x in block.before.splitlines() if x.strip()] or [""])[-1]
        if python and last is not None and block.lang not in _PY_LANGS and _single_expression(body):
            # "Expected output:" then `rock-roll`: an output that happens to parse.
            python = not (_EXPECTED_CUE.search(lead) or _ACTUAL_CUE.search(lead))
        if python and is_python(body) and not exception_of(body):
            stmts = parse_script(body)
            if stmts:
                last = Program("python", stmts, body, dict(files), bug)
                programs.append(last)
            continue
        if last is None:
            continue
        target = last.statements[-1]
        expected_cue = bool(_EXPECTED_CUE.search(lead)) or (
            _EXPECTED_CUE.search(block.before) and not _ACTUAL_CUE.search(block.before)
        )
        if expected_cue:
            target.expected.append(body.strip("\n"))
            target.marked = True
        elif target.shown is None and (
            _ACTUAL_CUE.search(block.before) or exception_of(body) or block.lang in _OUTPUT_LANGS
        ):
            target.shown = body.strip("\n")
            target.raises = exception_of(body)
            target.marked = True
            last.bug_words |= bug or bool(target.raises)
        for stmt in last.statements[:-1]:
            stmt.marked = stmt.marked and stmt.shown is not None
    tail = text[text.rfind(found[-1].body) + len(found[-1].body) :] if found else ""
    _expected_in_prose(last, tail.split("\n", 1)[-1] if tail else "")
    programs.extend(_inline_programs(_strip_blocks(text), title_bug))
    return _dedupe(programs)


def _expected_in_prose(program: Program | None, prose: str) -> None:
    """``I expected `a` and `b`.`` right after a program: the inline values of the
    sentence holding the cue are what its statements should give, one each in order when
    there are as many as statements with a shown output, else alternatives for the
    statement the issue points at."""
    if program is None:
        return
    cue = _EXPECTED_CUE.search(prose)
    if not cue:
        return
    sentence = re.split(r"(?<=[.!?])\s|\n\s*\n", prose[cue.start() :], maxsplit=1)[0]
    values = [v.strip() for v in _INLINE.findall(sentence) if v.strip()]
    if not values:
        return
    shown = [s for s in program.statements if s.shown is not None and not s.raises]
    if len(shown) == len(values) > 1:
        for stmt, value in zip(shown, values, strict=True):
            stmt.expected.append(value)
            stmt.marked = True
        return
    marked = [s for s in program.statements if s.marked] or program.statements[-1:]
    marked[-1].expected.extend(values)
    marked[-1].marked = True


def _strip_blocks(text: str) -> str:
    return _FENCE.sub("", text)


def _dedupe(programs: list[Program]) -> list[Program]:
    seen, out = set(), []
    for program in programs:
        if program.id in seen:
            continue
        seen.add(program.id)
        out.append(program)
    return out


def normalize(text: str | None) -> str:
    """Output text compared loosely: whitespace runs collapsed, object addresses and
    trailing blank lines dropped (two runs of the same behaviour print the same)."""
    if text is None:
        return ""
    text = re.sub(r" at 0x[0-9a-fA-F]+", " at 0x?", text)
    return " ".join(text.split())
