"""Allen-Bradley ControlLogix / CompactLogix over EtherNet/IP, with pycomm3 1.2.16.

protocol_config (validate_config fills the defaults):
  slot               backplane slot of the controller, 0..16, default 0. A CompactLogix CPU is always slot 0.
  route              optional CIP route instead of the slot, as port,link pairs: "1,0" (backplane, slot 0),
                     "bp,3", or through a bridge "1,2,2,10.0.0.9,1,0". The route wins over the slot.
  plc_family         "ControlLogix" (default) or "CompactLogix"; only used for checks and suggestions.
  init_program_tags  upload the program-scope tag definitions on connect (default True). With False only the
                     programs that configured tags use are uploaded, on their first read.

Addresses are Logix tag names, one value each:
  ProductionCount               controller tag
  Program:MainProgram.StepNo    program tag
  StationTemps[2]               array element (up to 3 dimensions: Grid[1,2])
  Station[1].Count              member of a UDT, nested as deep as the structure goes
  StatusWord.3                  one bit of an integer (data type BOOL)
pycomm3's element-count form 'Arr{5}' reads several values and is refused. A whole array or a whole structure
is not one value either: those tags come back BAD with the element or member to use.

Data types: BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING (for an array element, the
element type; any LEN/DATA string type of the controller, STRING20 and the like, reads as STRING).

The plan is a list of chunks of distinct tag names; each chunk is one ``plc.read(*names)``, which pycomm3 packs
into Multiple Service Packets. Chunks are sized with pycomm3's own estimate (reply bytes + request bytes + 2 per
tag, 10 bytes of packet overhead) against the 4000-byte Large Forward Open connection, so that one chunk is one
packet on the wire; if the controller only grants a 500-byte connection, pycomm3 splits a chunk further.

Measured against plant.enip on 127.0.0.1 (2 cores, shared; test_logix_driver.py::test_bench_100_tag_plan prints
the current figure): 100 distinct tags in one chunk, one Multiple Service Packet, 2.4-8 ms per read cycle
(125-415 cycles/s); nearly all of it is pycomm3 building and parsing the per-tag packets, not the wire.

Per connection each address is resolved once against the uploaded tag list: a tag that does not exist, an index
out of range, a member that is not there, a whole array or structure, or a type that cannot be the configured
one becomes a BAD reading without any request. A numeric type that differs from the configured one (a DINT
configured as REAL) reads UNCERTAIN, converted to the configured kind, with the reason.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from pycomm3 import CommError, LogixDriver, PycommError, RequestError, ResponseError
from pycomm3.cip_driver import CIPDriver, with_forward_open

from collectors.base import (
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
    ConnectionSettings,
    DiagnosticStep,
    DiscoveredTag,
    Driver,
    DriverError,
    Reading,
    Step,
    TagSpec,
    TestResult,
    register,
    tcp_check,
)
from collectors.drivers.logix_plan import (
    ADDRESS_FORMS,
    CONNECTION_SIZE,
    FAMILIES,
    FLOAT_TYPES,
    INTEGER_TYPES,
    MAX_SLOT,
    MAX_TAG_NAME,
    NAME_RE,
    NUMERIC_TYPES,
    PART_RE,
    TYPE_SIZES,
    LogixAddress,
    LogixChunk,
    LogixPlan,
    Resolved,
    parse_indices,
    reply_bytes,
)
from collectors.drivers.logix_packed import PackedChunk
from collectors.drivers.logix_socket import (
    ForeignReply,
    GuardedSocket,
    PeerClosed,
    chain_text,
    exception_chain,
    guarded,
    timed_out,
)
from collectors.peers import describe

log = logging.getLogger(__name__)

# a packed chunk's value class -> the configured types whose reading is that value as it is (see _reading)
PACKED_TYPES = {float: FLOAT_TYPES, int: INTEGER_TYPES, bool: frozenset({"BOOL"})}

STATUS_RE = re.compile(r"\((?P<general>[0-9a-fA-F]{2}), (?P<extended>[0-9a-fA-F]+)\)")

def _status(text: str) -> tuple[int, int] | None:
    m = STATUS_RE.search(text or "")
    if not m:
        return None
    return int(m.group("general"), 16), int(m.group("extended"), 16)


@register
class LogixDriverAdapter(Driver):
    """ControlLogix / CompactLogix tags through one pycomm3 LogixDriver connection."""

    protocol = "ETHERNET_IP"
    data_types = tuple(TYPE_SIZES)

    def __init__(self, settings: ConnectionSettings):
        super().__init__(settings)
        self.config = self.validate_config(settings.config)
        self._plc: LogixDriver | None = None
        self._opening: LogixDriver | None = None  # the one being opened (connect, test): abort() reaches it
        self._resolved: dict[str, Resolved] = {}
        self._prepared: dict[int, tuple] = {}  # id(chunk) -> _prepare's answer
        self._loaded_programs: set[str] = set()

    # -- configuration ------------------------------------------------------------------------------------------
    @classmethod
    def validate_config(cls, config: dict) -> dict:
        cfg = dict(config or {})
        slot = cfg.get("slot", 0)
        if isinstance(slot, str) and slot.strip().isdigit():
            slot = int(slot)
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot <= MAX_SLOT:
            raise ConfigError("slot", f"{slot!r} is not a slot: a whole number from 0 to {MAX_SLOT}, the slot of "
                                      "the controller in the chassis (0 is the leftmost)")
        family_in = cfg.get("plc_family") or "ControlLogix"
        family = next((f for f in FAMILIES if f.lower() == str(family_in).replace(" ", "").lower()), None)
        if family is None:
            raise ConfigError("plc_family", f"{family_in!r} is not supported; use one of {', '.join(FAMILIES)}")
        route = cfg.get("route")
        if route in ("", None):
            route = None
        else:
            route = cls._check_route(route)
        if family == "CompactLogix" and slot != 0 and route is None:
            raise ConfigError("slot", f"a CompactLogix controller is always in slot 0, not {slot}")
        init_program_tags = cfg.get("init_program_tags", True)
        if not isinstance(init_program_tags, bool):
            raise ConfigError("init_program_tags", f"{init_program_tags!r} must be true or false")
        cfg.update(slot=slot, route=route, plc_family=family, init_program_tags=init_program_tags)
        return cfg

    @staticmethod
    def _check_route(route: Any) -> str:
        if not isinstance(route, str):
            raise ConfigError("route", f"{route!r} must be a text of port,link pairs such as '1,0'")
        parts = [p.strip() for p in re.split(r"[,/\\]", route)]
        if len(parts) % 2 or not all(parts):
            raise ConfigError("route", f"{route!r}: a route is port,link pairs, e.g. '1,0' (backplane, slot 0) or "
                                       "'1,2,2,10.0.0.9,1,0' (through the bridge in slot 2 to 10.0.0.9, slot 0)")
        for port, link in zip(parts[::2], parts[1::2], strict=False):
            if not (port.isdigit() or port.lower() in ("bp", "backplane", "enet")):
                raise ConfigError("route", f"{route!r}: port {port!r} must be a number (1 = backplane, "
                                           "2 = Ethernet) or bp/enet")
            if not (link.isdigit() or re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", link)):
                raise ConfigError("route", f"{route!r}: link {link!r} must be a slot number or an IP address")
        return ",".join(parts)

    @classmethod
    def parse_address(cls, address: str, data_type: str) -> LogixAddress:
        dtype = str(data_type or "").strip().upper()
        if dtype not in TYPE_SIZES:
            raise ConfigError("data_type", f"{data_type!r} is not a Logix data type; use one of "
                                           f"{', '.join(TYPE_SIZES)} (for an array element, the element's type)")
        if not isinstance(address, str) or not address.strip():
            raise ConfigError("address", f"the address is empty; {ADDRESS_FORMS}")
        text = address.strip()
        if "{" in text or "}" in text:
            base = text.split("{", 1)[0] or "Arr"
            raise ConfigError("address", f"{text!r}: {{n}} is an element count and reads several values, but one "
                                         f"address is one value: use {base}[i] for element i, one tag per element")
        text = re.sub(r"\[([^\]]*)\]", lambda m: "[" + "".join(m.group(1).split()) + "]", text)  # Grid[1, 2]
        if any(c.isspace() for c in text):
            raise ConfigError("address", f"{text!r} contains a space; {ADDRESS_FORMS}")
        program = None
        rest = text
        if rest.lower().startswith("program:"):
            prog, dot, rest = rest[len("program:"):].partition(".")
            if not dot or not rest:
                raise ConfigError("address", f"{text!r}: a program tag is Program:<program>.<tag>, "
                                             "e.g. Program:MainProgram.StepNo")
            if not NAME_RE.match(prog) or len(prog) > MAX_TAG_NAME:
                raise ConfigError("address", f"{text!r}: {prog!r} is not a program name (letters, digits and _, "
                                             "not starting with a digit)")
            program = prog
        elif ":" in rest:
            raise ConfigError("address", f"{text!r}: I/O module tags (Local:1:I.Data) and other names with ':' are "
                                         f"not supported; {ADDRESS_FORMS}")
        pieces = rest.split(".")
        bit = None
        if len(pieces) > 1 and pieces[-1].isdigit():
            bit = int(pieces.pop())
            if bit > 63:
                raise ConfigError("address", f"{text!r}: bit {bit} is out of range; a bit of an integer is 0..63")
            if dtype != "BOOL":
                raise ConfigError("data_type", f"{text!r} is one bit of an integer: its data type is BOOL, "
                                               f"not {dtype}")
        parts: list[tuple[str, tuple[int, ...]]] = []
        for piece in pieces:
            if not piece:
                raise ConfigError("address", f"{text!r} has an empty name between dots; {ADDRESS_FORMS}")
            m = PART_RE.match(piece)
            if m is None or not m.group("name"):
                raise ConfigError("address", f"{text!r}: {piece!r} is not a tag or member name; {ADDRESS_FORMS}")
            name = m.group("name")
            if not NAME_RE.match(name):
                raise ConfigError("address", f"{text!r}: {name!r} is not a Logix name (letters, digits and _, not "
                                             f"starting with a digit); {ADDRESS_FORMS}")
            if len(name) > MAX_TAG_NAME:
                raise ConfigError("address", f"{text!r}: {name!r} is longer than {MAX_TAG_NAME} characters")
            indices = parse_indices(m.group("index"), piece, text) if m.group("index") is not None else ()
            parts.append((name, indices))
        canonical = ".".join(n + (f"[{','.join(map(str, i))}]" if i else "") for n, i in parts)
        if program:
            canonical = f"Program:{program}.{canonical}"
        if bit is not None:
            canonical += f".{bit}"
        return LogixAddress(canonical, program, tuple(parts), bit, dtype)

    def plan(self, tags: list[TagSpec]) -> LogixPlan:
        chunks: list[LogixChunk] = []
        addresses: dict[str, LogixAddress] = {}
        by_name: dict[str, LogixChunk] = {}
        budget = CONNECTION_SIZE
        current = LogixChunk()
        for i, tag in enumerate(tags):
            try:
                addr = self.parse_address(tag.address, tag.data_type)
            except ConfigError as exc:
                raise ConfigError(f"tags[{i}].{exc.field}", f"tag {tag.name or tag.tag_id}: {exc.message}") from None
            known = by_name.get(addr.text)
            if known is not None:
                if addresses[addr.text].data_type != addr.data_type:
                    raise ConfigError(f"tags[{i}].data_type", f"{addr.text} is configured twice with different "
                                                              f"data types ({addresses[addr.text].data_type}, "
                                                              f"{addr.data_type})")
                known.tag_ids[addr.text].append(tag.tag_id)
                continue
            cost = reply_bytes(addr)
            if current.names and current.estimated_bytes + cost > budget:
                chunks.append(current)
                current = LogixChunk()
            current.names.append(addr.text)
            current.tag_ids[addr.text] = [tag.tag_id]
            current.estimated_bytes += cost
            addresses[addr.text] = addr
            by_name[addr.text] = current
        if current.names:
            chunks.append(current)
        return LogixPlan(chunks, addresses, budget)

    # -- link -----------------------------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """pycomm3's connection path: ip:port/slot or ip:port/route."""
        s = self.settings
        port = s.port or PROTOCOL_DEFAULT_PORTS[self.protocol]
        tail = self.config["route"].replace(",", "/") if self.config["route"] else str(self.config["slot"])
        return f"{s.host}:{port}/{tail}"

    @property
    def connected(self) -> bool:
        return self._plc is not None and self._plc.connected

    def _where(self) -> str:
        if self.config["route"]:
            return f"route {self.config['route']}"
        return f"slot {self.config['slot']}"

    def _not_logix_suggestion(self) -> str:
        return (f"Check that {self.settings.host}:{self.settings.port} is a ControlLogix or CompactLogix controller "
                "(or an EtherNet/IP bridge in its chassis) and that the port is its EtherNet/IP port, 44818. "
                "Micro800, SLC and PLC-5 controllers need another driver.")

    def _route_error(self, detail: str) -> DriverError | None:
        status = _status(detail)
        if status is None or status[0] != 0x01 or status[1] not in (0x0311, 0x0312, 0x0315, 0x0204):
            return None
        m = re.search(r"([^-<]*\(\w\w, \w+\))", detail)  # 'Link address not available  (01, 312)'
        detail = "CIP: " + " ".join(m.group(1).split()) if m else detail
        if self.config["route"]:
            return DriverError(CANNOT_CONNECT, f"the route {self.config['route']} does not reach a controller "
                                               f"({detail.strip()})",
                               "Check the route: each pair is a port (1 = backplane, 2 = Ethernet) and a link (a "
                               "slot or an IP address); the last pair must name the slot of the CPU.")
        slot = self.config["slot"]
        return DriverError(CANNOT_CONNECT, f"no controller in slot {slot} ({detail.strip()})",
                           f"No controller in slot {slot}: check the slot of the CPU in the chassis (0 is the "
                           "leftmost slot) and set slot to it.")

    def _peer_error(self, exc: BaseException, stage: str, opening: bool) -> DriverError | None:
        """The error for a peer that answered in another protocol, or (opening) closed without a word: found by
        the guarded socket. A controller that closes an established session has gone away: not for here."""
        s = self.settings
        for e in exception_chain(exc):
            if isinstance(e, ForeignReply) or (opening and isinstance(e, PeerClosed)):
                found = describe(self.protocol, s.host, s.port, e.received, isinstance(e, PeerClosed))
                if found is not None:
                    out = DriverError(found.kind, f"{stage}: {found.message}", found.suggestion)
                    out.diagnosed = True
                    return out
        return None

    def abort(self) -> None:
        """From another thread: end a call that does not return (shut the socket down under it)."""
        for plc in (self._opening, self._plc):
            sock = getattr(plc, "_sock", None)
            if isinstance(sock, GuardedSocket):
                sock.close()

    def _open_error(self, exc: BaseException, stage: str) -> DriverError:
        """Turn what pycomm3 raised while opening into a DriverError with a suggestion."""
        peer = self._peer_error(exc, stage, opening=True)
        if peer is not None:
            return peer
        text = chain_text(exc)
        routed = self._route_error(text)
        if routed is not None:
            return routed
        if isinstance(exc, CommError) or any(isinstance(e, OSError) for e in exception_chain(exc)):
            # Is anything listening at all? tcp_check raises the precise error (refused, timeout, DNS).
            tcp_check(self.settings.host, self.settings.port, self.settings.timeout_s)
            if timed_out(exc):
                return DriverError(TIMEOUT, f"{stage}: no EtherNet/IP answer within {self.settings.timeout_s:g} s",
                                   self._not_logix_suggestion())
            return DriverError(PROTOCOL_ERROR, f"{stage}: the device does not speak EtherNet/IP ({text})",
                               self._not_logix_suggestion())
        if "attribute list" in text or "data type" in text or "template" in text:
            return DriverError(PROTOCOL_ERROR, f"tag list upload failed: {text}",
                               "The controller did not give its tag list (Symbol object 0x6B / templates 0x6C); "
                               "check that it is a Logix controller with firmware 20 or later.")
        return DriverError(PROTOCOL_ERROR, f"{stage}: {text}", self._not_logix_suggestion())

    def connect(self) -> None:
        self.close()
        plc = guarded(LogixDriver(self.path, init_tags=True, init_program_tags=self.config["init_program_tags"]),
                       self.settings.timeout_s)
        plc.socket_timeout = self.settings.timeout_s
        self._opening = plc
        try:
            opened = plc.open()
        except (PycommError, OSError) as exc:
            self._safe_close(plc, dead=True)
            raise self._open_error(exc, "connect") from None
        finally:
            self._opening = None
        if not opened:
            self._safe_close(plc)
            raise DriverError(PROTOCOL_ERROR, f"{self.settings.host}:{self.settings.port} did not register an "
                                              "EtherNet/IP session", self._not_logix_suggestion())
        self._plc = plc
        self._resolved = {}
        self._loaded_programs = set()
        if self.config["init_program_tags"]:
            self._loaded_programs = set(plc.info.get("programs", {}))
        log.info("connected to %s (%s, rev %s.%s, program %s): %d tags", self.path, plc.info.get("product_name"),
                 plc.info.get("revision", {}).get("major"), plc.info.get("revision", {}).get("minor"),
                 plc.info.get("name"), len(plc.tags))

    @staticmethod
    def _safe_close(plc: LogixDriver | None, dead: bool = False) -> None:
        """Close without raising. dead: the link is known broken, so only close the socket (pycomm3 would
        otherwise send Forward Close and UnRegisterSession into it and log a traceback for each)."""
        if plc is None:
            return
        if dead:
            plc._target_is_connected = False  # pycomm3 1.2.16 state: skip Forward Close ...
            plc._session = 0  # ... and UnRegisterSession
        try:
            plc.close()
        except Exception:  # noqa: BLE001 - close never raises
            log.debug("closing the EtherNet/IP connection failed", exc_info=True)

    def close(self, dead: bool = False) -> None:
        plc, self._plc = self._plc, None
        self._safe_close(plc, dead)
        self._resolved = {}

    def _require(self) -> LogixDriver:
        if self._plc is None:
            raise DriverError(CANNOT_CONNECT, f"not connected to {self.path}", "Call connect() first.")
        return self._plc

    def _link_lost(self, exc: BaseException, action: str) -> DriverError:
        self.close(dead=True)
        peer = self._peer_error(exc, action, opening=False)
        if peer is not None:
            return peer
        if timed_out(exc):
            return DriverError(TIMEOUT, f"{action}: {self.settings.host} did not answer within "
                                        f"{self.settings.timeout_s:g} s",
                               "Check the network and that the controller is powered and reachable.")
        return DriverError(CANNOT_CONNECT, f"{action}: the connection to {self.settings.host}:{self.settings.port} "
                                           f"was lost ({chain_text(exc)})",
                           "The controller closed the connection or went away; the collector reconnects.")

    # -- resolution against the uploaded tag list -----------------------------------------------------------------
    def _ensure_program(self, plc: LogixDriver, program: str) -> str | None:
        """Upload one program's tags when init_program_tags is off. Returns the program's spelling or None."""
        programs = plc.info.get("programs", {})
        spelled = next((p for p in programs if p.lower() == program.lower()), None)
        if spelled is None or spelled in self._loaded_programs:
            return spelled
        try:
            tags = plc.get_tag_list(program=spelled, cache=False)
        except (ResponseError, RequestError) as exc:
            raise DriverError(PROTOCOL_ERROR, f"tag list of program {spelled} could not be read: "
                                              f"{chain_text(exc)}") from None
        plc.tags.update({t["tag_name"]: t for t in tags})
        self._loaded_programs.add(spelled)
        return spelled

    def _resolve(self, addr: LogixAddress) -> Resolved:
        hit = self._resolved.get(addr.text)
        if hit is None:
            hit = self._resolved[addr.text] = self._resolve_uncached(addr)
        return hit

    def _resolve_uncached(self, addr: LogixAddress) -> Resolved:
        plc = self._require()
        tags = plc.tags
        program = addr.program
        if program is not None:
            program = self._ensure_program(plc, program)
            if program is None:
                names = ", ".join(sorted(plc.info.get("programs", {}))) or "none"
                return Resolved(None, reason=f"{INVALID_ADDRESS}: no program {addr.program!r} in the controller "
                                              f"(programs: {names})")
        first, indices = addr.parts[0]
        key = f"Program:{program}.{first}" if program else first
        info = tags.get(key)
        if info is None:  # Logix names are case-insensitive; pycomm3's lookup is not
            key = next((k for k in tags if k.lower() == key.lower()), None)
            info = tags.get(key) if key else None
        if info is None:
            scope = f"program {program}" if program else "the controller"
            return Resolved(None, reason=f"{INVALID_ADDRESS}: {addr.scope_tag} does not exist in {scope}")
        spelled = [key]
        label = key
        dims = [d for d in info.get("dimensions", [])[: info.get("dim", 0)] if d]
        is_struct = info.get("tag_type") == "struct"
        dtype: Any = info["data_type"]
        if not is_struct and dtype == "DWORD" and dims:  # a BOOL array, dimension counted in bits
            dtype = "BOOL"
        err = self._check_index(label, indices, dims, self._type_label(dtype, is_struct))
        if err:
            return Resolved(None, reason=err)
        spelled[-1] += self._index_text(indices)
        label += self._index_text(indices)
        for name, member_indices in addr.parts[1:]:
            if not is_struct or "string" in dtype:
                kind = self._type_label(dtype, is_struct)
                return Resolved(None, reason=f"{INVALID_ADDRESS}: {label} is {kind} and has no member {name!r}")
            members = {k: v for k, v in dtype["internal_tags"].items() if k in dtype.get("attributes", [])}
            mname = next((k for k in members if k.lower() == name.lower()), None)
            if mname is None:
                return Resolved(None, reason=f"{INVALID_ADDRESS}: {label} ({dtype['name']}) has no member "
                                              f"{name!r}; members: {', '.join(members)}")
            member = members[mname]
            label = f"{label}.{mname}"
            is_struct = member.get("tag_type") == "struct"
            dtype = member["data_type"]
            mdims = [member["array"]] if member.get("array") else []
            err = self._check_index(label, member_indices, mdims, self._type_label(dtype, is_struct))
            if err:
                return Resolved(None, reason=err)
            spelled.append(mname + self._index_text(member_indices))
            label += self._index_text(member_indices)
        actual = "STRING" if is_struct and "string" in dtype else (None if is_struct else str(dtype))
        if actual is None:
            first_member = next(iter(a for a in dtype.get("attributes", [])), "Member")
            return Resolved(None, reason=f"{INVALID_ADDRESS}: {label} is a structure ({dtype['name']}); address "
                                          f"one member, e.g. {label}.{first_member}")
        request = ".".join(spelled)
        if addr.bit is not None:
            if actual not in INTEGER_TYPES:
                return Resolved(None, reason=f"{INVALID_ADDRESS}: {label} is {actual}; only an integer has bits")
            if addr.bit >= TYPE_SIZES[actual] * 8:
                return Resolved(None, reason=f"{INVALID_ADDRESS}: {label} is {actual} with bits "
                                              f"0..{TYPE_SIZES[actual] * 8 - 1}, not {addr.bit}")
            request += f".{addr.bit}"
            actual = "BOOL"
        if actual == addr.data_type:
            return Resolved(request, actual)
        if actual in NUMERIC_TYPES and addr.data_type in NUMERIC_TYPES:
            return Resolved(request, actual, f"type: {label} is {actual} in the controller, configured as "
                                              f"{addr.data_type}")
        return Resolved(None, actual, f"{INVALID_ADDRESS}: {label} is {actual} in the controller, configured as "
                                       f"{addr.data_type}")

    @staticmethod
    def _type_label(dtype: Any, is_struct: bool) -> str:
        if not is_struct:
            return str(dtype)
        return "STRING" if "string" in dtype else f"a structure ({dtype['name']})"

    @staticmethod
    def _index_text(indices: tuple[int, ...]) -> str:
        return f"[{','.join(map(str, indices))}]" if indices else ""

    @staticmethod
    def _check_index(label: str, indices: tuple[int, ...], dims: list[int], kind: str) -> str | None:
        if not dims and indices:
            return f"{INVALID_ADDRESS}: {label} is {kind}, not an array; drop the index"
        if dims and not indices:
            shape = "x".join(map(str, dims))
            example = "[" + ",".join("0" for _ in dims) + "]"
            return (f"{INVALID_ADDRESS}: {label} is an array of {shape} {kind}; address one element, "
                    f"e.g. {label}{example}")
        if dims and len(indices) != len(dims):
            return f"{INVALID_ADDRESS}: {label} has {len(dims)} dimension(s), the address gives {len(indices)}"
        for i, (idx, dim) in enumerate(zip(indices, dims, strict=False)):
            if idx >= dim:
                return (f"{INVALID_ADDRESS}: index {idx} is out of range: {label} has {dim} elements "
                        f"(0..{dim - 1})" + (f" in dimension {i + 1}" if len(dims) > 1 else ""))
        return None

    # -- reading --------------------------------------------------------------------------------------------------
    def _prepare(self, plc: LogixDriver, plan: LogixPlan, chunk) -> tuple:
        """A chunk's resolved requests, kept while the resolutions hold (the same self._resolved dict: a connect,
        a close or a probe makes a new one): (chunk, resolutions, [(tag ids, reason)] of unreadable addresses,
        the request strings for plc.read, [(address, resolution, tag ids)] in the same order, and the packed
        request (logix_packed) when every readable tag of the chunk is a plain number, else None)."""
        bad, names, meta = [], [], []
        plain = True
        for name in chunk.names:
            addr = plan.addresses[name]
            res = self._resolve(addr)
            if res.request is None:
                bad.append((chunk.tag_ids[name], res.reason))
            else:
                names.append(res.request)
                meta.append((addr, res, chunk.tag_ids[name]))
                plain = plain and not res.reason
        packed = None
        if plain and names:
            try:
                packed = PackedChunk.build(plc, names)
            except Exception:  # never a reason not to read: pycomm3's read() stays the way
                log.debug("Logix %s: chunk not packed", self._where(), exc_info=True)
            # a packed value is stored as read: only where _reading's short way would give the same Reading
            if packed is not None and any(addr.data_type not in PACKED_TYPES[kind]
                                          for (addr, _res, _ids), kind in zip(meta, packed.classes, strict=True)):
                packed = None
        prepared = (chunk, self._resolved, bad, names, meta, packed)
        self._prepared[id(chunk)] = prepared
        return prepared

    def read(self, plan: LogixPlan) -> dict[int, Reading]:
        plc = self._require()
        out: dict[int, Reading] = {}
        if len(self._prepared) > 4 * len(plan.chunks) + 64:  # chunks of plans no longer read
            self._prepared.clear()
        for chunk in plan.chunks:
            prepared = self._prepared.get(id(chunk))
            if prepared is None or prepared[0] is not chunk or prepared[1] is not self._resolved:
                prepared = self._prepare(plc, plan, chunk)
            _chunk, _resolved, bad, names, meta, packed = prepared
            for tag_ids, reason in bad:
                for tag_id in tag_ids:
                    out[tag_id] = Reading(None, BAD, reason)
            if not names:
                continue
            try:
                if packed is not None and plc._target_is_connected:
                    whole, results = packed.read(plc)
                    if whole:  # every value as expected: stored as read (the short way of _reading)
                        for (_addr, _res, tag_ids), value in zip(meta, results):
                            reading = Reading(value, GOOD)
                            for tag_id in tag_ids:
                                out[tag_id] = reading
                        continue
                else:
                    results = plc.read(*names)
            except (CommError, OSError) as exc:
                raise self._link_lost(exc, "read") from None
            except Exception as exc:  # a reply pycomm3 could not decode: the stream cannot be trusted any more
                self.close(dead=True)
                raise DriverError(PROTOCOL_ERROR, f"read: unreadable reply ({exc.__class__.__name__}: {exc})",
                                  "The device answered in a way pycomm3 cannot decode; the collector reconnects.") \
                    from None
            if len(names) == 1:
                results = [results]
            reading_of = self._reading
            for (addr, res, tag_ids), result in zip(meta, results, strict=False):
                reading = reading_of(addr, res, result)
                for tag_id in tag_ids:
                    out[tag_id] = reading
        return out

    def _reading(self, addr: LogixAddress, res: Resolved, result) -> Reading:
        if result.error:
            status = _status(result.error)
            if "doesn't exist" in result.error or (status and status[0] in (0x04, 0x05)):
                kind = INVALID_ADDRESS
            else:
                kind = DEVICE_ERROR
            return Reading(None, BAD, f"{kind}: {addr.text}: {result.error}")
        value = result.value
        want = addr.data_type
        if not res.reason:  # the common cases first: a REAL as a float, a DINT as an int (what the chain gives)
            if value.__class__ is float and want in FLOAT_TYPES:
                return Reading(value, GOOD)
            if value.__class__ is int and want in INTEGER_TYPES:
                return Reading(value, GOOD)
        try:
            if want == "STRING":
                if not isinstance(value, str):
                    raise TypeError
            elif want == "BOOL":
                if isinstance(value, (dict, list, str)):
                    raise TypeError
                value = bool(value)
            elif want in FLOAT_TYPES:
                if isinstance(value, (dict, list, str)):
                    raise TypeError
                value = float(value)
            else:
                if isinstance(value, (dict, list, str)):
                    raise TypeError
                if isinstance(value, float):
                    value = int(value)
                value = int(value)
        except (TypeError, ValueError):
            return Reading(None, BAD, f"{PROTOCOL_ERROR}: {addr.text}: the controller returned "
                                      f"{result.type} {value!r:.60}, not one {want}")
        if res.reason:
            return Reading(value, UNCERTAIN, res.reason)
        return Reading(value, GOOD)

    # -- diagnostics ------------------------------------------------------------------------------------------------
    def test_connection(self, probe_address: str | None = None) -> TestResult:
        """tcp, handshake (RegisterSession + Forward Open along the slot/route), identity, probe_read.

        probe_read reads probe_address when given, else the first scalar controller tag of the uploaded list.
        """
        s = self.settings
        steps: list[DiagnosticStep] = []
        identity: dict = {}

        def run(name, fn) -> bool:
            try:
                with Step(steps, name) as st:
                    fn(st)
                return True
            except Exception:  # noqa: BLE001 - recorded in the step
                return False

        def tcp(st):
            st.detail = f"connected to {tcp_check(s.host, s.port, s.timeout_s)}"

        if not run("tcp", tcp):
            return TestResult(False, steps, identity)

        plc = guarded(LogixDriver(self.path, init_tags=False), s.timeout_s)
        plc.socket_timeout = s.timeout_s
        self._opening = plc

        def handshake(st):
            try:
                registered = CIPDriver.open(plc)  # socket + RegisterSession, without LogixDriver's tag upload
            except PycommError as exc:
                raise self._open_error(exc, "RegisterSession") from None
            if not registered:
                raise DriverError(PROTOCOL_ERROR, "the device did not register an EtherNet/IP session",
                                  self._not_logix_suggestion())
            try:
                with_forward_open(lambda _plc: None)(plc)
            except ResponseError:
                detail = ""
                try:  # ask along the same route without a connection to learn why the Forward Open failed
                    plc.get_plc_info()
                except PycommError as exc:
                    detail = chain_text(exc)
                routed = self._route_error(detail)
                if routed is not None:
                    raise routed from None
                raise DriverError(DEVICE_ERROR, f"the device refused the Forward Open along {self._where()}"
                                                f"{': ' + detail if detail else ''}",
                                  "Check the slot or route of the controller, and that it has a free connection.") \
                    from None
            except CommError as exc:
                raise self._open_error(exc, "Forward Open") from None
            large = plc._cfg.get("extended forward open")  # which Forward Open worked (pycomm3 1.2.16 keeps it here)
            st.detail = (f"session registered; {'Large ' if large else ''}Forward Open along {self._where()}, "
                         f"connection size {plc.connection_size} bytes")

        def ident(st):
            try:
                listed = plc._list_identity() or {}  # ListIdentity (encapsulation), answered by the Ethernet port
                # what LogixDriver.open() does before the tag upload: identity over the route and program name
                plc._initialize_driver(init_tags=False, init_program_tags=False)
            except CommError as exc:
                raise self._link_lost(exc, "identity") from None
            except PycommError as exc:
                routed = self._route_error(chain_text(exc))
                raise (routed or DriverError(PROTOCOL_ERROR, f"identity: {chain_text(exc)}",
                                             self._not_logix_suggestion())) from None
            info = plc.info
            rev = info.get("revision", {})
            identity.update(
                vendor=info.get("vendor"), product_type=info.get("product_type"),
                product_name=info.get("product_name"), product_code=info.get("product_code"),
                revision=f"{rev.get('major')}.{rev.get('minor')}", serial=info.get("serial"),
                program_name=info.get("name"), keyswitch=info.get("keyswitch"),
                ethernet_product_name=listed.get("product_name"), ip_address=listed.get("ip_address"),
                path=self.path, plc_family=self.config["plc_family"])
            vendor = str(info.get("vendor") or "")
            ptype = str(info.get("product_type") or "")
            if "Rockwell" not in vendor or "Programmable Logic Controller" not in ptype:
                raise DriverError(PROTOCOL_ERROR, f"{self._where()} holds a {vendor or 'unknown vendor'} "
                                                  f"{ptype or 'device'} ({info.get('product_name')}), not a Logix "
                                                  "controller", self._not_logix_suggestion())
            st.detail = (f"{info.get('product_name')} rev {identity['revision']}, serial {info.get('serial')}, "
                         f"program {info.get('name')}, {info.get('keyswitch')}")

        def probe(st):
            try:
                tags = plc.get_tag_list(program=None)  # controller scope only: quick, and proves the upload works
            except CommError as exc:
                raise self._link_lost(exc, "tag list") from None
            except PycommError as exc:
                raise DriverError(PROTOCOL_ERROR, f"tag list upload failed: {chain_text(exc)}",
                                  "The controller did not give its tag list; check that it is a Logix "
                                  "controller with firmware 20 or later.") from None
            identity["controller_tags"] = len(tags)
            identity["programs"] = sorted(plc.info.get("programs", {}))
            name = probe_address
            if name is None:
                name = next((t["tag_name"] for t in tags if t.get("tag_type") == "atomic" and not t.get("dim")
                             and t.get("data_type") in TYPE_SIZES), None)
            if name is None:
                st.detail = f"{len(tags)} controller tags, none scalar to read"
                return
            prober = LogixDriverAdapter(self.settings)  # the driver's own resolution and read, on this connection
            prober._plc = plc
            try:
                addr = self.parse_address(name, "DINT")  # the real type comes from the controller
            except ConfigError as exc:
                raise DriverError(INVALID_ADDRESS, f"probe address {name!r}: {exc.message}") from None
            res = prober._resolve(addr)
            if res.request is None and res.actual_type is None:
                raise DriverError(INVALID_ADDRESS, f"probe read of {name}: {res.reason}",
                                  "Check the tag name (program tags are Program:<program>.<tag>).")
            prober._resolved = {}  # resolved above as a DINT; resolve again with the real type (a new dict: read's
            # prepared chunks are kept per resolutions dict)
            reading = prober.read(prober.plan([TagSpec(0, name, res.actual_type or "DINT", "probe")]))[0]
            if reading.quality == BAD:
                raise DriverError(reading.reason.split(":", 1)[0], f"probe read of {name}: {reading.reason}")
            st.detail = f"{name} = {reading.value!r} ({res.actual_type}); {len(tags)} controller tags"

        try:
            run("handshake", handshake) and run("identity", ident) and run("probe_read", probe)
        finally:
            self._opening = None
            self._safe_close(plc, dead=not all(step.ok for step in steps))
        return TestResult(all(step.ok for step in steps), steps, identity)

    # -- discovery --------------------------------------------------------------------------------------------------
    def discover(self, program: str | None = "*", max_array_elements: int = 100, **_options) -> list[DiscoveredTag]:
        """The controller's tags: controller scope, and program scope unless program=None (or only the program
        named). Arrays and structures are containers whose children are the readable elements and members;
        at most max_array_elements children per array (the description says when more exist)."""
        temporary = self._plc is None
        if temporary:
            self.connect()
        try:
            plc = self._require()
            if program not in (None, "*"):
                spelled = self._ensure_program(plc, program)
                if spelled is None:
                    raise DriverError(INVALID_ADDRESS, f"no program {program!r} in the controller (programs: "
                                                       f"{', '.join(sorted(plc.info.get('programs', {})))})")
            elif program == "*":
                for prog in list(plc.info.get("programs", {})):
                    self._ensure_program(plc, prog)
            out = []
            for name, info in plc.tags.items():
                in_program = name.startswith("Program:")
                if program is None and in_program:
                    continue
                if program not in (None, "*") and not name.lower().startswith(f"program:{program.lower()}."):
                    continue
                out.append(self._discovered_tag(name, info, max_array_elements))
            return out
        except CommError as exc:
            raise self._link_lost(exc, "discover") from None
        finally:
            if temporary:
                self.close()

    def _discovered_tag(self, name: str, info: dict, max_elements: int) -> DiscoveredTag:
        access = info.get("external_access")
        writable = {"Read/Write": True, "Read Only": False, "None": False}.get(access)
        dims = [d for d in info.get("dimensions", [])[: info.get("dim", 0)] if d]
        is_struct = info.get("tag_type") == "struct"
        dtype = info["data_type"]
        if not is_struct and dtype == "DWORD" and dims:
            dtype = "BOOL"
        scope = name.split(".", 1)[0][len("Program:"):] if name.startswith("Program:") else None
        where = f"program {scope}" if scope else "controller"
        return self._node(name, name.rsplit(".", 1)[-1] if scope else name, dtype, is_struct, dims, writable,
                          max_elements, f"{where} tag")

    def _node(self, address: str, label: str, dtype: Any, is_struct: bool, dims: list[int], writable, max_elements,
              where: str) -> DiscoveredTag:
        is_string = is_struct and "string" in dtype
        type_name = "STRING" if is_string else (dtype["name"] if is_struct else str(dtype))
        if dims:
            total = 1
            for d in dims:
                total *= d
            shape = ",".join(map(str, dims))
            node = DiscoveredTag(address, f"{type_name}[{shape}]", label,
                                 f"{where}, array of {total} {type_name}", writable)
            for n in range(min(total, max_elements)):
                idx = []
                rest = n
                for d in reversed(dims):
                    idx.append(rest % d)
                    rest //= d
                element = f"{address}[{','.join(map(str, reversed(idx)))}]"
                node.children.append(self._node(element, element.rsplit(".", 1)[-1], dtype, is_struct, [],
                                                writable, max_elements, "element"))
            if total > max_elements:
                node.description += f"; the first {max_elements} elements listed"
            return node
        if is_struct and not is_string:
            node = DiscoveredTag(address, type_name, label, f"{where}, structure {type_name}", writable)
            for mname in dtype.get("attributes", []):
                member = dtype["internal_tags"][mname]
                m_struct = member.get("tag_type") == "struct"
                mdims = [member["array"]] if member.get("array") else []
                mtype = member["data_type"]
                node.children.append(self._node(f"{address}.{mname}", mname, mtype, m_struct, mdims, writable,
                                                max_elements, "member"))
            return node
        return DiscoveredTag(address, type_name, label, where, writable)
