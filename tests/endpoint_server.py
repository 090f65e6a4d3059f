"""A real OpenAI-compatible server on loopback for tests and benchmarks: ``transformers serve`` on a
prepared model folder (offline), with continuous batching so concurrent requests share batches."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TransformersServer:
    """``transformers serve MODEL`` on 127.0.0.1:port; ``posts()`` counts the chat completions it was
    sent, from its own access log (so a test counts at the server, not through the client)."""

    def __init__(self, model_dir: Path, log: Path, port: int | None = None) -> None:
        self.model_dir = model_dir
        self.model = str(model_dir)  # the served model's name is its folder
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> TransformersServer:
        executable = Path(sys.executable).with_name("transformers")
        command = [str(executable) if executable.exists() else shutil.which("transformers") or "transformers",
                   "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                   "--continuous-batching", "--log-level", "info"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        with open(self.log, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"transformers serve did not answer /health in {STARTUP_SECONDS} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: nothing gets to finish."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def posts(self) -> int:
        return self.log.read_text(encoding="utf-8", errors="replace").count('"POST /v1/chat/completions')
