"""Simulated Allen-Bradley ControlLogix controller: EtherNet/IP + CIP server.

Our built-in plant runs one :class:`LogixServer` per simulated line; the collectors poll
it with an unmodified pycomm3 1.2.16 ``LogixDriver``::

    from plant.enip import LogixServer, LogixTag, LogixUDT
    srv = LogixServer({"ProductionCount": LogixTag("DINT", 0),
                       "Temperatures": LogixTag("REAL", [0.0] * 8),
                       "OrderId": LogixTag("STRING", "ORD-1"),
                       "Program:MainProgram.StepNo": LogixTag("INT", 0)},
                      host="127.0.0.1", port=0)
    srv.start()
    with pycomm3.LogixDriver(f"127.0.0.1:{srv.port}") as plc:   # "ip:port", optionally "/slot"
        plc.read("ProductionCount")

pycomm3 and ports: ``LogixDriver("127.0.0.1:50123")`` connects to TCP port 50123 (its
``parse_connection_path`` splits ``ip:port`` off the path; port 1..65534); a slot goes
after it, ``"127.0.0.1:50123/0"``. Without ``:port`` it uses 44818.

Why our own server
------------------
The Python servers on PyPI do not serve an unmodified pycomm3 with its defaults:
cpppo 5.2.5 lacks Get_Instance_Attribute_List (0x55, so the tag upload of
``LogixDriver.open()`` fails), Read-Modify-Write and templates; cm-ethernetip 0.1.0 needs
a patch for 0x55 paging, has no templates (so no STRING tags through pycomm3, which
reads STRING as a structure) and installs a top-level ``ethernetip`` module that clashes
with another package. The subset a Logix client uses is small and well described, so
this package implements it directly on asyncio with no dependency. It was written from
the protocol's public description and from what pycomm3 1.2.16 sends and parses; no
code of other servers is copied.

Supported
---------
- Encapsulation over TCP: RegisterSession, UnRegisterSession, ListIdentity,
  ListServices, ListInterfaces, NOP, SendRRData (unconnected, UCMM) and SendUnitData
  (connected). Bad session handles, unknown commands and malformed items get an
  encapsulation error status; the connection stays open.
- Connection Manager: Forward Open (0x54), Large Forward Open (0x5B, up to 4002 bytes),
  Forward Close (0x4E), Unconnected Send (0x52) with a route of backplane port 1 to
  ``slot`` (or no route). Connections belong to their TCP client and vanish with it.
- Identity (class 0x01) Get_Attributes_All / Get_Attribute_Single (vendor 1, device
  type 0x0E, the given catalog name, revision and serial, keyswitch REMOTE RUN; the
  product code 166 is cosmetic); controller name (class 0x64, Get_Attributes_All); wall
  clock (class 0x8B, attribute 6 get and set: ``get_plc_time`` / ``set_plc_time``).
- Symbol class 0x6B: Get_Instance_Attribute_List (0x55) for controller scope and for each
  program (``Program:<name>`` symbol + class 0x6B), attributes 1, 2, 3, 5, 6, 7, 8, 10,
  paged to the connection size with status 0x06 and an inclusive start instance. The list
  also holds ``Program:``, ``Task:`` and ``Routine:`` entries, as a controller's does.
- Tags addressed by symbol instance id (what pycomm3 uses from revision 21), by name
  (program scope and revision < 21), by array element and by structure member.
  Read Tag (0x4C), Read Tag Fragmented (0x52), Write Tag (0x4D), Write Tag Fragmented
  (0x53), Read-Modify-Write (0x4E, integer types), Multiple Service Packet (0x0A).
- Types: BOOL, SINT, INT, DINT, LINT, USINT, UINT, UDINT, ULINT, REAL, LREAL, STRING
  (the Logix structure LEN + DATA[82]), one-dimensional arrays of all of them (a BOOL
  array is served as DWORDs, as Logix does), and user-defined structures
  (:class:`LogixUDT`) including nested ones, STRING members, array members and BOOL bit
  members, with their templates (class 0x6C: Get_Attribute_List 0x03, Template Read 0x4C).
- Errors as a controller reports them: unknown symbol name 0x04, unknown instance or index
  out of range 0x05, too many elements 0xFF/0x2105, wrong type on write 0xFF/0x2107, short
  or long write data 0x13/0x15, write to a read-only tag 0x0F, an embedded failure in a
  Multiple Service Packet 0x1E with each reply's own status.

Leniencies, on purpose
----------------------
- pycomm3 1.2.16 puts a single-tag Write Tag twice into one connected data item (see
  ``encap.undo_pycomm3_double_write``); the duplicate is ignored.
- pycomm3 1.2.16 sends the AND mask of Read-Modify-Write as 8 bytes whatever the type;
  the bytes past the mask size are ignored. Its 32-bit logical segments (format 3) are
  read like the standard format 2.
- Read Tag (0x4C) and Multiple Service Packet replies are not cut to the connection size
  (pycomm3 estimates the size of a single read without its header and would fail
  otherwise); only the paged services (0x52, 0x55, Template Read) respect it.

Not supported
-------------
Multi-dimensional arrays, BOOL arrays inside UDTs, alias tags, Produced/Consumed tags,
implicit (class 1, UDP) I/O connections, UDP ListIdentity discovery (broadcast
``LogixDriver.discover()`` will not find it), the template list (0x55 on class 0x6C),
Get_Attribute_List on symbol instances, CIP security, routing beyond the backplane slot.
String encodings other than Latin-1.

Threads: each server runs an asyncio loop (an ``asyncio.Protocol`` per client, no task
per request) in one daemon thread. ``set_value`` / ``set_values`` / ``get_value`` may be
called from any thread; a client request (a whole Multiple Service Packet included) sees
a consistent snapshot with respect to them. ``on_write`` runs in the server thread,
after the write and before the reply.

Robustness: a malformed request gets a CIP or encapsulation error status and the
connection stays usable; a stream that cannot be framed any more (UnRegisterSession, a
RegisterSession of the wrong length, half a packet left for 30 s, EOF) closes only that
client's connection. An unexpected exception while serving one request is logged and
answered with status 0xFF; it never reaches the loop.

Module map: ``types`` (atomic types, STRING, UDT layout and templates), ``tags`` (the
tag database, scopes, instance ids, path resolution), ``cip`` (path parsing, objects and
services), ``encap`` (encapsulation header, sessions, items), ``server`` (sockets,
thread, lifecycle, the public API).
"""

from .server import LogixServer
from .tags import LogixTag
from .types import LogixUDT

__all__ = ["LogixServer", "LogixTag", "LogixUDT"]
