"""OPC-UA addresses and values: the NodeId forms a tag may use (ns=2;s=..., ns=2;i=..., g=, b=, nsu=<uri>;...),
the built-in data types and their PLC aliases, and how a value the server sends becomes a tag's reading (or a
mismatch, a BAD reading, never an exception). The status codes that mean a bad address, bad credentials or a
security problem. Shared by the driver (collectors/drivers/opcua.py) and discovery (opcua_browse.py)."""
from __future__ import annotations

import base64
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from asyncua import ua
from asyncua.crypto import security_policies

from collectors.base import DEVICE_ERROR, INVALID_ADDRESS, ConfigError

# --- vocabulary --------------------------------------------------------------------------------------------------

POLICIES: dict[str, type] = {
    "None": security_policies.SecurityPolicyNone,
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
    "Basic256": security_policies.SecurityPolicyBasic256,
    "Basic128Rsa15": security_policies.SecurityPolicyBasic128Rsa15,
}
MODES = {"None": ua.MessageSecurityMode.None_, "Sign": ua.MessageSecurityMode.Sign,
         "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt}
MODE_NAMES = {v: k for k, v in MODES.items()}

INT_RANGES = {"SByte": (-2**7, 2**7 - 1), "Byte": (0, 2**8 - 1), "Int16": (-2**15, 2**15 - 1),
              "UInt16": (0, 2**16 - 1), "Int32": (-2**31, 2**31 - 1), "UInt32": (0, 2**32 - 1),
              "Int64": (-2**63, 2**63 - 1), "UInt64": (0, 2**64 - 1)}
TYPES = ("Boolean", *INT_RANGES, "Float", "Double", "String", "DateTime", "Variant")
ALIASES = {"BOOL": "Boolean", "BIT": "Boolean", "SINT": "SByte", "INT8": "SByte", "USINT": "Byte", "UINT8": "Byte",
           "INT": "Int16", "SHORT": "Int16", "UINT": "UInt16", "WORD": "UInt16", "DINT": "Int32", "LONG": "Int32",
           "UDINT": "UInt32", "DWORD": "UInt32", "LINT": "Int64", "ULINT": "UInt64", "LWORD": "UInt64",
           "REAL": "Float", "FLOAT32": "Float", "SINGLE": "Float", "LREAL": "Double", "FLOAT64": "Double",
           "TIME": "DateTime", "DATE_AND_TIME": "DateTime", "ANY": "Variant", "OBJECT": "Variant"}
_TYPE_LOOKUP = {t.upper(): t for t in TYPES} | ALIASES
BUILTIN_BY_ID = {1: "Boolean", 2: "SByte", 3: "Byte", 4: "Int16", 5: "UInt16", 6: "Int32", 7: "UInt32",
                 8: "Int64", 9: "UInt64", 10: "Float", 11: "Double", 12: "String", 13: "DateTime",
                 21: "String"}  # 21 LocalizedText, read as its text
INVALID_STATUS = {"BadNodeIdUnknown", "BadNodeIdInvalid", "BadAttributeIdInvalid", "BadNotReadable",
                  "BadUserAccessDenied", "BadIndexRangeInvalid", "BadIndexRangeNoData", "BadDataEncodingInvalid",
                  "BadDataEncodingUnsupported", "BadNotSupported", "BadTypeMismatch"}
AUTH_STATUS = {"BadUserAccessDenied", "BadIdentityTokenInvalid", "BadIdentityTokenRejected",
               "BadUserSignatureInvalid"}
SECURITY_STATUS = {"BadSecurityPolicyRejected", "BadSecurityModeRejected", "BadSecurityChecksFailed",
                   "BadCertificateInvalid", "BadCertificateUntrusted", "BadCertificateTimeInvalid",
                   "BadCertificateHostNameInvalid", "BadCertificateUriInvalid", "BadCertificateUseNotAllowed",
                   "BadCertificateIssuerUseNotAllowed", "BadCertificateRevoked", "BadCertificateIssuerRevoked",
                   "BadCertificateRevocationUnknown", "BadNonceInvalid", "BadApplicationSignatureInvalid"}
EXAMPLES = "'ns=2;s=LINE-011.ProductionCount', 'ns=2;i=1001' or 'nsu=urn:oee:plant;s=LINE-011.ProductionCount'"
NO_UPDATE_YET = "no update yet"
HAS_PROPERTY = ua.NodeId(ua.ObjectIds.HasProperty)
ACCESS_WRITE = 0x02


def canon(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def policy_name(uri_or_name: str) -> str:
    return uri_or_name.rsplit("#", 1)[-1]


# --- addresses ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpcUaAddress:
    """A parsed NodeId plus the tag's data type."""

    kind: str  # i, s, g, b
    identifier: Any  # int, str, uuid.UUID, bytes
    namespace: int | None = None  # index (ns=)
    namespace_uri: str | None = None  # URI (nsu=), resolved at connect
    data_type: str = "Variant"
    array_length: int | None = None  # '<Type>[n]'

    @property
    def key(self) -> str:
        """The node this address names, as text (two tags on the same node share one read item)."""
        ident = {"g": lambda v: str(v), "b": lambda v: base64.b64encode(v).decode()}.get(self.kind, str)(
            self.identifier)
        prefix = f"nsu={self.namespace_uri};" if self.namespace_uri else (
            f"ns={self.namespace};" if self.namespace else "")
        return f"{prefix}{self.kind}={ident}"

    def node_id(self, namespaces: list[str] | None = None) -> ua.NodeId:
        ns = self.namespace or 0
        if self.namespace_uri is not None:
            if not namespaces or self.namespace_uri not in namespaces:
                raise KeyError(self.namespace_uri)
            ns = namespaces.index(self.namespace_uri)
        types = {"i": ua.NodeIdType.Numeric, "s": ua.NodeIdType.String, "g": ua.NodeIdType.Guid,
                 "b": ua.NodeIdType.ByteString}
        return ua.NodeId(self.identifier, ns, types[self.kind])


def _bad_address(address: str, why: str) -> ConfigError:
    return ConfigError("address", f"{address!r}: {why}; expected a NodeId such as {EXAMPLES}")


def parse_data_type(data_type: str) -> tuple[str, int | None]:
    text = (data_type or "").strip()
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*(\d*)\s*\])?$", text)
    base = _TYPE_LOOKUP.get(m.group(1).upper()) if m else None
    if base is None:
        raise ConfigError("data_type", f"{data_type!r} is not an OPC-UA data type; use one of {', '.join(TYPES)} "
                                       f"(or <Type>[n] for an array)")
    length = None
    if m.group(2) is not None:
        length = int(m.group(2)) if m.group(2) else 0  # 'Double[]': any length
        if base == "Variant":
            raise ConfigError("data_type", "an array needs an element type, e.g. Double[8]")
    return base, length


