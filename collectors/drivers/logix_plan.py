"""Logix tag addresses and read planning: tag names with program scope, array indices and members, their sizes in a
read reply, and the chunks a plan packs them into (pycomm3's multi-request packets within one connection size).
No controller here: the driver (collectors/drivers/logix.py) runs the plan."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from collectors.base import ConfigError

# data type -> bytes of one value in a read reply (STRING: the 88-byte Logix structure LEN + DATA[82] + pad)
TYPE_SIZES = {"BOOL": 1, "SINT": 1, "INT": 2, "DINT": 4, "LINT": 8, "USINT": 1, "UINT": 2, "UDINT": 4,
              "ULINT": 8, "REAL": 4, "LREAL": 8, "STRING": 88}
INTEGER_TYPES = {"SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT"}
FLOAT_TYPES = {"REAL", "LREAL"}
NUMERIC_TYPES = INTEGER_TYPES | FLOAT_TYPES | {"BOOL"}
FAMILIES = ("ControlLogix", "CompactLogix")

CONNECTION_SIZE = 4000  # pycomm3's Large Forward Open connection size
MULTI_OVERHEAD = 10  # pycomm3's MULTISERVICE_READ_OVERHEAD
MAX_TAG_NAME = 40  # Logix limit for one name
MAX_SLOT = 16  # the largest ControlLogix chassis has 17 slots

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PART_RE = re.compile(r"(?P<name>[^\[\]]*)(?:\[(?P<index>[^\]]*)\])?\Z")
ADDRESS_FORMS = ("expected a Logix tag name such as ProductionCount, Program:MainProgram.StepNo, "
                  "StationTemps[2], Station[1].Count or StatusWord.3")


@dataclass(frozen=True)
class LogixAddress:
    """A parsed tag address. text is the canonical form sent to pycomm3."""

    text: str
    program: str | None  # 'MainProgram' for Program:MainProgram.StepNo
    parts: tuple[tuple[str, tuple[int, ...]], ...]  # (name, indices) from the scope's tag down to the member
    bit: int | None
    data_type: str

    @property
    def scope_tag(self) -> str:
        """The key of the tag in pycomm3's tag list: 'StationTemps', 'Program:MainProgram.StepNo'."""
        name = self.parts[0][0]
        return f"Program:{self.program}.{name}" if self.program else name


@dataclass
class LogixChunk:
    """One plc.read(*names): distinct addresses, the tag ids each one serves, pycomm3's size estimate."""

    names: list[str] = field(default_factory=list)
    tag_ids: dict[str, list[int]] = field(default_factory=dict)
    estimated_bytes: int = MULTI_OVERHEAD


@dataclass
class LogixPlan:
    chunks: list[LogixChunk]
    addresses: dict[str, LogixAddress]  # canonical address -> parsed
    budget: int = CONNECTION_SIZE

    @property
    def tag_count(self) -> int:
        return sum(len(ids) for chunk in self.chunks for ids in chunk.tag_ids.values())


@dataclass
class Resolved:
    request: str | None  # the name to send (the controller's spelling), None when the tag cannot be read
    actual_type: str | None = None
    reason: str | None = None  # BAD reason when request is None, UNCERTAIN reason when set with a request


def address_error(field_name: str, message: str) -> ConfigError:
    return ConfigError(field_name, message)


def parse_indices(text: str, part: str, address: str) -> tuple[int, ...]:
    items = [s.strip() for s in text.split(",")]
    if not 1 <= len(items) <= 3 or not all(s.isdigit() for s in items):
        raise address_error("address", f"{address!r}: bad array index [{text}] in {part!r}; an index is one to three "
                               "whole numbers, e.g. StationTemps[2] or Grid[1,2]")
    return tuple(int(s) for s in items)


def reply_bytes(addr: LogixAddress) -> int:
    """pycomm3's per-tag cost in a Multiple Service Packet: reply data + request message + 2."""
    if addr.bit is not None:
        data = 8  # the integer holding the bit, at most a LINT
    else:
        data = TYPE_SIZES.get(addr.data_type, 88)
        if addr.data_type == "BOOL" and addr.parts[-1][1]:  # a BOOL array element reads the DWORDs up to it
            data = 4 * (addr.parts[-1][1][0] // 32 + 1)
    path = 0
    if addr.program:
        seg = len("Program:") + len(addr.program)
        path += 2 + seg + seg % 2
    for name, indices in addr.parts:
        path += 2 + len(name) + len(name) % 2
        path += sum(2 if i < 256 else 4 if i < 65536 else 6 for i in indices)
    request = 1 + 1 + path + 2  # service, path size, path, element count
    return data + request + 2
