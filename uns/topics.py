"""Topic names of the Unified Namespace: <prefix>/<site>/<area>/<line>/<machine>/... (docs/uns.md).

A plant's names may hold characters that MQTT gives a meaning in a topic: `/` separates levels, `+` and `#` are
wildcards of subscriptions, and a topic must not hold U+0000. Each name becomes one level, percent-encoded as in a
URL for exactly these (and `%` itself, so that the encoding can be undone): `Line 4/5` -> `Line 4%2F5`,
`Filler #2` -> `Filler %232`. An empty name, or a machine without a line, area or site, is `_`.
"""
from __future__ import annotations

_ESCAPES = {"%": "%25", "/": "%2F", "+": "%2B", "#": "%23", "\x00": "%00"}
UNASSIGNED = "_"


def level(name) -> str:
    """One topic level from a plant name (see the module's docstring)."""
    text = "" if name is None else str(name)
    if not text:
        return UNASSIGNED
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def unescape(text: str) -> str:
    """The name a level was made from (for subscribers; the inverse of level() except for `_`)."""
    out, i = [], 0
    while i < len(text):
        code = text[i:i + 3]
        if text[i] == "%" and code.upper() in {v.upper() for v in _ESCAPES.values()}:
            out.append(next(k for k, v in _ESCAPES.items() if v.upper() == code.upper()))
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def check_prefix(prefix: str) -> str:
    """The topic prefix as given, or ValueError saying what is wrong: levels separated by /, no wildcard, not
    empty, no empty level, not starting with $ (the broker's own topics)."""
    if not prefix:
        raise ValueError("empty; give a topic prefix such as oee or acme/plant1")
    if any(ch in prefix for ch in "+#\x00"):
        raise ValueError(f"{prefix!r} holds a wildcard (+ or #) or NUL; a topic cannot")
    if prefix.startswith("$"):
        raise ValueError(f"{prefix!r} starts with $, which brokers keep for their own topics")
    if any(part == "" for part in prefix.split("/")):
        raise ValueError(f"{prefix!r} has an empty level (a leading, trailing or double /)")
    return prefix


def machine_topic(prefix: str, machine: dict) -> str:
    """<prefix>/<site>/<area>/<line>/<machine id> of a machine of the live catalog."""
    return "/".join([prefix, level(machine.get("site")), level(machine.get("area")), level(machine.get("line")),
                     level(machine.get("machine_id"))])
