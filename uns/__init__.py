"""The plant published to an MQTT broker as a Unified Namespace (JSON topics, ISA-95 tree): docs/uns.md."""
