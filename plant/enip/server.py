"""The TCP server: one asyncio loop in one daemon thread per simulated controller."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any, Callable, Dict, Mapping, Optional, Set, Tuple

from .cip import CipProcessor, Identity
from .encap import HEADER_SIZE, EncapSession
from .tags import LogixTag, TagDatabase

log = logging.getLogger(__name__)

BODY_TIMEOUT = 30.0  # seconds a client may take to send the rest of a started packet
START_TIMEOUT = 10.0

OnWrite = Callable[[str, Any], None]


class LogixServer:
    """A simulated ControlLogix controller serving ``tags`` over EtherNet/IP.

    See the package docstring (``plant.enip``) for what it supports.

    :param tags: ``{name: LogixTag}``; ``"Program:<prog>.<tag>"`` names are program scope.
    :param host: address to listen on; loopback by default.
    :param port: TCP port; 0 picks a free one (read :attr:`port` after :meth:`start`).
    :param product_name: catalog number served by the Identity object.
    :param revision: firmware (major, minor); from 21 on pycomm3 addresses tags by instance id.
    :param serial: serial number (pycomm3 shows it as 8 hex digits).
    :param slot: backplane slot of the controller; a client's route must name it.
    :param on_write: ``on_write(name, value)`` runs in the server thread after a client
        wrote to a tag and before the client gets its reply; ``name`` is the tag's key in
        ``tags`` (the whole tag, also when one element or member was written) and
        ``value`` its new value as :meth:`get_value` returns it. Keep it short: it runs
        on the server's loop. An exception in it is logged, the write still succeeds.
    :param controller_name: the controller (project) name served by class 0x64.
    :param product_code: Identity product code.
    """

    def __init__(
        self,
        tags: Mapping[str, LogixTag],
        host: str = "127.0.0.1",
        port: int = 44818,
        product_name: str = "1756-L83E/B",
        revision: Tuple[int, int] = (33, 11),
        serial: int = 0x00C0FFEE,
        slot: int = 0,
        on_write: Optional[OnWrite] = None,
        *,
        controller_name: str = "SimLogix",
        product_code: int = 166,
    ):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port {port!r} must be an int from 0 to 65535")
        if not isinstance(slot, int) or not 0 <= slot <= 255:
            raise ValueError(f"slot {slot!r} must be an int from 0 to 255")
        if (not isinstance(revision, (tuple, list)) or len(revision) != 2
                or not all(isinstance(x, int) and 0 <= x <= 255 for x in revision)):
            raise ValueError(f"revision {revision!r} must be a (major, minor) pair of ints 0..255")
        revision = (revision[0], revision[1])
        if not isinstance(serial, int) or not 0 <= serial <= 0xFFFF_FFFF:
            raise ValueError(f"serial {serial!r} must be a 32-bit unsigned int")
        if on_write is not None and not callable(on_write):
            raise TypeError("on_write must be callable")
        self.host = host
        self._requested_port = port
        self._port: Optional[int] = None
        self.slot = slot
        self.on_write = on_write
        self._db = TagDatabase(tags)
        self._identity = Identity(product_name=product_name, revision=revision, serial=serial,
                                  product_code=product_code, controller_name=controller_name)
        self._processor = CipProcessor(self._db, self._identity, slot)
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop_event: Optional[asyncio.Event] = None
        self._clients: Set["_ClientProtocol"] = set()
        self._lifecycle = threading.Lock()
        self._sessions_total = 0
        self._packets = 0

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound TCP port (the real one when constructed with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "LogixServer":
        """Bind, listen and serve from a daemon thread. Returns once listening.

        Raises ``OSError`` naming the address when the port cannot be bound.
        """
        with self._lifecycle:
            if self.running:
                return self
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, self._requested_port))
                sock.listen(128)
            except OSError as err:
                sock.close()
                raise OSError(err.errno, f"EtherNet/IP simulator cannot listen on {self.host} "
                                         f"port {self._requested_port}: {err.strerror}") from err
            sock.setblocking(False)
            self._port = sock.getsockname()[1]
            ready = threading.Event()
            failure: Dict[str, BaseException] = {}
            self._thread = threading.Thread(target=self._run, args=(sock, ready, failure),
                                            name=f"enip-{self._port}", daemon=True)
            self._thread.start()
            if not ready.wait(START_TIMEOUT) or failure:
                raise RuntimeError(f"EtherNet/IP simulator on port {self._port} did not start") \
                    from failure.get("error")
            log.info("simulated %s listening on %s:%d (%d tags)", self._identity.product_name,
                     self.host, self._port, len(self._db.symbols))
            return self

    def stop(self) -> None:
        """Close the listener and every client connection. Safe to call more than once."""
        with self._lifecycle:
            thread, loop, stop_event = self._thread, self._loop, self._stop_event
            if thread is None:
                return
            if loop is not None and stop_event is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(stop_event.set)
                except RuntimeError:  # loop already closed
                    pass
            if thread is not threading.current_thread():
                thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "LogixServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- values ---------------------------------------------------------------------------
    def get_value(self, name: str) -> Any:
        """The current value of a tag (``"Tag"``, ``"Program:P.Tag"``) or of a part of
        one (``"Arr[3]"``, ``"Udt[1].Member"``, ``"BoolArr[40]"``). Thread-safe."""
        return self._db.api_get(name)

    def set_value(self, name: str, value: Any) -> None:
        """Set a tag or a part of one; raises KeyError, TypeError or ValueError."""
        self._db.api_set_many({name: value})

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Set several tags at once: a client read sees all of them changed or none.
        Nothing is changed if any value is invalid."""
        self._db.api_set_many(values)

    def edit_tag(self, name: str, tag: Optional[LogixTag]) -> None:
        """Change an existing tag while clients stay connected, as an online edit in the controller does: None
        deletes it (requests for it fail with a CIP path error from then on), a LogixTag gives it another type or
        value. Raises KeyError for a name the controller does not hold."""
        self._db.edit(name, tag)

    @property
    def tag_names(self) -> Tuple[str, ...]:
        return tuple(self._db.symbols)

    def stats(self) -> Dict[str, Any]:
        """Counters for tests and the health page: clients now, sessions and packets served,
        CIP requests by service code (embedded requests of a Multiple Service Packet included)."""
        return {
            "clients": len(self._clients),
            "sessions_total": self._sessions_total,
            "packets": self._packets,
            "services": self._service_counts(),
        }

    def _service_counts(self) -> Dict[int, int]:
        with self._db.lock:
            return dict(self._processor.service_counts)

    # -- the loop -----------------------------------------------------------------------
    def _run(self, sock: socket.socket, ready: threading.Event, failure: Dict[str, BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(sock, ready))
        except BaseException as err:  # noqa: BLE001 - reported to start()
            failure["error"] = err
            log.exception("EtherNet/IP simulator on port %s failed", self._port)
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                sock.close()

    async def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        self._stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _ClientProtocol(self), sock=sock)
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.close()
            for client in list(self._clients):
                client.abort()
            await server.wait_closed()
            await asyncio.sleep(0)  # let connection_lost callbacks run
            log.info("EtherNet/IP simulator on port %s stopped", self._port)

    def _notify(self, names) -> None:
        if self.on_write is None:
            return
        seen = set()
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            try:
                value = self._db.symbol_value(name)
                self.on_write(name, value)
            except Exception:
                log.exception("on_write(%r) raised", name)