def parse_node_address(address: str, data_type: str = "Variant") -> OpcUaAddress:
    raw = address if isinstance(address, str) else ""
    text = raw.strip()
    if not text:
        raise _bad_address(raw, "the address is empty")
    if "=" not in text:
        raise _bad_address(raw, "this looks like a browse name or path, not a NodeId (discover() lists the "
                                "NodeIds of a server)")
    namespace = uri = None
    rest = text
    while True:
        head = rest.split("=", 1)[0].strip().lower()
        if head not in ("ns", "nsu", "srv"):
            break
        value, sep, rest = rest.split("=", 1)[1].partition(";")
        if not sep:
            raise _bad_address(raw, f"nothing after {head}=...; the identifier (i=, s=, g= or b=) is missing")
        value = value.strip()
        if head == "srv":
            raise _bad_address(raw, "server indexes (srv=) are not supported; address the server directly")
        if namespace is not None or uri is not None:
            raise _bad_address(raw, "give the namespace once, as ns=<index> or nsu=<uri>")
        if head == "ns":
            if not value.isdigit() or int(value) > 65535:
                raise _bad_address(raw, f"namespace index {value!r} must be a number from 0 to 65535")
            namespace = int(value)
        else:
            if not value:
                raise _bad_address(raw, "nsu= needs the namespace URI")
            uri = value
    kind, sep, ident = rest.partition("=")
    kind = kind.strip().lower()
    if not sep or kind not in ("i", "s", "g", "b"):
        raise _bad_address(raw, f"unknown identifier type {kind!r}; use i= (numeric), s= (string), g= (GUID) or "
                                f"b= (ByteString)")
    if kind == "i":
        if not ident.strip().isdigit() or int(ident) > 2**32 - 1:
            raise _bad_address(raw, f"numeric identifier {ident!r} must be a whole number from 0 to 4294967295")
        value: Any = int(ident)
    elif kind == "s":
        if not ident:
            raise _bad_address(raw, "the string identifier after s= is empty")
        value = ident
    elif kind == "g":
        try:
            value = uuid.UUID(ident.strip())
        except ValueError:
            raise _bad_address(raw, f"{ident!r} is not a GUID (like 72962b91-fa75-4ae6-8d28-b404dc7daf63)") from None
    else:
        try:
            value = base64.b64decode(ident.strip(), validate=True)
        except ValueError:
            raise _bad_address(raw, f"{ident!r} is not base64") from None
        if not value:
            raise _bad_address(raw, "the ByteString identifier after b= is empty")
    dtype, length = parse_data_type(data_type)
    return OpcUaAddress(kind, value, namespace, uri, dtype, length)


