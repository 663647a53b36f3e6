"""OPC-UA driver (asyncua 2.1, client side).

protocol_config (validate_config fills the defaults; keys it does not know are kept and ignored):
  endpoint              opc.tcp://host:port/path. The connection's host and port are used only when endpoint is
                        absent (then opc.tcp://host:port/); when both are given and disagree, the endpoint wins,
                        because it is what the server was configured with (its path matters to some servers).
  security_policy       "None" (default), "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss";
                        the deprecated "Basic256" and "Basic128Rsa15" are accepted for old servers.
  security_mode         "None", "Sign" or "SignAndEncrypt" (default: None with policy None, else SignAndEncrypt)
  certificate, private_key   file names (PEM or DER) of this client's application instance certificate and key
                        in the certificate folder, <data dir>/certs (no other folder is read: collectors.base),
                        required when security_policy is not None; private_key_password if the key is encrypted.
                        The server must trust the certificate. application_uri defaults to the certificate's URI.
  server_certificate    optional file name there: pin the server certificate instead of taking it from
                        GetEndpoints.
  username, password    user name identity; without them the session is anonymous. The password never appears
                        in logs (asyncua's own DEBUG dump of ActivateSession is redacted), errors, repr() or
                        test_connection output.
  use_subscription      False: every read() sends batched Read requests. True: read() returns the latest value
                        per node kept by a subscription (UNCERTAIN "no update yet" until the first notification).
  publishing_interval_ms  1000; the subscription's publishing interval and the items' sampling interval.
  max_nodes_per_read    500; nodes per Read request (and per CreateMonitoredItems request).

Addresses are NodeIds: 'ns=2;s=LINE-011.ProductionCount', 'ns=2;i=1001', 'ns=2;g=<guid>', 'ns=2;b=<base64>',
'i=2258' (namespace 0), and 'nsu=urn:oee:plant;s=LINE-011.ProductionCount' where the namespace URI is resolved to
its index at each connect (a server may renumber its namespaces across restarts; the URI form survives that).

Data types are OPC-UA built-in type names: Boolean, SByte, Byte, Int16, UInt16, Int32, UInt32, Int64, UInt64,
Float, Double, String, DateTime (read as seconds since the epoch, UTC), and Variant (whatever scalar the server
sends). Common PLC names are accepted as aliases (BOOL, INT, DINT, REAL, LREAL, FLOAT32, ...). '<Type>[n]' reads
an array of n elements (the reading's value is a list). A value that does not fit the tag's type (a String where a
number is expected, 70000 for an Int16, a fractional Double for an Int32) is a BAD reading, never an exception.

Status codes: Good -> GOOD; Uncertain* -> UNCERTAIN with the status name; Bad* -> BAD with the status name, of kind
invalid_address for BadNodeIdUnknown, BadNodeIdInvalid, BadAttributeIdInvalid, BadNotReadable,
BadUserAccessDenied, BadIndexRange*, device_error otherwise. A broken session, channel or socket raises
DriverError.

Threading. The collector calls drivers synchronously from worker threads. This driver runs asyncua natively in
an event loop of its own, in one thread started by connect() and stopped by close(); each public call hands one
coroutine to that loop and waits for it (asyncio.run_coroutine_threadsafe). Chosen over asyncua.sync because
  - a read cycle of several Read chunks is one hop into the loop, not one per call: PROTOCOLS.md measured
    read_values of 100 nodes at 2.5-3.0 ms async against 4.9 ms through the sync wrapper;
  - subscriptions need a loop that keeps running between calls (the publish loop, the handler that stores the
    latest values), which a loop of our own gives without the wrapper's extra thread and indirections;
  - the whole connection (supervisor, keep-alive, renewals) is torn down by stopping one loop at close(), so a
    dead server can never leave tasks behind in a shared loop.
One thread per connection is cheap next to the network round trips; the driver is not thread-safe (one job owns
one driver), as base.Driver says.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState

from collectors.base import (
    AUTH_FAILED,
    BAD,
    CANNOT_CONNECT,
    DEVICE_ERROR,
    GOOD,
    INVALID_ADDRESS,
    PROTOCOL_DEFAULT_PORTS,
    PROTOCOL_ERROR,
    TIMEOUT,
    UNCERTAIN,
    ConfigError,
    DiagnosticStep,
    DiscoveredTag,
    Driver,
    DriverError,
    Reading,
    Step,
    TagSpec,
    TestResult,
    register,
    settings_file,
    tcp_check,
)
from collectors.drivers.opcua_browse import browse_tree
from collectors.drivers.opcua_nodes import (
    AUTH_STATUS,
    EXAMPLES,
    INT_RANGES,
    INVALID_STATUS,
    MODES,
    NO_UPDATE_YET,
    POLICIES,
    SECURITY_STATUS,
    TYPES,
    OpcUaAddress,
    ValueMismatch,
    canon,
    convert_value,
    epoch_seconds,
    parse_node_address,
    policy_name,
    show_value,
    status_reason,
)
from collectors.drivers.opcua_read import KeptRead
from collectors.drivers.opcua_security import negotiate

log = logging.getLogger(__name__)
SEVERITY_MASK = 0xC0000000  # a StatusCode's top two bits: 00 good, 01 uncertain, 10 and 11 bad
FLOAT_DTYPES = ("Float", "Double")

# --- plan --------------------------------------------------------------------------------------------------------


@dataclass
class PlanNode:
    address: OpcUaAddress
    tags: list[tuple[int, str, int | None]]  # (tag_id, data type, array length)

    @property
    def key(self) -> str:
        return self.address.key


@dataclass
class _Resolution:
    generation: int
    node_ids: list[ua.NodeId | None]
    unresolved: dict[int, str]  # node index -> reason
    reads: dict[int, tuple[list[int], KeptRead]] = field(default_factory=dict)  # chunk -> (node indexes, its read)


@dataclass
class _SubState:
    generation: int
    subscription: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    latest: dict[int, ua.DataValue] = field(default_factory=dict)  # node index -> last DataValue
    index_by_node: dict[ua.NodeId, list[int]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)  # node index -> reason (monitored item refused)
    lost: str | None = None


@dataclass
class OpcUaPlan:
    """nodes: one entry per distinct node; chunks: node indexes per Read request (at most max_nodes_per_read)."""

    nodes: list[PlanNode]
    chunks: list[list[int]]
    use_subscription: bool = False
    publishing_interval_ms: float = 1000.0
    _resolution: _Resolution | None = field(default=None, repr=False)
    _sub: _SubState | None = field(default=None, repr=False)


class _Handler:
    """Subscription callbacks, called in the driver's loop thread: keep the latest DataValue per node."""

    def __init__(self, state: _SubState):
        self.state = state

    def datachange_notification(self, node, _val, data) -> None:
        dv = data.monitored_item.Value
        indexes = self.state.index_by_node.get(node.nodeid, ())
        with self.state.lock:
            for i in indexes:
                self.state.latest[i] = dv

    def status_change_notification(self, status) -> None:
        sc = getattr(status, "Status", None)
        if sc is not None and not sc.is_good():
            self.state.lost = sc.name

    def event_notification(self, _event) -> None:  # not used
        pass


