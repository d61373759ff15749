"""A tiny HTTP server speaking the OpenAI wire format, for tests of what the client sends
and how it reads what comes back (no GPU, no model, no mock of the client).

It answers ``GET /v1/models`` as the server family it plays (``owned_by``), ``GET
/version`` for vLLM, and each ``POST /v1/chat/completions`` with the next planned reply:
``(status, json_body)`` or, for a streamed request, ``("stream", [chunk, ...])``. Every
request body is recorded in ``requests``; ``chunks_written`` counts the chunks a streamed
reply got out before the client hung up.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any


def chat_response(
    content: str | None = "",
    tool_calls: list[dict[str, Any]] | None = None,
    *,
    reasoning: str | None = None,
    reasoning_field: str = "reasoning_content",
    finish_reason: str = "stop",
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    reasoning_tokens: int | None = None,
) -> dict[str, Any]:
    """A chat completion as vLLM or llama.cpp sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": f"chatcmpl-tool-{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
            }
            for i, c in enumerate(tool_calls)
        ]
    if reasoning is not None:
        message[reasoning_field] = reasoning
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage,
    }


def stream_chunks(pieces: list[tuple[str, str]], finish_reason: str = "stop") -> list[dict]:
    """Streamed chunks, one per ``(field, text)`` piece (field ``content`` or a reasoning
    field), then the finishing chunk."""
    chunks = []
    for field, text in pieces:
        chunks.append(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {field: text}, "finish_reason": None}],
            }
        )
    chunks.append(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}],
        }
    )
    return chunks


class WireServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        replies: list[Any],
        owned_by: str = "vllm",
        version: str = "0.11.0",
        chunk_delay: float = 0.0,
    ):
        self.replies = list(replies)
        self.chunk_delay = chunk_delay
        self.owned_by = owned_by
        self.version = version
        self.requests: list[dict[str, Any]] = []
        self.gets: list[str] = []
        self.chunks_written = 0
        super().__init__(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        server: WireServer = self.server  # type: ignore[assignment]
        server.gets.append(self.path)
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "m", "owned_by": server.owned_by}]})
        elif self.path == "/version" and server.owned_by == "vllm":
            self._json(200, {"version": server.version})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        server: WireServer = self.server  # type: ignore[assignment]
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        server.requests.append(body)
        reply = server.replies.pop(0) if server.replies else (500, {"error": {"message": "none"}})
        status, payload = reply
        if status != "stream":
            self._json(status, payload)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        try:
            for chunk in payload:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                server.chunks_written += 1
                if server.chunk_delay:
                    time.sleep(server.chunk_delay)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True
