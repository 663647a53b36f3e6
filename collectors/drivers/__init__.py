"""The protocol drivers. Importing this package registers each one in collectors.base.REGISTRY."""
import importlib
import logging

log = logging.getLogger(__name__)

for _name in ("logix", "s7", "opcua", "modbus", "sparkplug", "mqtt_json"):
    try:
        importlib.import_module(f"collectors.drivers.{_name}")
    except ImportError as exc:  # a driver whose library is missing is left out, loudly
        log.error("protocol driver %s unavailable: %s", _name, exc)