class _ClientProtocol(asyncio.Protocol):
    """One TCP client: frames encapsulation packets out of the byte stream.

    A protocol rather than streams: one callback per received chunk and no task or
    future per request, which roughly halves the server's share of a round trip.
    """

    def __init__(self, server: LogixServer):
        self.server = server
        self.buf = bytearray()
        self.transport: Optional[asyncio.Transport] = None
        self.session: Optional[EncapSession] = None
        self.peer = "?"
        self._stall: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        try:
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        local = transport.get_extra_info("sockname") or (self.server.host, self.server._port)
        self.session = EncapSession(self.server._processor, self.peer, (local[0], local[1]))
        self.server._clients.add(self)
        self.server._sessions_total += 1
        log.debug("%s connected", self.peer)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= HEADER_SIZE:
            end = HEADER_SIZE + (buf[2] | buf[3] << 8)
            if len(buf) < end:
                break
            header, body = bytes(buf[:HEADER_SIZE]), bytes(buf[HEADER_SIZE:end])
            del buf[:end]
            if not self._packet(header, body):
                self.abort()
                return
        if buf and self._stall is None:
            self._stall = asyncio.get_running_loop().call_later(BODY_TIMEOUT, self._stalled)
        elif not buf and self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _packet(self, header: bytes, body: bytes) -> bool:
        srv = self.server
        srv._packets += 1
        try:
            outcome = self.session.handle_packet(header, body)
        except Exception:  # never let one client's packet kill the loop
            log.exception("%s: cannot handle packet, closing its connection", self.peer)
            return False
        if outcome.written:  # before the reply: the client sees its write acknowledged
            srv._notify(outcome.written)  # only once the machine model has seen it
        if outcome.reply and not self.transport.is_closing():
            self.transport.write(outcome.reply)
        return not outcome.close

    def _stalled(self) -> None:
        log.debug("%s sent half a packet and stalled; closing", self.peer)
        self._stall = None
        self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # a client that sends without reading: stop reading until it catches up
    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def connection_lost(self, exc) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self.server._clients.discard(self)
        log.debug("%s disconnected", self.peer)
