"""pycomm3's socket with the guards its receive() lacks: a peer that closes raises instead of spinning, one deadline
bounds a whole reply, and a reply must be EtherNet/IP (else the bytes say what answered). Used by the Logix driver
(collectors/drivers/logix.py) for every connection it opens."""
from __future__ import annotations

import socket
import struct
import time

from pycomm3 import LogixDriver
from pycomm3.const import HEADER_SIZE
from pycomm3.socket_ import Socket as _Pycomm3Socket

from collectors.peers import ENIP_COMMANDS


def exception_chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def chain_text(exc: BaseException) -> str:
    return " <- ".join(str(e) for e in exception_chain(exc) if str(e))


def timed_out(exc: BaseException) -> bool:
    return any(isinstance(e, (socket.timeout, TimeoutError)) for e in exception_chain(exc))


class PeerClosed(ConnectionError):
    """The peer closed the connection (recv returned b'') in the middle of a reply, or before one."""

    def __init__(self, received: bytes):
        super().__init__("the peer closed the connection" + (f" after {len(received)} bytes" if received else ""))
        self.received = received


class ForeignReply(ConnectionError):
    """A reply whose encapsulation header names no EtherNet/IP command: another protocol answers on the port."""

    def __init__(self, received: bytes):
        super().__init__(f"not an EtherNet/IP reply: {received[:8].hex(' ')} ...")
        self.received = received


class GuardedSocket(_Pycomm3Socket):
    """pycomm3's socket, with the three guards its receive() lacks (pycomm3 1.2.16 socket_.py):
    - it loops on recv() until the length its header announces has arrived; a peer that closes makes recv()
      return b'' at once, for ever: a thread spinning at 100 % CPU (an HTTP server's "HTTP/1.1 400" reads as a
      header announcing 20,564 bytes). Here b'' raises;
    - the socket timeout bounds each recv(), not the reply: a peer that trickles a byte at a time holds it for
      ever. Here one deadline bounds the whole reply;
    - it takes any 24 bytes for a header. Here a header must name an EtherNet/IP command, else the bytes say what
      answered instead.
    close() may come from another thread (the collector's watchdog): it shuts the socket down, so a recv() blocked
    in the collector's thread returns at once."""

    def __init__(self, timeout: float):
        super().__init__(timeout)
        self.timeout_s = timeout

    def receive(self, timeout=0):
        deadline = time.monotonic() + (timeout or self.timeout_s)
        try:
            header = self._exactly(HEADER_SIZE, deadline, b"")
            if struct.unpack_from("<H", header)[0] not in ENIP_COMMANDS:
                raise ForeignReply(header)
            length = struct.unpack_from("<H", header, 2)[0]
            return header + self._exactly(length, deadline, header)
        finally:
            if self.sock.fileno() >= 0:
                self.sock.settimeout(self.timeout_s)  # send() uses it: not what was left of this deadline

    def _exactly(self, n: int, deadline: float, before: bytes) -> bytes:
        data = b""
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"no complete reply within {self.timeout_s:g} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(n - len(data))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                got = before + data
                if got and struct.unpack_from("<H", got + b"\0")[0] not in ENIP_COMMANDS:
                    raise ForeignReply(got)
                raise PeerClosed(got)
            data += chunk
        return data

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def guarded(plc: LogixDriver, timeout_s: float) -> LogixDriver:
    """plc with a guarded socket (CIPDriver.open() keeps a socket it finds and only creates one when there is none)."""
    plc._sock = GuardedSocket(timeout_s)
    return plc
