"""Each simulated PLC binds its port itself and keeps it: no port is picked first and bound later.

Regression for "[harden] No request, PLC or database can take the app down" (item B): one start of 100 simulated
machines exited with code 2, "address already in use; taken while the plant was starting": the plant picked a free
port (bind to 0, read the number, close) or checked that a base port was free, and bound it later; in between,
anything on the machine could take it. Here a thief takes, at once, every port this process frees: a plant that
frees a port it means to use loses it every time.
"""
from __future__ import annotations

import socket
import threading

import pytest

from collectors import service
from plant import Plant

from .conftest import small_layout


class PortThief:
    """While active: whenever a TCP socket bound on 127.0.0.1 and not connected is closed in this process, bind
    and listen on its port at once (as another program could, between the close and a later bind)."""

    def __init__(self):
        self.stolen: list[int] = []
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._real_close = socket.socket.close
        self._mine = threading.local()

    def __enter__(self) -> "PortThief":
        thief = self

        def close(sock):
            port = thief._freed_port(sock)
            thief._real_close(sock)
            if port:
                thief._take(port)

        socket.socket.close = close
        return self

    def __exit__(self, *exc) -> None:
        socket.socket.close = self._real_close
        for s in self._held:
            self._real_close(s)

    def _freed_port(self, sock) -> int | None:
        if getattr(self._mine, "busy", False) or sock.fileno() < 0:
            return None
        try:
            if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM:
                return None
            host, port = sock.getsockname()
            try:
                sock.getpeername()
                return None  # a connected socket: its port was never meant to be listened on
            except OSError:
                pass
        except OSError:
            return None
        return port if host == "127.0.0.1" and port else None

    def _take(self, port: int) -> None:
        self._mine.busy = True
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
                s.listen(1)
            except OSError:
                self._real_close(s)
                return
            with self._lock:
                self._held.append(s)
                self.stolen.append(port)
        finally:
            self._mine.busy = False


def free_base(n: int) -> int:
    """The first of n neighbouring ports that are free now (the thief is not active yet)."""
    for _ in range(20):
        probe = socket.create_server(("127.0.0.1", 0))
        base = probe.getsockname()[1]
        probe.close()
        trial = []
        try:
            for p in range(base, base + n):
                trial.append(socket.create_server(("127.0.0.1", p)))
            return base
        except OSError:
            continue
        finally:
            for s in trial:
                s.close()
    pytest.skip("no run of free neighbouring ports found")


@pytest.mark.parametrize("ports", ["free", "base_port"])
def test_every_server_keeps_the_port_it_bound_while_freed_ports_are_taken(ports):
    layout = small_layout("OPCUA", "S7", "MODBUS", "ETHERNET_IP")
    base = free_base(len(layout.machines)) if ports == "base_port" else 0
    with PortThief() as thief:
        plant = Plant(layout, seed=1, run_clock=False, base_port=base).start()
    try:
        endpoints = plant.endpoints()
        assert len({e["port"] for e in endpoints}) == 4 and not set(thief.stolen) & {e["port"] for e in endpoints}
        if base:
            assert sorted(e["port"] for e in endpoints) == list(range(base, base + 4))
        for ep in endpoints:
            result = service.test_connection(ep["protocol"], "127.0.0.1", ep["port"], ep["protocol_config"],
                                             timeout_s=2.0)
            assert result["ok"], (ep["machine_id"], result)
        opcua = next(e for e in endpoints if e["protocol"] == "OPCUA")
        assert f":{opcua['port']}/" in opcua["protocol_config"]["endpoint"]
    finally:
        plant.stop()


def test_a_port_taken_by_another_process_moves_with_fallback_and_is_refused_without():
    layout = small_layout("S7", "MODBUS")
    base = free_base(3)
    held = socket.create_server(("127.0.0.1", base + 1))  # where the second machine wants to be
    try:
        with pytest.raises(OSError, match=f"machine M-MB \\(MODBUS\\): port {base + 1}"):
            Plant(layout, run_clock=False, base_port=base).start()
        with Plant(layout, run_clock=False, base_port=base, port_fallback=True) as plant:
            ports = {e["machine_id"]: e["port"] for e in plant.endpoints()}
        assert ports == {"M-S7": base, "M-MB": base + 2}
    finally:
        held.close()
