"""Fixtures of the CI bot tests: webhook payloads, a small git repository with a bug, a
bare repository as its remote, and a loopback HTTP server that answers like GitHub's REST
API for the endpoints the bot calls and records every request."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import git
import pytest

REPO = "acme/calc"

CALC_PY = '''"""A tiny calculator."""


def add(a, b):
    return a - b


def mul(a, b):
    return a * b
'''

TEST_CALC_PY = """from calc import add, mul


def test_mul():
    assert mul(2, 3) == 6


def test_add_zero():
    assert add(0, 0) == 0
"""

SWESCALE_YAML = """python_packages: [pytest]
install:
  - python -c "import calc"
test_command: python -m pytest -rA -p no:cacheprovider
forbidden_paths: [".github/**", "setup.cfg"]
max_files_changed: 3
"""

FIX_PATCH = "\n".join(
    [
        "diff --git a/calc.py b/calc.py",
        "--- a/calc.py",
        "+++ b/calc.py",
        "@@ -2,7 +2,7 @@",
        " ",
        " ",
        " def add(a, b):",
        "-    return a - b",
        "+    return a + b",
        " ",
        " ",
        " def mul(a, b):",
        "",
    ]
)


def issue(number: int = 7, title: str = "add() subtracts", body: str = "add(2, 3) gives -1", **kw):
    data = {
        "number": number,
        "title": title,
        "body": body,
        "state": "open",
        "labels": [],
        "user": {"login": "alice", "type": "User"},
        "author_association": "OWNER",
    }
    data.update(kw)
    return data


def repository(full_name: str = REPO, default_branch: str = "main") -> dict[str, Any]:
    return {
        "full_name": full_name,
        "default_branch": default_branch,
        "name": full_name.split("/")[1],
    }


def issues_event(action: str = "labeled", label: str = "swescale", **issue_kw) -> dict[str, Any]:
    labels = [{"name": label}] if action in ("opened", "labeled") else []
    payload = {
        "action": action,
        "issue": issue(labels=labels, **issue_kw),
        "repository": repository(),
        "sender": {"login": "alice", "type": "User"},
    }
    if action == "labeled":
        payload["label"] = {"name": label}
    return payload


def comment_event(
    body: str = "/swescale",
    login: str = "alice",
    association: str = "OWNER",
    user_type: str = "User",
    action: str = "created",
    **issue_kw,
) -> dict[str, Any]:
    return {
        "action": action,
        "issue": issue(**issue_kw),
        "comment": {
            "id": 99,
            "body": body,
            "user": {"login": login, "type": user_type},
            "author_association": association,
        },
        "repository": repository(),
        "sender": {"login": login, "type": user_type},
    }


def write_event(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload))
    return path


def _commit_all(repo: git.Repo, message: str) -> str:
    repo.git.add("-A")
    env = {
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    }
    repo.git.commit("-q", "-m", message, env=env)
    return repo.head.commit.hexsha


@pytest.fixture
def calc_repo(tmp_path: Path) -> tuple[Path, str]:
    """(checkout, base commit) of a small repository whose add() subtracts, with a bare
    clone of it as ``origin``."""
    work = tmp_path / "calc"
    work.mkdir()
    repo = git.Repo.init(work, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Dev")
        cw.set_value("user", "email", "dev@example.com")
    (work / "calc.py").write_text(CALC_PY)
    (work / "test_calc.py").write_text(TEST_CALC_PY)
    (work / ".swescale.yaml").write_text(SWESCALE_YAML)
    base = _commit_all(repo, "calculator")
    bare = tmp_path / "remote.git"
    git.Repo.init(bare, bare=True, initial_branch="main")
    repo.create_remote("origin", str(bare))
    repo.git.push("-q", "origin", "main")
    return work, base


class _Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        # (method, path) -> (status, body) to answer instead of the default.
        self.overrides: dict[tuple[str, str], tuple[int, Any]] = {}
        self.open_pulls: list[dict[str, Any]] = []
        self.issue_comments: list[dict[str, Any]] = []
        self.url = ""


def _handler(recorder: _Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            return

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            path, _, query = self.path.partition("?")
            recorder.requests.append(
                {
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": body,
                }
            )
            if (self.command, path) in recorder.overrides:
                self._answer(*recorder.overrides[(self.command, path)])
                return
            # GitHub Enterprise serves the same API under /api/v3.
            parts = path.removeprefix("/api/v3").strip("/").split("/")
            if self.headers.get("Authorization", "") != "Bearer test-token":
                self._answer(401, {"message": "Bad credentials"})
            elif self.command == "POST" and len(parts) == 4 and parts[3] == "pulls":
                if not isinstance(body, dict) or not {"title", "head", "base"} <= set(body):
                    self._answer(
                        422, {"message": "Validation Failed", "errors": [{"code": "missing_field"}]}
                    )
                    return
                number = len(recorder.open_pulls) + 1
                pull = {
                    "number": number,
                    "html_url": f"{recorder.url}/{parts[1]}/{parts[2]}/pull/{number}",
                    "head": {"ref": body["head"]},
                    "state": "open",
                }
                recorder.open_pulls.append(pull)
                self._answer(201, pull)
            elif self.command == "GET" and len(parts) == 4 and parts[3] == "pulls":
                self._answer(200, recorder.open_pulls)
            elif (
                self.command == "GET"
                and len(parts) == 6
                and parts[3] == "issues"
                and parts[5] == "comments"
            ):
                self._answer(200, recorder.issue_comments)
            elif (
                self.command == "POST"
                and len(parts) == 6
                and parts[3] == "issues"
                and parts[5] == "comments"
            ):
                self._answer(
                    201,
                    {
                        "id": 1000 + len(recorder.requests),
                        "html_url": f"{recorder.url}/{parts[1]}/{parts[2]}/issues/{parts[4]}#c",
                        "body": (body or {}).get("body"),
                    },
                )
            else:
                self._answer(404, {"message": "Not Found"})

        do_GET = _handle
        do_POST = _handle

    return Handler


@pytest.fixture
def fake_github():
    """A GitHub-like REST server on 127.0.0.1; ``.url``, ``.requests``, ``.overrides``.
    Accepts only the token ``test-token``."""
    recorder = _Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
