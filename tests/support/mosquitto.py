"""A Mosquitto broker of the test's own, on a free port of 127.0.0.1, with a temporary configuration.

    with Mosquitto() as broker:                       # anonymous clients allowed
        client.connect(broker.host, broker.port)
    with Mosquitto(users={"edge": "s3cret"}) as broker:  # only these users; anyone else is refused
        ...

Debian's package puts the broker at /usr/sbin/mosquitto (not on a user's PATH); `.ci/run` installs it. The broker is
stopped (and its files removed) on leaving the block; stop() and start() may also be called in a test to take the
broker away and bring it back on the same port.
"""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def password_line(user: str, password: str) -> str:
    """A password file line in Mosquitto's salted SHA-512 form ($6$), so tests need no mosquitto_passwd."""
    salt = os.urandom(12)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return f"{user}:$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


class Mosquitto:
    def __init__(self, users: dict[str, str] | None = None, port: int | None = None,
                 tls: tuple[str, str] | None = None):
        """users: None allows anonymous clients; a dict allows only these (user -> password).
        tls: (certfile, keyfile) makes the listener speak TLS only."""
        binary = mosquitto_binary()
        if binary is None:
            pytest.fail("Mosquitto is required by the MQTT tests (Debian package `mosquitto`; .ci/run installs it)")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or _free_port()
        self.users = users
        self.tls = tls
        self._dir = Path(tempfile.mkdtemp(prefix="mosquitto-"))
        self._proc: subprocess.Popen | None = None

    @property
    def log(self) -> str:
        path = self._dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _write_config(self) -> Path:
        lines = [f"listener {self.port} {self.host}", "persistence false",
                 f"log_dest file {self._dir / 'mosquitto.log'}", "log_type error", "log_type warning",
                 "log_type notice", "max_queued_messages 100000"]
        if os.geteuid() == 0:
            # As root Mosquitto switches to the user `mosquitto`, who cannot read the test's temporary files.
            lines.append("user root")
        if self.users is None:
            lines.append("allow_anonymous true")
        else:
            passwords = self._dir / "passwords"
            passwords.write_text("".join(password_line(u, p) + "\n" for u, p in self.users.items()))
            passwords.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        if self.tls:
            cert, key = self.tls
            lines += [f"certfile {cert}", f"keyfile {key}"]
        config = self._dir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        config = self._write_config()
        self._proc = subprocess.Popen([self.binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}: {err}{self.log}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept on {self.host}:{self.port} within {timeout} s: {self.log}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