# --- values ------------------------------------------------------------------------------------------------------


class ValueMismatch(ValueError):
    pass


def _scalar(value: Any, dtype: str) -> Any:
    if isinstance(value, ua.LocalizedText):
        value = value.Text
    elif isinstance(value, ua.QualifiedName):
        value = value.Name
    if dtype == "Variant":
        if value is None:
            raise ValueMismatch("the server sent no value")
        if isinstance(value, datetime):
            return epoch_seconds(value)
        if isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return _finite(value)
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).hex()
        if isinstance(value, (list, tuple)):
            return [_scalar(v, "Variant") for v in value]
        return str(value)
    if value is None:
        raise ValueMismatch(f"the server sent no value (expected {dtype})")
    if dtype == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value != 0
        raise ValueMismatch(f"value is a {_kind(value)} ({show_value(value)}), the tag's data type is Boolean")
    if dtype in INT_RANGES:
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                raise ValueMismatch(f"value {show_value(value)} is not a whole number, the tag's data type is {dtype}")
            value = int(value)
        elif not isinstance(value, int):
            raise ValueMismatch(f"value is a {_kind(value)} ({show_value(value)}), the tag's data type is {dtype}")
        low, high = INT_RANGES[dtype]
        if not low <= value <= high:
            raise ValueMismatch(f"value {value} does not fit {dtype} ({low}..{high})")
        return value
    if dtype in ("Float", "Double"):
        if isinstance(value, (int, float)):
            return _finite(float(value))
        raise ValueMismatch(f"value is a {_kind(value)} ({show_value(value)}), the tag's data type is {dtype}")
    if dtype == "String":
        if isinstance(value, str):
            return value
        if isinstance(value, (bool, int, float)):
            return str(value)
        raise ValueMismatch(f"value is a {_kind(value)}, the tag's data type is String")
    if dtype == "DateTime":
        if isinstance(value, datetime):
            return epoch_seconds(value)
        raise ValueMismatch(f"value is a {_kind(value)} ({show_value(value)}), the tag's data type is DateTime")
    raise ValueMismatch(f"unsupported data type {dtype}")


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueMismatch(f"value is {value} (not a number)")
    return value


def epoch_seconds(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def _kind(value: Any) -> str:
    """The OPC-UA name of a Python value's type, for messages."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    if isinstance(value, datetime):
        return "DateTime"
    if isinstance(value, (bytes, bytearray)):
        return "ByteString"
    return type(value).__name__


def show_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def convert_value(value: Any, dtype: str, array_length: int | None) -> Any:
    """The reading value for a tag of (dtype, array_length); raises ValueMismatch when the value does not fit."""
    if array_length is None:
        if isinstance(value, (list, tuple)) and dtype != "Variant":
            raise ValueMismatch(f"value is an array of {len(value)}, the tag's data type is the scalar {dtype}")
        return _scalar(value, dtype)
    if not isinstance(value, (list, tuple)):
        raise ValueMismatch(f"value is a scalar {_kind(value)}, the tag's data type is {dtype}[{array_length}]")
    if array_length and len(value) != array_length:
        raise ValueMismatch(f"value has {len(value)} elements, the tag's data type is {dtype}[{array_length}]")
    return [_scalar(v, dtype) for v in value]


def status_reason(sc: ua.StatusCode) -> str:
    name = sc.name
    kind = INVALID_ADDRESS if name in INVALID_STATUS else DEVICE_ERROR
    return f"{kind}: {name}"
