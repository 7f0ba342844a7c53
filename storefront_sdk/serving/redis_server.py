"""Start a throwaway ``redis-server`` on ``127.0.0.1`` (tests, benchmarks, demos).

The Debian package ``redis-server`` (or any ``redis-server`` on ``PATH``) is launched
on a free port in a temporary directory with persistence off, and stopped on exit::

    with RedisServer() as srv:
        cache = RedisGenerationCache(srv.url)

This is the real server, not an imitation: tests that ask for Redis talk to it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from ..exceptions import ConfigurationError

__all__ = ["RedisServer", "redis_server_available"]


def redis_server_available() -> bool:
    """True when a ``redis-server`` binary is on ``PATH``."""
    return shutil.which("redis-server") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A ``redis-server`` child process on ``127.0.0.1:<free port>``, no persistence."""

    def __init__(self, port: int | None = None, *, binary: str = "redis-server") -> None:
        self.port = port or _free_port()
        self.binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        exe = shutil.which(self.binary)
        if exe is None:
            raise ConfigurationError(
                f"{self.binary!r} not found on PATH; install Debian's redis-server package"
            )
        self._dir = tempfile.TemporaryDirectory(prefix="storefront-redis-")
        args = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", self._dir.name, "--protected-mode", "yes"]
        log = Path(self._dir.name) / "redis.log"
        with log.open("wb") as out:
            self._proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._proc.poll() is not None:
                text = log.read_text(errors="replace")[-2000:]
                self.stop()
                raise ConfigurationError(f"redis-server exited at start: {text}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise ConfigurationError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
