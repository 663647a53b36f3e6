"""Sparkplug B, pure: the payload codec and metric datatypes (`payload.py`), topic names and sequence numbers
(`topics.py`). No network, no clock beyond `payload.now_ms()`; the MQTT clients live with their users (the
collectors' driver, the publisher)."""
