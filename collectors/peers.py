"""What answers on a port: the first bytes of a peer, to tell a wrong port from a broken PLC.

A driver whose first exchange fails only knows that its library could not make sense of the answer (S7: "Invalid
TPKT version", Modbus: "connection lost", OPC-UA: "connection lost"). That reads as a broken or refusing PLC, when
the usual cause is a port that belongs to something else: a web server, an SSH daemon, another PLC protocol. So
when a link fails in a way that may mean that, we connect once more, send the protocol's own harmless opening
request (ListIdentity, a COTP connection request, OPC-UA Hello, a read of one holding register) and look at what
comes back: our protocol (the original error stands), another one we can name, bytes we cannot name, or a peer
that closes without a word. The verdict turns the error into protocol_error with a message naming the port and what
it answered ("port 8078 answered HTTP, not EtherNet/IP").
"""
from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from collectors.base import CANNOT_CONNECT, PROTOCOL_ERROR, TIMEOUT, DiagnosticStep, DriverError, TestResult

PROTOCOL_NAMES = {"ETHERNET_IP": "EtherNet/IP", "S7": "S7 (ISO-on-TCP)", "OPCUA": "OPC-UA", "MODBUS": "Modbus TCP"}
STANDARD_PORTS = {"ETHERNET_IP": 44818, "S7": 102, "OPCUA": 4840, "MODBUS": 502}
SNIFF_MAX_S = 2.0  # what the look may cost, whatever the connection's timeout
TIMEOUT_LOOK_S = 0.5  # after a timeout: enough for a peer that closes or answers at once


def _opcua_hello(host: str, port: int) -> bytes:
    url = f"opc.tcp://{host}:{port}".encode()
    body = struct.pack("<IIIII", 0, 65536, 65536, 0, 0) + struct.pack("<i", len(url)) + url
    return b"HELF" + struct.pack("<I", 8 + len(body)) + body


PROBES = {
    # encapsulation ListIdentity: 24-byte header, no session, no data
    "ETHERNET_IP": lambda h, p: struct.pack("<HHII8sI", 0x0063, 0, 0, 0, b"oee-sniff", 0),
    # TPKT + COTP connection request to TSAP 0x0102 (rack 0, slot 2): the first thing an S7 client sends
    "S7": lambda h, p: bytes.fromhex("0300001611e00000000100c0010ac1020100c2020102"),
    "OPCUA": _opcua_hello,
    # MBAP transaction 0x5A5A, unit 1, read one holding register at 0
    "MODBUS": lambda h, p: bytes.fromhex("5a5a00000006010300000001"),
}


def speaks(protocol: str, data: bytes) -> bool:
    """Do these first bytes of a reply belong to the protocol?"""
    if protocol == "ETHERNET_IP":
        return len(data) >= 2 and struct.unpack_from("<H", data)[0] in ENIP_COMMANDS
    if protocol == "S7":
        return data[:2] == b"\x03\x00"
    if protocol == "OPCUA":
        return data[:3] in (b"ACK", b"ERR")
    if protocol == "MODBUS":
        return len(data) >= 4 and data[2:4] == b"\x00\x00"
    return False


ENIP_COMMANDS = {0x0000, 0x0004, 0x0063, 0x0064, 0x0065, 0x0066, 0x006F, 0x0070}  # NOP .. SendUnitData


def name_of(data: bytes) -> str | None:
    """The protocol a reply's first bytes show, when we can tell."""
    if data.startswith(b"HTTP/"):
        return "HTTP"
    if data.startswith(b"SSH-"):
        return "SSH"
    if data[:1] in (b"\x15", b"\x16") and data[1:2] == b"\x03":
        return "TLS"
    if data.startswith(b"RFB "):
        return "VNC"
    if data[:4] in (b"220 ", b"220-"):
        return "FTP or SMTP"
    if data.startswith(b"+OK") or data.startswith(b"-ERR"):
        return "POP3 or Redis"
    if data[:1] == b"\x03" and data[1:2] == b"\x00":
        return PROTOCOL_NAMES["S7"]
    if data[:3] in (b"ACK", b"ERR"):
        return PROTOCOL_NAMES["OPCUA"]
    if len(data) >= 2 and struct.unpack_from("<H", data)[0] in ENIP_COMMANDS - {0}:
        return PROTOCOL_NAMES["ETHERNET_IP"]
    if len(data) >= 8 and data[2:4] == b"\x00\x00":
        return PROTOCOL_NAMES["MODBUS"]
    return None


