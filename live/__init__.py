"""Live updates: the hub that fans out what the collectors publish (hub), the live service with the latest values
(service), the link between processes (bus), the collectors of other processes as a web process sees them
(remote_collectors) and the WebSocket routes (websocket; message schema in docs/live.md)."""
