"""Real OpenAI-compatible servers on loopback for tests and benchmarks: ``transformers serve`` on a
prepared model folder (offline), with continuous batching so concurrent requests share batches; and
``s2l serve`` (llama.cpp's server) on a build's serving folder."""

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


class LoopbackServer:
    """A server process on 127.0.0.1:port, started by ``command()`` and ready once ``health`` answers."""

    name = "server"
    health = "/health"

    def __init__(self, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        with open(self.log, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.health}", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"{self.name} did not answer {self.health} in {STARTUP_SECONDS} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: nothing gets to finish."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None



class TransformersServer(LoopbackServer):
    """``transformers serve MODEL``; ``posts()`` counts the chat completions it was sent, from its
    own access log (so a test counts at the server, not through the client)."""

    name = "transformers serve"

    def __init__(self, model_dir: Path, log: Path, port: int | None = None) -> None:
        super().__init__(log, port)
        self.model_dir = model_dir
        self.model = str(model_dir)  # the served model's name is its folder

    def command(self) -> list[str]:
        executable = Path(sys.executable).with_name("transformers")
        return [str(executable) if executable.exists() else shutil.which("transformers") or "transformers",
                "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                "--continuous-batching", "--log-level", "info"]

    def posts(self) -> int:
        return self.log.read_text(encoding="utf-8", errors="replace").count('"POST /v1/chat/completions')


class S2lServer(LoopbackServer):
    """``s2l serve FOLDER``: llama.cpp's server on a build's serving folder, ``auto`` routed."""

    name = "s2l serve"
    health = "/v1/models"

    def __init__(self, folder: Path, log: Path, threads: int = 2, port: int | None = None) -> None:
        super().__init__(log, port)
        self.folder = folder
        self.threads = threads

    def command(self) -> list[str]:
        return [sys.executable, "-m", "s2l", "serve", str(self.folder), "--port", str(self.port),
                "--threads", str(self.threads)]
