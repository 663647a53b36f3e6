"""Waiting for something to happen in a running app, with a deadline that names what did not happen."""
from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.2):
    """predicate()'s first truthy value, looked at every interval seconds for up to timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last: {last!r})")