# --- the event loop thread ---------------------------------------------------------------------------------------


class _LoopThread:
    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()

    def run(self, coro, timeout: float):
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("OPC-UA driver called from its own event loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise asyncio.TimeoutError() from None

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if not self.alive:
            return
        try:
            self.run(cancel_all(), 2.0)
        except Exception:
            log.debug("cancelling OPC-UA tasks failed", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(2.0)
        if not self.thread.is_alive():
            self.loop.close()


# --- the driver --------------------------------------------------------------------------------------------------


@register
class OpcUaDriver(Driver):
    protocol = "OPCUA"
    data_types = TYPES

    SECRETS = ("password", "private_key_password")

    def __init__(self, settings):
        super().__init__(settings)
        self.config = self.validate_config(settings.config)
        self.url = self.config["endpoint"] or f"opc.tcp://{settings.host}:{settings.port}/"
        parsed = urlparse(self.url)
        self.host = parsed.hostname or settings.host
        self.port = parsed.port or PROTOCOL_DEFAULT_PORTS["OPCUA"]
        if self.config["endpoint"] and (self.host, self.port) != (settings.host, settings.port):
            log.info("OPC-UA connection %s:%s: the endpoint %s wins over the connection's host and port",
                     settings.host, settings.port, self.url)
        self._loop: _LoopThread | None = None
        self._client: Client | None = None
        self._namespaces: list[str] = []
        self._generation = 0

    def __repr__(self) -> str:
        user = self.config.get("username")
        return (f"<OpcUaDriver {self.url} policy={self.config['security_policy']} "
                f"mode={self.config['security_mode']} user={user or 'anonymous'} "
                f"{'connected' if self._client is not None else 'closed'}>")

    # --- configuration ---

    @classmethod
    def validate_config(cls, config: dict) -> dict:
        out = {"endpoint": None, "security_policy": "None", "security_mode": None, "username": None,
               "password": None, "certificate": None, "private_key": None, "private_key_password": None,
               "server_certificate": None, "application_uri": None, "use_subscription": False,
               "publishing_interval_ms": 1000.0, "max_nodes_per_read": 500}
        out.update({k: v for k, v in (config or {}).items() if v is not None})
        endpoint = out["endpoint"]
        if endpoint is not None:
            if not isinstance(endpoint, str) or not endpoint.strip():
                raise ConfigError("endpoint", "must be an opc.tcp:// URL such as opc.tcp://10.0.0.5:4840/")
            endpoint = endpoint.strip()
            p = urlparse(endpoint)
            if p.scheme.lower() != "opc.tcp" or not p.hostname:
                raise ConfigError("endpoint", f"must look like opc.tcp://host:4840/path, not {p.scheme or '?'}://...")
            if "@" in p.netloc:
                raise ConfigError("endpoint", "must not carry a user name or password; use the username and "
                                              "password settings")
            try:
                _ = p.port  # raises ValueError when the port is not a number
            except ValueError:
                raise ConfigError("endpoint", "the port after the host must be a number from 1 to 65535") from None
            out["endpoint"] = endpoint
        policy = str(out["security_policy"]).strip()
        by_canon = {canon(k): k for k in POLICIES}
        name = by_canon.get(canon(policy_name(policy)))
        if name is None:
            raise ConfigError("security_policy", f"{policy!r} is not a security policy; use one of "
                                                 f"{', '.join(POLICIES)}")
        out["security_policy"] = name
        mode = out["security_mode"]
        if mode is None:
            mode = "None" if name == "None" else "SignAndEncrypt"
        mode_name = {canon(k): k for k in MODES}.get(canon(str(mode)))
        if mode_name is None:
            raise ConfigError("security_mode", f"{mode!r}: use None, Sign or SignAndEncrypt")
        if (name == "None") != (mode_name == "None"):
            raise ConfigError("security_mode", f"policy {name} goes with mode "
                                               f"{'None' if name == 'None' else 'Sign or SignAndEncrypt'}, "
                                               f"not {mode_name}")
        out["security_mode"] = mode_name
        if name != "None":
            for key in ("certificate", "private_key"):
                if not out[key] or not isinstance(out[key], str):
                    raise ConfigError(key, f"security policy {name} needs this client's {key.replace('_', ' ')} "
                                           "(a PEM or DER file the server trusts)")
        for key in ("username", "password", "private_key_password", "application_uri", "server_certificate"):
            if out[key] is not None and not isinstance(out[key], str):
                raise ConfigError(key, "must be text")
        for key in ("certificate", "private_key", "server_certificate"):
            if out[key] is not None:
                settings_file(key, out[key])  # only files of the certificate folder (collectors.base)
        if out["password"] and not out["username"]:
            raise ConfigError("username", "a password needs a user name")
        if out["username"] is not None and not out["username"].strip():
            out["username"] = None
        sub = out["use_subscription"]
        if isinstance(sub, str) and sub.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            sub = sub.strip().lower() in ("true", "1", "yes")
        if not isinstance(sub, bool):
            raise ConfigError("use_subscription", f"must be true or false, not {out['use_subscription']!r}")
        out["use_subscription"] = sub
        try:
            interval = float(out["publishing_interval_ms"])
        except (TypeError, ValueError):
            interval = -1.0
        if not 10 <= interval <= 3_600_000:
            raise ConfigError("publishing_interval_ms", "must be a number of milliseconds from 10 to 3600000")
        out["publishing_interval_ms"] = interval
        chunk = out["max_nodes_per_read"]
        if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= 10000:
            raise ConfigError("max_nodes_per_read", "must be a whole number from 1 to 10000")
        return out

    @classmethod
    def parse_address(cls, address: str, data_type: str) -> OpcUaAddress:
        return parse_node_address(address, data_type)

    def plan(self, tags: list[TagSpec]) -> OpcUaPlan:
        nodes: dict[str, PlanNode] = {}
        for i, tag in enumerate(tags):
            try:
                addr = parse_node_address(tag.address, tag.data_type)
            except ConfigError as exc:
                raise ConfigError(f"tags[{i}].{exc.field}", f"tag {tag.name or tag.tag_id}: {exc.message}") from None
            node = nodes.setdefault(addr.key, PlanNode(addr, []))
            node.tags.append((tag.tag_id, addr.data_type, addr.array_length))
        ordered = list(nodes.values())
        size = self.config["max_nodes_per_read"]
        chunks = [list(range(k, min(k + size, len(ordered)))) for k in range(0, len(ordered), size)]
        return OpcUaPlan(ordered, chunks, self.config["use_subscription"], self.config["publishing_interval_ms"])

    # --- secrets ---

    def _clean(self, text: str) -> str:
        """Defence in depth: no message is built with a secret, but a library's text might echo one. Secrets of
        fewer than 4 characters are left alone (replacing them would garble every message)."""
        for key in self.SECRETS:
            secret = self.config.get(key)
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _error(self, kind: str, message: str, suggestion: str = "") -> DriverError:
        return DriverError(kind, self._clean(message), self._clean(suggestion))

    # --- the loop ---

    def _ensure_loop(self) -> _LoopThread:
        if self._loop is None or not self._loop.alive:
            self._loop = _LoopThread(f"opcua {self.host}:{self.port}")
        return self._loop

    def _run(self, coro, timeout: float, what: str):
        """Run a coroutine in the loop; map every failure to DriverError."""
        loop = self._ensure_loop()
        try:
            return loop.run(coro, timeout)
        except DriverError as exc:
            raise self._error(exc.kind, exc.message, exc.suggestion) from None
        except Exception as exc:
            raise self._map(exc, what) from None

    def _map(self, exc: BaseException, what: str) -> DriverError:
        t = self.settings.timeout_s
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return self._error(TIMEOUT, f"{what}: no answer from {self.url} within the time allowed ({t:g} s per "
                                        "request)",
                               "Check the network route and that the server is not overloaded.")
        if isinstance(exc, ConnectionRefusedError):
            return self._error(CANNOT_CONNECT, f"{what}: {self.host}:{self.port} refused the connection",
                               f"Nothing listens on port {self.port} at {self.host}: check the endpoint and that the "
                               "OPC-UA server is running.")
        if isinstance(exc, ConnectionError):
            return self._error(CANNOT_CONNECT, f"{what}: the connection to {self.url} was lost ({exc})",
                               "The collector reconnects; check the server if this repeats.")
        if isinstance(exc, OSError):
            return self._error(CANNOT_CONNECT, f"{what}: {self.host}:{self.port}: {exc.strerror or exc}",
                               "Check the host name or IP address of the endpoint and the network route.")
        if isinstance(exc, ua.UaStatusCodeError):
            name = ua.StatusCode(exc.code).name
            if name in AUTH_STATUS:
                if self.config["username"]:
                    return self._error(AUTH_FAILED, f"{what}: the server refused the user name or password ({name})",
                                       f"Check the user name {self.config['username']!r} and its password, and that "
                                       "the user may log in on this server.")
                return self._error(AUTH_FAILED, f"{what}: the server refused an anonymous session ({name})",
                                   "Set username and password: this server does not accept anonymous clients.")
            if name in SECURITY_STATUS:
                return self._error(AUTH_FAILED, f"{what}: the server rejected the security settings ({name})",
                                   "The server must trust this client's certificate: accept it on the server (its "
                                   "rejected-certificates list) and check the certificate's application URI and "
                                   "validity dates.")
            if name in ("BadTooManyOperations", "BadEncodingLimitsExceeded", "BadResponseTooLarge",
                        "BadRequestTooLarge"):
                return self._error(PROTOCOL_ERROR, f"{what}: the server refused the request size ({name})",
                                   "Lower max_nodes_per_read.")
            return self._error(PROTOCOL_ERROR, f"{what}: the server answered {name}",
                               "The collector reconnects; check the server's diagnostics if this repeats.")
        if isinstance(exc, ua.UaError):
            return self._error(PROTOCOL_ERROR, f"{what}: {exc}")
        return self._error(PROTOCOL_ERROR, f"{what}: {exc.__class__.__name__}: {exc}")

    # --- connecting ---

    def _new_client(self) -> Client:
        watchdog = 5.0
        client = Client(self.url, timeout=self.settings.timeout_s, watchdog_intervall=watchdog)
        client.session_timeout = 600_000  # ms; what most servers grant, so no "revised" warning each connect
        client.name = client.description = "OEE collector"
        if self.config["application_uri"]:
            client.application_uri = self.config["application_uri"]
        return client

    async def _open(self) -> Client:
        client = self._new_client()
        await negotiate(client, self.config)
        if self.config["username"]:
            client.set_user(self.config["username"])
            client.set_password(self.config["password"] or "")
        await client.connect()
        return client

    async def _connect_async(self) -> None:
        client = await self._open()
        try:
            self._namespaces = list(await client.get_namespace_array())
        except Exception:
            await self._teardown(client)
            raise
        self._client = client

    def connect(self) -> None:
        self.close()
        budget = self.settings.timeout_s * 6 + 2
        try:
            self._run(self._connect_async(), budget, "connect")
        except DriverError:
            self.close()
            raise
        self._generation += 1

    @staticmethod
    async def _teardown(client: Client) -> None:
        try:
            if client.uaclient.state is UaClientState.CONNECTED:
                await asyncio.wait_for(client.disconnect(), 2.0)
            else:
                client.disconnect_socket()
        except Exception:
            try:
                client.disconnect_socket()
            except Exception:
                pass

    def close(self) -> None:
        client, self._client = self._client, None
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            if client is not None and loop.alive:
                loop.run(self._teardown(client), 3.0)
        except Exception:
            log.debug("OPC-UA disconnect failed", exc_info=True)
        try:
            loop.stop()
        except Exception:
            log.debug("stopping the OPC-UA loop failed", exc_info=True)

    def _check_link(self) -> Client:
        client = self._client
        if client is None:
            raise DriverError(CANNOT_CONNECT, "not connected", "connect() first")
        if client.uaclient.state is not UaClientState.CONNECTED or not (self._loop and self._loop.alive):
            raise self._error(CANNOT_CONNECT, f"the connection to {self.url} was lost",
                              "The collector reconnects; check the server if this repeats.")
        return client

    # --- reading ---

    def _resolve(self, plan: OpcUaPlan) -> _Resolution:
        res = plan._resolution
        if res is not None and res.generation == self._generation:
            return res
        ids: list[ua.NodeId | None] = []
        unresolved: dict[int, str] = {}
        for i, node in enumerate(plan.nodes):
            try:
                ids.append(node.address.node_id(self._namespaces))
            except KeyError:
                ids.append(None)
                unresolved[i] = (f"{INVALID_ADDRESS}: namespace {node.address.namespace_uri} is not on the server "
                                 f"(it has {len(self._namespaces)} namespaces)")
        res = _Resolution(self._generation, ids, unresolved)
        plan._resolution = res
        return res

    def read(self, plan: OpcUaPlan) -> dict[int, Reading]:
        client = self._check_link()
        if plan.use_subscription:
            return self._read_subscription(client, plan)
        res = self._resolve(plan)
        budget = self.settings.timeout_s * max(1, len(plan.chunks)) + 1
        values = self._run(self._read_chunks(client, plan, res), budget, "read")
        out: dict[int, Reading] = {}
        for i, node in enumerate(plan.nodes):
            if i in res.unresolved:
                self._fill_bad(out, node, res.unresolved[i])
            else:
                self._fill(out, node, values[i])
        return out

    async def _read_chunks(self, client: Client, plan: OpcUaPlan, res: _Resolution) -> dict[int, Any]:
        """Node index -> its DataValue, or (status code or None, number) for a plain number (opcua_read)."""
        async def one(k: int, chunk: list[int]) -> list[tuple[int, Any]]:
            kept = res.reads.get(k)
            if kept is None:
                idx = [i for i in chunk if res.node_ids[i] is not None]
                kept = res.reads[k] = (idx, KeptRead([res.node_ids[i] for i in idx]))
            idx, read = kept
            if not idx:
                return []
            return list(zip(idx, await read.send(client.uaclient), strict=True))

        results = await asyncio.gather(*(one(k, c) for k, c in enumerate(plan.chunks)))
        return {i: dv for part in results for i, dv in part}

    @staticmethod
    def _fill_bad(out: dict[int, Reading], node: PlanNode, reason: str) -> None:
        for tag_id, _dtype, _n in node.tags:
            out[tag_id] = Reading(None, BAD, reason)

    def _fill(self, out: dict[int, Reading], node: PlanNode, dv: ua.DataValue | tuple | None) -> None:
        if dv is None:
            self._fill_bad(out, node, f"{PROTOCOL_ERROR}: no result for {node.key}")
            return
        if dv.__class__ is tuple:  # a plain number read by opcua_read: (status code or None, value)
            code, raw = dv
            sc = None if code is None or not code & SEVERITY_MASK else ua.StatusCode(code)
        else:
            sc = dv.StatusCode
            if sc is not None and not sc.value & SEVERITY_MASK:
                sc = None
            raw = dv.Value.Value if dv.Value is not None else None
        if sc is None:  # good: the common case, without StatusCode's methods
            quality, reason = GOOD, None
        else:
            if sc.is_bad():
                self._fill_bad(out, node, status_reason(sc))
                return
            quality, reason = (UNCERTAIN, sc.name) if sc.is_uncertain() else (GOOD, None)
        kind = raw.__class__
        for tag_id, dtype, n in node.tags:
            # A finite Double for a Float/Double tag, an int in range for an integer tag: what convert_value returns
            # for them, without its chain of checks (once per value, 12,500 a second in bench.collect)
            if n is None and ((kind is float and dtype in FLOAT_DTYPES and math.isfinite(raw)) or (
                    kind is int and (limits := INT_RANGES.get(dtype)) is not None and limits[0] <= raw <= limits[1])):
                out[tag_id] = Reading(raw, quality, reason)
                continue
            try:
                out[tag_id] = Reading(convert_value(raw, dtype, n), quality, reason)
            except ValueMismatch as exc:
                out[tag_id] = Reading(None, BAD, f"{INVALID_ADDRESS}: {node.key}: {exc}")
            except Exception as exc:  # never a crash for one value
                out[tag_id] = Reading(None, BAD, f"{PROTOCOL_ERROR}: {node.key}: {exc.__class__.__name__}: {exc}")

    # --- subscription mode ---

    def _read_subscription(self, client: Client, plan: OpcUaPlan) -> dict[int, Reading]:
        st = plan._sub
        if st is None or st.generation != self._generation:
            res = self._resolve(plan)
            st = _SubState(self._generation)
            budget = self.settings.timeout_s * (2 + len(plan.chunks)) + 1
            self._run(self._subscribe(client, plan, res, st), budget, "subscribe")
            plan._sub = st
        if st.lost:
            raise self._error(CANNOT_CONNECT, f"the subscription on {self.url} ended ({st.lost})",
                              "The collector reconnects and subscribes again.")
        res = self._resolve(plan)
        with st.lock:
            latest = dict(st.latest)
        out: dict[int, Reading] = {}
        for i, node in enumerate(plan.nodes):
            if i in res.unresolved:
                self._fill_bad(out, node, res.unresolved[i])
            elif i in st.failed:
                self._fill_bad(out, node, st.failed[i])
            elif i in latest:
                self._fill(out, node, latest[i])
            else:
                for tag_id, _dtype, _n in node.tags:
                    out[tag_id] = Reading(None, UNCERTAIN, NO_UPDATE_YET)
        return out

    async def _subscribe(self, client: Client, plan: OpcUaPlan, res: _Resolution, st: _SubState) -> None:
        interval = plan.publishing_interval_ms
        st.subscription = await client.create_subscription(interval, _Handler(st))
        first: dict[ua.NodeId, int] = {}
        for i, nid in enumerate(res.node_ids):
            if nid is None:
                continue
            st.index_by_node.setdefault(nid, []).append(i)
            first.setdefault(nid, i)
        unique = list(first)
        size = self.config["max_nodes_per_read"]
        for k in range(0, len(unique), size):
            part = unique[k:k + size]
            results = await st.subscription.subscribe_data_change([client.get_node(n) for n in part],
                                                                  sampling_interval=interval)
            for nid, result in zip(part, results, strict=False):
                if isinstance(result, ua.StatusCode):
                    for i in st.index_by_node[nid]:
                        st.failed[i] = status_reason(result)

    # --- diagnostics ---

    def test_connection(self, probe_address: str | None = None) -> TestResult:
        """tcp, handshake (hello, secure channel, endpoints, session), identity (BuildInfo, namespaces), probe_read
        (probe_address, or the server's clock). Uses a connection of its own; never raises."""
        steps: list[DiagnosticStep] = []
        identity: dict[str, Any] = {"endpoint": self.url, "security_policy": self.config["security_policy"],
                                    "security_mode": self.config["security_mode"],
                                    "user": self.config["username"] or "anonymous"}
        own_loop = self._loop is None
        client: Client | None = None
        t = self.settings.timeout_s
        try:
            with Step(steps, "tcp") as step:
                step.detail = f"connected to {tcp_check(self.host, self.port, t)}"
            with Step(steps, "handshake") as step:
                client = self._run(self._open(), t * 6 + 2, "handshake")
                user = self.config["username"]
                step.detail = (f"{self.url}: hello, secure channel ({self.config['security_policy']}, "
                               f"{self.config['security_mode']}), session activated as "
                               f"{f'user {user!r}' if user else 'anonymous'}")
            with Step(steps, "identity") as step:
                step.detail = self._run(self._identity(client, identity), t * 2 + 1, "identity")
            with Step(steps, "probe_read") as step:
                step.detail = self._run(self._probe(client, probe_address, identity), t * 2 + 1, "probe read")
        except Exception:  # recorded by the failed step
            pass
        finally:
            if client is not None and self._loop is not None and self._loop.alive:
                try:
                    self._loop.run(self._teardown(client), 3.0)
                except Exception:
                    pass
            if own_loop and self._client is None and self._loop is not None:
                self._loop.stop()
                self._loop = None
        for s in steps:
            s.detail = self._clean(s.detail)
            s.suggestion = self._clean(s.suggestion)
        return TestResult(bool(steps) and all(s.ok for s in steps), steps, identity)

    async def _identity(self, client: Client, identity: dict) -> str:
        ids = {"product_name": ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductName,
               "manufacturer": ua.ObjectIds.Server_ServerStatus_BuildInfo_ManufacturerName,
               "software_version": ua.ObjectIds.Server_ServerStatus_BuildInfo_SoftwareVersion,
               "build_number": ua.ObjectIds.Server_ServerStatus_BuildInfo_BuildNumber,
               "product_uri": ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductUri,
               "server_state": ua.ObjectIds.Server_ServerStatus_State,
               "namespaces": ua.ObjectIds.Server_NamespaceArray}
        dvs = await client.uaclient.read_attributes([ua.NodeId(i) for i in ids.values()], ua.AttributeIds.Value)
        for key, dv in zip(ids, dvs, strict=False):
            if dv.StatusCode is not None and dv.StatusCode.is_bad():
                continue
            value = dv.Value.Value if dv.Value is not None else None
            if key == "server_state" and value is not None:
                try:
                    value = ua.ServerState(value).name
                except ValueError:
                    value = str(value)
            elif key == "namespaces":
                value = list(value or [])
            identity[key] = value
        if not identity.get("namespaces"):
            raise DriverError(PROTOCOL_ERROR, "the server did not return its namespace array (i=2255)")
        product = " ".join(str(identity[k]) for k in ("product_name", "software_version") if identity.get(k))
        by = f" by {identity['manufacturer']}" if identity.get("manufacturer") else ""
        state = f"; state {identity['server_state']}" if identity.get("server_state") else ""
        return f"{product or 'unnamed server'}{by}{state}; {len(identity['namespaces'])} namespaces"

    async def _probe(self, client: Client, probe_address: str | None, identity: dict) -> str:
        if probe_address is None:
            nid = ua.NodeId(ua.ObjectIds.Server_ServerStatus_CurrentTime)
            label = "Server.ServerStatus.CurrentTime (i=2258)"
        else:
            try:
                addr = parse_node_address(probe_address, "Variant")
            except ConfigError as exc:
                raise DriverError(INVALID_ADDRESS, exc.message, f"Use a NodeId such as {EXAMPLES}.") from None
            try:
                nid = addr.node_id(identity.get("namespaces") or [])
            except KeyError:
                raise DriverError(INVALID_ADDRESS, f"namespace {addr.namespace_uri} is not on the server",
                                  f"The server's namespaces are: {', '.join(identity.get('namespaces') or [])}") \
                    from None
            label = probe_address
        started = time.time()
        [dv] = await client.uaclient.read_attributes([nid], ua.AttributeIds.Value)
        sc = dv.StatusCode or ua.StatusCode()
        if sc.is_bad():
            kind = INVALID_ADDRESS if sc.name in INVALID_STATUS else DEVICE_ERROR
            raise DriverError(kind, f"reading {label} answered {sc.name}",
                              "Check the NodeId with discover() or a browser such as UaExpert." if
                              kind == INVALID_ADDRESS else "The server refused the read.")
        value = dv.Value.Value if dv.Value is not None else None
        if probe_address is None and isinstance(value, datetime):
            skew = epoch_seconds(value) - (started + time.time()) / 2
            return f"{label} = {value.isoformat()} (server clock {skew:+.1f} s from this machine's)"
        return f"{label} = {show_value(value)}" + (f" ({sc.name})" if sc.is_uncertain() else "")

    # --- discovery ---

    def discover(self, root: str | None = None, depth: int = 5, limit: int = 2000, include_server: bool = False,
                 include_properties: bool = False, read_values: bool = True, namespace_uris: bool = False,
                 **_options) -> list[DiscoveredTag]:
        """Browse from the Objects folder (or `root`, a NodeId) down `depth` levels, at most `limit` nodes.
        Objects become DiscoveredTags with children (data_type ""); variables carry their data type (built-in
        name, '<Type>[n]' for arrays), writable (AccessLevel CurrentWrite) and current value. The standard
        Server object is left out unless include_server; properties unless include_properties. Addresses are
        'ns=<index>;...' or, with namespace_uris, 'nsu=<uri>;...'. Raises DriverError."""
        if depth < 1 or limit < 1:
            raise ConfigError("depth" if depth < 1 else "limit", "must be at least 1")
        start = ua.NodeId(ua.ObjectIds.ObjectsFolder)
        own = self._client is None
        if own:
            self.connect()
        try:
            client = self._check_link()
            if root is not None:
                try:
                    start = parse_node_address(root, "Variant").node_id(self._namespaces)
                except KeyError:
                    raise ConfigError("root", f"namespace of {root!r} is not on the server") from None
            budget = self.settings.timeout_s * (depth * 4 + 4) + 5
            return self._run(browse_tree(client, start, depth, limit, include_server, include_properties, read_values,
                                         self._namespaces, namespace_uris, where=self.url), budget, "discover")
        finally:
            if own:
                self.close()
