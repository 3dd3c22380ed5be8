"""Running the real ``databunker`` command as a process, for end-to-end tests.

``run_cli`` runs one command to completion; ``ServerProcess`` starts ``serve`` or ``demo`` on a
free port of 127.0.0.1, waits until ``GET /v1/status`` answers 200, and stops it again.

Both pass the child an explicit, minimal environment (``PATH``, ``HOME`` and the variables the
test gives), so a developer's own ``DATABUNKER_*`` variables never reach it, and both run it in
a directory the test chooses, so no ``./databunker.yaml`` or ``./databunker.db`` is picked up.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx2 as httpx

__all__ = ["ServerError", "ServerProcess", "child_env", "free_port", "run_cli"]

COMMAND = (sys.executable, "-m", "databunker")
CLI_TIMEOUT = 60.0
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
_BIND_RETRIES = 3
_instances = itertools.count(1)


class ServerError(RuntimeError):
    """The server process did not come up (or did not go down) as expected."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``PATH`` and ``HOME`` from this process, plus ``env``; nothing else is inherited."""
    base = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", "/nonexistent"),
    }
    return {**base, **(env or {})}


def run_cli(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path,
    timeout: float = CLI_TIMEOUT,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``databunker <args>`` to completion in ``cwd`` and capture its output as text;
    ``stdin`` is given on its standard input."""
    return subprocess.run(
        [*COMMAND, *args],
        env=child_env(env),
        cwd=cwd,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServerProcess:
    """``databunker <args> --host 127.0.0.1 --port <free>`` as a context manager.

    The process's stdout and stderr go to files in ``cwd`` (a pipe nobody reads could fill up
    and stall the server); ``stderr`` and ``stdout`` read them back, also after the stop.
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        cwd: Path,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        sealed: bool = False,
    ) -> None:
        # ``sealed``: ready once /v1/status answers at all (503 while sealed).
        self.ready_statuses = {200, 503} if sealed else {200}
        self.args = list(args)
        self.env = child_env(env)
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.returncode: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._outputs: list[IO[bytes]] = []
        number = next(_instances)
        self._stdout_path = cwd / f"server-{number}.stdout"
        self._stderr_path = cwd / f"server-{number}.stderr"

    @property
    def url(self) -> str:
        if self._process is None:
            raise ServerError("the server is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerError("the server is not running")
        return self._process.pid

    @property
    def stdout(self) -> str:
        return self._read(self._stdout_path)

    @property
    def stderr(self) -> str:
        return self._read(self._stderr_path)

    # -- life cycle --------------------------------------------------------
    def start(self) -> None:
        """Start the process and wait until it serves; raise ServerError with its stderr if not."""
        for attempt in range(_BIND_RETRIES):
            self.port = free_port()
            self._spawn()
            try:
                self._wait_until_ready()
                return
            except ServerError:
                self.stop()
                # Someone else may have taken the free port before the server bound it.
                if attempt == _BIND_RETRIES - 1 or "address already in use" not in self.stderr:
                    raise
            except BaseException:
                self.stop()
                raise

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; wait, close the logs; the exit status."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.returncode = process.returncode
        for output in self._outputs:
            output.close()
        self._outputs.clear()
        return self.returncode

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------
    def _spawn(self) -> None:
        # A new file for each attempt: the logs read back are those of the running process.
        stdout = self._stdout_path.open("wb")
        self._outputs.append(stdout)
        stderr = self._stderr_path.open("wb")
        self._outputs.append(stderr)
        self.returncode = None
        self._process = subprocess.Popen(
            [*COMMAND, *self.args, "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )

    def _wait_until_ready(self) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while True:
                if process.poll() is not None:
                    raise ServerError(
                        f"databunker {' '.join(self.args)} exited with status "
                        f"{process.returncode} before serving:\n{self.stderr}"
                    )
                try:
                    if client.get("/v1/status").status_code in self.ready_statuses:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"databunker {' '.join(self.args)} did not answer /v1/status within "
                        f"{self.start_timeout:g} s:\n{self.stderr}"
                    )
                time.sleep(0.05)

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
