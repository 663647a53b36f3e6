"""CIP general status codes and the exception that carries one to the reply builder."""

from __future__ import annotations

from typing import Optional, Sequence

SUCCESS = 0x00
CONNECTION_FAILURE = 0x01
PATH_SEGMENT_ERROR = 0x04  # Logix: unknown symbol name, malformed path
PATH_DESTINATION_UNKNOWN = 0x05  # Logix: unknown instance, array index out of range
PARTIAL_TRANSFER = 0x06  # more data follows (fragmented read, paging, template read)
SERVICE_NOT_SUPPORTED = 0x08
INVALID_ATTRIBUTE_VALUE = 0x09
PERMISSION_DENIED = 0x0F
REPLY_TOO_LARGE = 0x11
NOT_ENOUGH_DATA = 0x13
ATTRIBUTE_NOT_SUPPORTED = 0x14
TOO_MUCH_DATA = 0x15
EMBEDDED_SERVICE_ERROR = 0x1E
GENERAL_ERROR = 0xFF  # Logix vendor-specific, the detail is in the extended status

# extended status words with general status 0x01 (connection manager)
EXT_CONNECTION_IN_USE = 0x0100
EXT_TRANSPORT_NOT_SUPPORTED = 0x0103
EXT_CONNECTION_NOT_FOUND = 0x0107
EXT_INVALID_CONNECTION_SIZE = 0x0109
EXT_OUT_OF_CONNECTIONS = 0x0113
EXT_PORT_NOT_AVAILABLE = 0x0311
EXT_LINK_ADDRESS_NOT_AVAILABLE = 0x0312
EXT_INVALID_SEGMENT = 0x0315
# extended status words with general status 0xFF (Logix)
EXT_OUT_OF_RANGE = 0x2104
EXT_BEYOND_END = 0x2105
EXT_TYPE_MISMATCH = 0x2107

# encapsulation header status
ENCAP_SUCCESS = 0x0000
ENCAP_INVALID_COMMAND = 0x0001
ENCAP_BAD_DATA = 0x0003
ENCAP_INVALID_SESSION = 0x0064
ENCAP_INVALID_LENGTH = 0x0065
ENCAP_UNSUPPORTED_PROTOCOL = 0x0069


class CipError(Exception):
    """A CIP error reply: general status, optional extended status words, optional data."""

    def __init__(self, status: int, ext: Sequence[int] = (), data: bytes = b"",
                 message: Optional[str] = None):
        super().__init__(message or f"CIP status 0x{status:02X}")
        self.status = status
        self.ext = tuple(ext)
        self.data = data