@dataclass(frozen=True)
class Verdict:
    """What the port did with our opening request."""

    closed: bool = False  # accepted the connection and closed it (or reset it) without a byte
    answered: str | None = None  # the protocol its reply shows, when it is not ours
    first_bytes: bytes = b""  # of a reply we cannot name


def describe(protocol: str, host: str, port: int, data: bytes, closed: bool) -> DriverError | None:
    """The error for a peer that answered data (or closed, when closed is true); None when it speaks protocol."""
    ours = PROTOCOL_NAMES.get(protocol, protocol)
    usual = STANDARD_PORTS.get(protocol)
    check = (f"Check the port: {ours} is usually on port {usual}" if usual else "Check the port")
    if closed and not data:
        return DriverError(PROTOCOL_ERROR, f"port {port} at {host} accepted the connection and closed it without "
                                           f"answering: not {ours}, or it takes no more connections",
                           f"{check}; if it is the device's {ours} port, it may allow only a few clients at a "
                           "time: close the other ones (a programming tool, another collector).")
    if not data or speaks(protocol, data):
        return None
    other = name_of(data)
    if other:
        return DriverError(PROTOCOL_ERROR, f"port {port} at {host} answered {other}, not {ours}",
                           f"{check}; {port} belongs to another service.")
    shown = data[:8].hex(" ")
    return DriverError(PROTOCOL_ERROR, f"port {port} at {host} does not speak {ours} (it answered {shown} ...)",
                       f"{check}; {port} belongs to another service.")


def sniff(protocol: str, host: str, port: int, timeout_s: float) -> DriverError | None:
    """Send the protocol's opening request and judge the answer. None: it speaks the protocol, says nothing, or
    cannot be reached (the driver's own error says that better)."""
    probe = PROBES.get(protocol)
    if probe is None:
        return None
    budget = min(max(timeout_s, 0.2), SNIFF_MAX_S)
    deadline = time.monotonic() + budget
    try:
        sock = socket.create_connection((host, port), timeout=budget)
    except OSError:
        return None
    data = b""
    closed = False
    try:
        sock.sendall(probe(host, port))
        while len(data) < 8:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            chunk = sock.recv(64)
            if not chunk:
                closed = True
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        closed = True
    except OSError:  # a timeout: it says nothing (that is the driver's timeout error to tell)
        pass
    finally:
        sock.close()
    return describe(protocol, host, port, data, closed)


def explain(exc: DriverError, protocol: str, host: str, port: int, timeout_s: float) -> DriverError:
    """exc, or a clearer protocol_error when the port turns out to belong to something else."""
    if exc.kind not in (CANNOT_CONNECT, PROTOCOL_ERROR, TIMEOUT) or exc.diagnosed:
        return exc
    if exc.kind == TIMEOUT:
        # Some libraries wait out their timeout on a peer that closed at once (asyncua); a web server answers at
        # once too. A short look tells those apart from a device that is just slow, at little cost.
        timeout_s = min(timeout_s, TIMEOUT_LOOK_S)
    found = sniff(protocol, host, port, timeout_s)
    if found is None:
        return exc
    found.diagnosed = True
    return found


def explain_result(result: TestResult, protocol: str, host: str, port: int, timeout_s: float) -> TestResult:
    """A connection test whose first exchange failed, with the failed step made clearer as explain() does."""
    failed = next((i for i, st in enumerate(result.steps) if not st.ok), None)
    if failed is None or result.steps[failed].name == "tcp":
        return result
    step = result.steps[failed]
    exc = DriverError(step.error or PROTOCOL_ERROR, step.detail, step.suggestion)
    found = explain(exc, protocol, host, port, timeout_s)
    if found is exc:
        return result
    result.steps[failed] = DiagnosticStep(step.name, False, step.duration_ms, found.message, found.kind,
                                          found.suggestion)
    return result
