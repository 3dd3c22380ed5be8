"""Node.js programs for end-to-end tests: install an npm project, run its scripts and apps.

``install_npm_project`` copies a folder holding a ``package.json`` (and, if committed, its
``package-lock.json``) into a scratch directory and installs its packages there with the
ordinary npm client, so the source tree never gets a ``node_modules``. ``NodeProject.run_json``
runs a script to completion and reads the one JSON object it prints; ``NodeApp`` keeps a
script running that listens on a port of 127.0.0.1 it chose itself and prints
``{"listening": <port>}``.

Failures raise ``NodeError`` with everything needed to see why: the command, its exit status,
its standard output and standard error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from support.server import child_env

__all__ = ["NodeApp", "NodeError", "NodeProject", "install_npm_project"]

INSTALL_TIMEOUT = 240.0
SCRIPT_TIMEOUT = 30.0
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


class NodeError(RuntimeError):
    """npm or a Node script did not do what the test needs; the message says what happened."""


def _describe(command: Sequence[str], returncode: int | None, stdout: str, stderr: str) -> str:
    status = "timed out" if returncode is None else f"exited with status {returncode}"
    return (
        f"`{' '.join(command)}` {status}\n"
        f"--- stdout ---\n{stdout.rstrip()}\n--- stderr ---\n{stderr.rstrip()}"
    )


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def install_npm_project(source: Path, target: Path) -> NodeProject:
    """Copy ``source`` to ``target`` and install its packages; raise NodeError if npm fails.

    With a committed ``package-lock.json`` the install is ``npm ci`` (exactly the locked
    versions), else ``npm install``. npm runs with this process's environment, so the
    machine's npm configuration (registry, proxy, cache) applies.
    """
    for program in ("node", "npm"):
        if shutil.which(program) is None:
            raise NodeError(f"`{program}` is not on PATH (scripts/test installs Node.js and npm)")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules"))
    verb = "ci" if (target / "package-lock.json").is_file() else "install"
    command = ["npm", verb, "--no-audit", "--no-fund", "--no-update-notifier"]
    try:
        result = subprocess.run(
            command,
            cwd=target,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NodeError(_describe(command, None, _text(exc.stdout), _text(exc.stderr))) from None
    if result.returncode != 0:
        raise NodeError(_describe(command, result.returncode, result.stdout, result.stderr))
    return NodeProject(target)


@dataclass(frozen=True)
class NodeProject:
    """An installed npm project: its scripts run with its ``node_modules``."""

    folder: Path

    def run_json(
        self,
        script: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        timeout: float = SCRIPT_TIMEOUT,
    ) -> dict[str, Any]:
        """Run ``node <script> <args>`` to completion; the JSON object it printed last."""
        command = ["node", script, *args]
        try:
            result = subprocess.run(
                command,
                cwd=self.folder,
                env=child_env(env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise NodeError(
                _describe(command, None, _text(exc.stdout), _text(exc.stderr))
            ) from None
        failure = _describe(command, result.returncode, result.stdout, result.stderr)
        if result.returncode != 0:
            raise NodeError(failure)
        lines = result.stdout.strip().splitlines()
        try:
            found = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            found = None
        if not isinstance(found, dict):
            raise NodeError(f"no JSON object on the last line of stdout:\n{failure}")
        return found

    def app(self, script: str, env: Mapping[str, str] | None = None) -> NodeApp:
        return NodeApp(self.folder, script, env)


class NodeApp:
    """``node <script>`` as a context manager, for a script that serves on 127.0.0.1.

    Output goes to files in the project folder and is read back with ``stdout``/``stderr``
    (also after the stop). The child's standard input is a pipe kept open while it runs: a
    script can exit when it closes, so it never outlives the test process.
    """

    _count = 0

    def __init__(self, folder: Path, script: str, env: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.script = script
        self.env = child_env(env)
        self.port = 0
        self.returncode: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._outputs: list[IO[bytes]] = []
        NodeApp._count += 1
        stem = f"{Path(script).stem}-{NodeApp._count}"
        self._stdout_path = folder / f"{stem}.stdout"
        self._stderr_path = folder / f"{stem}.stderr"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> str:
        return self._read(self._stdout_path)

    @property
    def stderr(self) -> str:
        return self._read(self._stderr_path)

    def report(self) -> str:
        """Exit status and output so far, for an assertion message."""
        process = self._process
        status = process.poll() if process is not None else self.returncode
        state = "running" if status is None else f"exited with status {status}"
        return (
            f"node {self.script} ({state})\n--- stdout ---\n{self.stdout.rstrip()}\n"
            f"--- stderr ---\n{self.stderr.rstrip()}"
        )

    def start(self) -> None:
        stdout = self._stdout_path.open("wb")
        self._outputs.append(stdout)
        stderr = self._stderr_path.open("wb")
        self._outputs.append(stderr)
        self._process = subprocess.Popen(
            ["node", self.script],
            cwd=self.folder,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            self.port = self._wait_for_port()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> int | None:
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.returncode = process.returncode
        for output in self._outputs:
            output.close()
        self._outputs.clear()
        return self.returncode

    def __enter__(self) -> NodeApp:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_for_port(self) -> int:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for line in self.stdout.splitlines():
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(message, dict) and isinstance(message.get("listening"), int):
                    port: int = message["listening"]
                    return port
            if process.poll() is not None:
                raise NodeError(f"the app stopped before listening:\n{self.report()}")
            if time.monotonic() > deadline:
                raise NodeError(
                    f"the app did not listen within {START_TIMEOUT:g} s:\n{self.report()}"
                )
            time.sleep(0.05)

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
