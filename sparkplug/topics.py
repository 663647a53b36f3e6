"""Sparkplug B topic names, sequence numbers and the well-known metric names.

    spBv1.0/<group_id>/<NBIRTH|NDATA|NDEATH|NCMD>/<edge_node_id>
    spBv1.0/<group_id>/<DBIRTH|DDATA|DDEATH|DCMD>/<edge_node_id>/<device_id>
    spBv1.0/STATE/<host_id>                                   (a primary host application's online state)
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

NAMESPACE = "spBv1.0"
BD_SEQ = "bdSeq"                          # the birth/death sequence metric of NBIRTH and NDEATH
REBIRTH = "Node Control/Rebirth"          # NCMD metric asking an edge node for its BIRTH certificates again
SEQ_MODULUS = 256                         # seq and bdSeq count 0..255 and wrap


class MessageType(str, enum.Enum):
    NBIRTH = "NBIRTH"
    NDATA = "NDATA"
    NDEATH = "NDEATH"
    NCMD = "NCMD"
    DBIRTH = "DBIRTH"
    DDATA = "DDATA"
    DDEATH = "DDEATH"
    DCMD = "DCMD"

    @property
    def is_device(self) -> bool:
        return self.value.startswith("D")


class TopicError(ValueError):
    """A topic or an id that is not a Sparkplug B name."""


def check_id(value: str, what: str) -> str:
    """A group, edge node, device or host id: non-empty, no '/', '+' or '#' (they would change the topic's shape)."""
    if not isinstance(value, str) or not value:
        raise TopicError(f"{what}: must be a non-empty text")
    for bad in "/+#":
        if bad in value:
            raise TopicError(f"{what}: {value!r} may not contain {bad!r}")
    return value


@dataclass(frozen=True)
class Topic:
    group_id: str
    message_type: MessageType
    edge_node_id: str
    device_id: str | None = None

    def __post_init__(self):
        check_id(self.group_id, "group_id")
        check_id(self.edge_node_id, "edge_node_id")
        kind = MessageType(self.message_type)
        object.__setattr__(self, "message_type", kind)
        if kind.is_device:
            check_id(self.device_id, "device_id")
        elif self.device_id is not None:
            raise TopicError(f"{kind.value} is a node message and has no device_id")

    def __str__(self) -> str:
        parts = [NAMESPACE, self.group_id, self.message_type.value, self.edge_node_id]
        if self.device_id is not None:
            parts.append(self.device_id)
        return "/".join(parts)

    @classmethod
    def parse(cls, topic: str) -> "Topic":
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
            raise TopicError(f"{topic!r} is not a Sparkplug B topic ({NAMESPACE}/group/TYPE/edge[/device])")
        try:
            kind = MessageType(parts[2])
        except ValueError:
            raise TopicError(f"{topic!r}: unknown message type {parts[2]!r}") from None
        if kind.is_device != (len(parts) == 5):
            raise TopicError(f"{topic!r}: {kind.value} " + ("needs" if kind.is_device else "has no") + " device id")
        return cls(parts[1], kind, parts[3], parts[4] if len(parts) == 5 else None)


def node_filter(group_id: str, edge_node_id: str) -> list[str]:
    """Subscriptions that receive every message of one edge node and its devices."""
    check_id(group_id, "group_id")
    check_id(edge_node_id, "edge_node_id")
    return [f"{NAMESPACE}/{group_id}/{kind}/{edge_node_id}" + suffix
            for kind, suffix in (("+", ""), ("+", "/+"))]


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/STATE/{check_id(host_id, 'host_id')}"


def next_seq(seq: int) -> int:
    return (seq + 1) % SEQ_MODULUS


def is_next(previous: int | None, seq: int | None) -> bool:
    """True when seq follows previous (with the wrap at 255); a missing seq never follows."""
    return previous is not None and seq is not None and seq == next_seq(previous)
