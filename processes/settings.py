"""Settings from the command line and the environment: one place, validated once, named in every error."""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("all", "web", "collector")


class SettingsError(ValueError):
    """A setting with a bad value; the message names the option and the environment variable."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8050
    database_url: str = ""  # empty: SQLite under data_dir
    data_dir: Path = Path("data")
    demo: bool = True
    role: str = "all"
    # Role all: collect in a child process (`app.py --role collector`), so that polling 50 PLCs does not hold the
    # interpreter lock the pages' callbacks wait for. The command line turns it on (--single-process: off); a
    # Runtime built in a test or a tool keeps its collectors in its own threads.
    collector_process: bool = False
    timescaledb: str = "auto"
    samples_retention_days: int | None = 365
    compress_after_days: int | None = 7
    plant_seed: int = 1
    plant_time_scale: float = 1.0
    plant_base_port: int = 0
    metrics_port: int = 0  # collector role: serve /metrics and /healthz on this port (0: off)
    plant_file: str = ""  # a plant layout YAML for the simulated plant; empty: plant/default_plant.yaml
    node_name: str = field(default_factory=lambda: os.uname().nodename)
    log_level: str = "INFO"
    log_format: str = "text"  # text, or json: one object a line for a log stack (processes/logs.py)
    frame_ancestors: tuple[str, ...] = ("'self'",)  # who may show the pages in a frame (CSP frame-ancestors)
    live_bus: str = "auto"  # auto: redis when redis_url is set, else postgresql on PostgreSQL, else off
    redis_url: str = ""
    live_channel: str = "oee_live"
    live_bus_address: tuple[str, int] | None = None  # local bus, collector side: the web process's socket
    ws_heartbeat_s: float = 15.0
    ws_stall_timeout_s: float = 60.0
    anonymous_viewing: str = "auto"  # auto: on only while listening on loopback (auth.web)
    cookie_secure: str = "auto"  # auto: Secure session cookie when the request came over https
    allowed_hosts: tuple[str, ...] = ()  # Host header names served (auth/guards.py); empty: loopback names on loopback
    request_timeout_s: float = 30.0  # the deadline of each request's work (db/deadline.py); 0: none
    # The Unified Namespace (uns/): publish the plant to an MQTT broker; off while mqtt_url is empty.
    mqtt_url: str = ""  # mqtt://user:pass@host:1883 or mqtts://; holds a password: show mqtt_broker.shown instead
    mqtt_ca_file: str = ""
    mqtt_prefix: str = "oee"
    mqtt_buffer: int = 10_000  # messages kept while the broker is away
    sparkplug_group: str = ""  # a Sparkplug B edge node too, in this group (empty: off)
    sparkplug_node: str = ""  # its edge node id (empty: the site's name)
    sparkplug_primary_host: str = ""  # publish only while this primary host application's STATE says online

    @property
    def mqtt_broker(self):
        """uns.broker.Broker of mqtt_url (validated by from_args), or None when publishing is off."""
        if not self.mqtt_url:
            return None
        from uns.broker import parse_broker_url

        return parse_broker_url(self.mqtt_url, self.mqtt_ca_file)
    # smtp://user:pass@host:port (smtps:// for TLS) for alert e-mails; empty: no e-mail. Never in a repr or a log.
    smtp_url: str = field(default="", repr=False)
    smtp_from: str = "oee@localhost"  # the sender of alert e-mails

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'oee.sqlite3'}"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"environment variable {name}={raw!r}: expected 1/0, true/false, yes/no or on/off")


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="python app.py",
        usage="python app.py [options]\n       python app.py {create-admin,grafana-role,oee-summary} [options]",
        description="OEE analytics: collectors, storage and dashboards. With the default role 'all' the app runs\n"
                    "as two processes: the web server (pages, API, WebSockets) and a collector process it starts\n"
                    "and watches (--single-process: one). Every option can also be set by the environment\n"
                    "variable shown.",
        epilog="commands (each has its own --help):\n"
               "  create-admin   create an admin user, or --reset one's password\n"
               "  grafana-role   create or update a read-only PostgreSQL role for Grafana\n"
               "  oee-summary    compute the OEE by hour and shift that Grafana reads\n\n"
               "first start: the app prints a one-time password for the user 'admin' to its console (once);\n"
               "log in at /login and choose your own. The machine wizard is at /machine-config/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default=env("OEE_HOST", "127.0.0.1"), help="address to listen on [OEE_HOST] (default 127.0.0.1)")
    p.add_argument("--port", default=env("OEE_PORT", "8050"), help="HTTP port [OEE_PORT] (default 8050)")
    p.add_argument("--database-url", default=env("OEE_DATABASE_URL", ""),
                   help="sqlite:///path or postgresql://user:pass@host:5432/db [OEE_DATABASE_URL] "
                        "(default: SQLite file under the data folder)")
    p.add_argument("--data-dir", default=env("OEE_DATA_DIR", "data"), help="folder for the SQLite file and the spool [OEE_DATA_DIR]")
    p.add_argument("--no-demo", action="store_true", default=not _env_bool("OEE_DEMO", True),
                   help="do not start the simulated plant [OEE_DEMO=0]")
    p.add_argument("--role", default=env("OEE_ROLE", "all"), help="all, web or collector [OEE_ROLE]")
    p.add_argument("--node-name", default=env("OEE_NODE_NAME", ""),
                   help="this collector's node: it polls the connections assigned to this name (collector_node), "
                        "so that several collector processes, on one host too, share the PLCs [OEE_NODE_NAME] "
                        "(default: the host's name)")
    p.add_argument("--single-process", action="store_true", default=_env_bool("OEE_SINGLE_PROCESS", False),
                   help="role all: poll the PLCs in the web server's own process instead of a child collector "
                        "process [OEE_SINGLE_PROCESS=1] (slower pages with many PLCs; for debugging)")
    p.add_argument("--timescaledb", default=env("OEE_TIMESCALEDB", "auto"),
                   help="auto (use it when the server has it), off, or require [OEE_TIMESCALEDB]")
    p.add_argument("--retention-days", default=env("OEE_RETENTION_DAYS", "365"),
                   help="days of raw samples to keep; 0 keeps everything [OEE_RETENTION_DAYS]")
    p.add_argument("--compress-after-days", default=env("OEE_COMPRESS_AFTER_DAYS", "7"),
                   help="TimescaleDB: compress samples older than this; 0 turns it off [OEE_COMPRESS_AFTER_DAYS]")
    p.add_argument("--seed", default=env("OEE_PLANT_SEED", "1"), help="simulated plant: random seed [OEE_PLANT_SEED]")
    p.add_argument("--time-scale", default=env("OEE_PLANT_TIME_SCALE", "1"),
                   help="simulated plant: simulated seconds per real second [OEE_PLANT_TIME_SCALE]")
    p.add_argument("--plant-base-port", default=env("OEE_PLANT_BASE_PORT", "0"),
                   help="simulated plant: first TCP port of its PLCs, 0 for free ports [OEE_PLANT_BASE_PORT]")
    p.add_argument("--metrics-port", default=env("OEE_METRICS_PORT", "0"),
                   help="collector role: serve /metrics and /healthz on this port of --host, e.g. 9108 "
                        "[OEE_METRICS_PORT] (default 0: off; the web roles serve them on --port)")
    p.add_argument("--plant-file", default=env("OEE_PLANT_FILE", ""),
                   help="simulated plant: layout YAML (see plant/README.md) [OEE_PLANT_FILE] "
                        "(default plant/default_plant.yaml)")
    p.add_argument("--live-bus", default=env("OEE_LIVE_BUS", "auto"),
                   help="live updates between processes: auto (Redis when --redis-url is set, else PostgreSQL "
                        "LISTEN/NOTIFY when the database is PostgreSQL, else none), postgresql, redis or off "
                        "[OEE_LIVE_BUS]")
    p.add_argument("--redis-url", default=env("OEE_REDIS_URL", ""),
                   help="redis://host:6379/0: carry live updates over Redis pub/sub [OEE_REDIS_URL]")
    p.add_argument("--live-channel", default=env("OEE_LIVE_CHANNEL", "oee_live"),
                   help="channel name (prefix) of the live updates on PostgreSQL or Redis [OEE_LIVE_CHANNEL]")
    p.add_argument("--ws-heartbeat", default=env("OEE_WS_HEARTBEAT_S", "15"),
                   help="seconds between WebSocket heartbeats [OEE_WS_HEARTBEAT_S] (default 15)")
    p.add_argument("--ws-stall-timeout", default=env("OEE_WS_STALL_TIMEOUT_S", "60"),
                   help="disconnect a WebSocket client that has taken no data for this many seconds "
                        "[OEE_WS_STALL_TIMEOUT_S] (default 60)")
    p.add_argument("--log-level", default=env("OEE_LOG_LEVEL", "INFO"), help="DEBUG, INFO, WARNING or ERROR [OEE_LOG_LEVEL]")
    p.add_argument("--log-format", default=env("OEE_LOG_FORMAT", "text"),
                   help="text, or json: one JSON object a line (time, level, logger, role, message, connection, "
                        "machine, exception) for Loki, Elastic or journald [OEE_LOG_FORMAT] (default text)")
    p.add_argument("--frame-ancestors", default=env("OEE_FRAME_ANCESTORS", "'self'"),
                   help="origins allowed to show the pages in a frame, e.g. Grafana: "
                        "\"'self' https://grafana.example.com:3000\"; 'none' forbids framing "
                        "[OEE_FRAME_ANCESTORS] (default 'self')")
    p.add_argument("--anonymous-viewing", default=env("OEE_ANONYMOUS_VIEWING", "auto"),
                   help="let visitors who are not logged in view dashboards, exports, the read-only API and the "
                        "WebSocket: auto (only while --host is a loopback address), on or off; configuration and "
                        "every change always need a login [OEE_ANONYMOUS_VIEWING] (default auto)")
    p.add_argument("--allowed-hosts", default=env("OEE_ALLOWED_HOSTS", ""),
                   help="Host header names the web server answers, comma-separated, e.g. "
                        "\"oee.plant.local,10.0.0.5\"; .plant.local also allows its subdomains; * allows any "
                        "(unsafe with anonymous viewing: DNS rebinding) [OEE_ALLOWED_HOSTS] (default: localhost, "
                        "127.0.0.1 and ::1 while --host is a loopback address, else any)")
    p.add_argument("--request-timeout", default=env("OEE_REQUEST_TIMEOUT_S", "30"),
                   help="seconds a request's work may take before it is stopped and answered 503 "
                        "[OEE_REQUEST_TIMEOUT_S] (default 30)")
    p.add_argument("--smtp-url", default=env("OEE_SMTP_URL", ""),
                   help="smtp://user:password@host:587 (or smtps://, port 465) for alert e-mails [OEE_SMTP_URL]; the "
                        "password is never shown")
    p.add_argument("--smtp-from", default=env("OEE_SMTP_FROM", "oee@localhost"),
                   help="the sender address of alert e-mails [OEE_SMTP_FROM] (default oee@localhost)")
    p.add_argument("--cookie-secure", default=env("OEE_COOKIE_SECURE", "auto"),
                   help="mark the session cookie Secure: auto (when the request came over https), on (always; "
                        "behind a TLS-terminating proxy), or off [OEE_COOKIE_SECURE] (default auto)")
    add_mqtt_arguments(p)
    return p


def add_mqtt_arguments(p: argparse.ArgumentParser) -> None:
    """The Unified Namespace publisher's options (uns/, docs/uns.md)."""
    env = os.environ.get
    p.add_argument("--mqtt-url", default=env("OEE_MQTT_URL", ""),
                   help="publish the plant as a Unified Namespace to this MQTT broker: mqtt://user:pass@host:1883 "
                        "or mqtts://host:8883 [OEE_MQTT_URL] (default: off)")
    p.add_argument("--mqtt-ca-file", default=env("OEE_MQTT_CA_FILE", ""),
                   help="mqtts://: the CA certificate(s) the broker's certificate is checked against, PEM "
                        "[OEE_MQTT_CA_FILE] (default: the system's)")
    p.add_argument("--mqtt-prefix", default=env("OEE_MQTT_PREFIX", "oee"),
                   help="first level(s) of the published topics [OEE_MQTT_PREFIX] (default oee)")
    p.add_argument("--mqtt-buffer", default=env("OEE_MQTT_BUFFER", "10000"),
                   help="messages kept in memory while the broker is away; past it the oldest are dropped and "
                        "counted [OEE_MQTT_BUFFER] (default 10000)")
    p.add_argument("--sparkplug-group", default=env("OEE_SPARKPLUG_GROUP", ""),
                   help="with --mqtt-url: also be a Sparkplug B edge node in this group [OEE_SPARKPLUG_GROUP]")
    p.add_argument("--sparkplug-node", default=env("OEE_SPARKPLUG_NODE", ""),
                   help="the Sparkplug edge node id [OEE_SPARKPLUG_NODE] (default: the site's name)")
    p.add_argument("--sparkplug-primary-host", default=env("OEE_SPARKPLUG_PRIMARY_HOST", ""),
                   help="publish Sparkplug only while this primary host application is online "
                        "(spBv1.0/STATE/<id>) [OEE_SPARKPLUG_PRIMARY_HOST]")


def mqtt_settings(args: argparse.Namespace) -> dict:
    """The Settings fields of the MQTT options, or SettingsError naming the option."""
    from uns.broker import parse_broker_url
    from uns.topics import check_prefix

    out = {"mqtt_url": args.mqtt_url.strip(), "mqtt_ca_file": args.mqtt_ca_file}
    if out["mqtt_url"]:
        try:
            parse_broker_url(out["mqtt_url"], args.mqtt_ca_file)
        except ValueError as exc:
            option = "--mqtt-ca-file [OEE_MQTT_CA_FILE]" if "CA file" in str(exc) else "--mqtt-url [OEE_MQTT_URL]"
            raise SettingsError(f"{option}: {exc}") from None
    elif args.mqtt_ca_file:
        raise SettingsError("--mqtt-ca-file [OEE_MQTT_CA_FILE]: given without --mqtt-url [OEE_MQTT_URL]")
    try:
        out["mqtt_prefix"] = check_prefix(args.mqtt_prefix)
    except ValueError as exc:
        raise SettingsError(f"--mqtt-prefix [OEE_MQTT_PREFIX]: {exc}") from None
    out["mqtt_buffer"] = _int(args.mqtt_buffer, "--mqtt-buffer", "OEE_MQTT_BUFFER", 1, 10_000_000)
    for option, env_name, key in (("--sparkplug-group", "OEE_SPARKPLUG_GROUP", "sparkplug_group"),
                                  ("--sparkplug-node", "OEE_SPARKPLUG_NODE", "sparkplug_node"),
                                  ("--sparkplug-primary-host", "OEE_SPARKPLUG_PRIMARY_HOST",
                                   "sparkplug_primary_host")):
        value = getattr(args, key).strip()
        if any(ch in value for ch in "/+#\x00"):
            raise SettingsError(f"{option} [{env_name}]: {value!r} holds /, + or #, which a Sparkplug id cannot")
        out[key] = value
    if (out["sparkplug_node"] or out["sparkplug_primary_host"]) and not out["sparkplug_group"]:
        raise SettingsError("--sparkplug-group [OEE_SPARKPLUG_GROUP]: needed by --sparkplug-node and "
                            "--sparkplug-primary-host")
    if out["sparkplug_group"] and not out["mqtt_url"]:
        raise SettingsError("--sparkplug-group [OEE_SPARKPLUG_GROUP]: needs the broker, --mqtt-url [OEE_MQTT_URL]")
    return out


_ORIGIN = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*:"  # a scheme alone: https:
    r"|(?:[a-z][a-z0-9+.-]*://)?(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::(?:\d{1,5}|\*))?)$",  # [scheme://]host[:port]
    re.IGNORECASE)


def parse_frame_ancestors(raw: str) -> tuple[str, ...]:
    """CSP frame-ancestors sources from a list separated by spaces or commas: 'self', 'none', *, a scheme (https:)
    or an origin (https://grafana.example.com:3000, http://*.plant.local). self and none may be written without
    quotes. Raises SettingsError naming the first bad entry."""
    option = "--frame-ancestors [OEE_FRAME_ANCESTORS]"
    items = [t for t in re.split(r"[\s,]+", raw or "") if t]
    if not items:
        raise SettingsError(f"{option}: empty; give 'self', 'none' or the origins allowed to frame the pages")
    out: list[str] = []
    for item in items:
        bare = item.strip("'\"").lower()
        if bare in ("self", "none"):
            source = f"'{bare}'"
        elif item == "*" or _ORIGIN.match(item.rstrip("/")):
            source = item.rstrip("/")
        else:
            raise SettingsError(f"{option}: {item!r} is not an origin; use 'self', 'none', * or origins such as "
                                "https://grafana.example.com:3000")
        if source not in out:
            out.append(source)
    if "'none'" in out and len(out) > 1:
        raise SettingsError(f"{option}: 'none' cannot be combined with other sources")
    return tuple(out)


_HOST_NAME = re.compile(r"^(?:\*|\.?[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?)$",
                        re.IGNORECASE)


def parse_allowed_hosts(raw: str) -> tuple[str, ...]:
    """Host names from a list separated by commas or spaces: names, IPv4 and IPv6 addresses ([::1] or ::1), .domain
    (it and its subdomains; *.domain is the same) or *. Empty: the default (auth.guards.default_allowed_hosts).
    Raises SettingsError naming the first bad entry."""
    import ipaddress

    out: list[str] = []
    for item in (t for t in re.split(r"[\s,]+", raw or "") if t):
        bare = item[1:] if item.startswith("*.") else item
        try:
            ipaddress.ip_address(bare.strip("[]"))
            ok = True
        except ValueError:
            ok = bool(_HOST_NAME.match(bare)) and len(bare) <= 253
        if not ok:
            raise SettingsError(f"--allowed-hosts [OEE_ALLOWED_HOSTS]: {item!r} is not a host name; give names such "
                                "as oee.plant.local, addresses such as 10.0.0.5 or [::1], .plant.local for a domain, "
                                "or * for any")
        if item not in out:
            out.append(item)
    return tuple(out)


def _int(value: str, option: str, env: str, lo: int, hi: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{option} [{env}]: {value!r} is not a whole number") from None
    if not lo <= number <= hi:
        raise SettingsError(f"{option} [{env}]: {number} is out of range; give a number from {lo} to {hi}")
    return number


def _seconds(value: str, option: str, env: str, lo: float, hi: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{option} [{env}]: {value!r} is not a number") from None
    if not lo <= number <= hi:
        raise SettingsError(f"{option} [{env}]: {number:g} is out of range; give seconds from {lo:g} to {hi:g}")
    return number


def from_args(argv: list[str] | None = None) -> Settings:
    args = build_parser().parse_args(argv)
    if args.role not in ROLES:
        raise SettingsError(f"--role [OEE_ROLE]: {args.role!r} is not a role; use one of {', '.join(ROLES)}")
    if args.timescaledb not in ("auto", "off", "require"):
        raise SettingsError(f"--timescaledb [OEE_TIMESCALEDB]: {args.timescaledb!r}; use auto, off or require")
    if args.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"--log-level [OEE_LOG_LEVEL]: {args.log_level!r}; use DEBUG, INFO, WARNING or ERROR")
    if args.log_format.lower() not in ("text", "json"):
        raise SettingsError(f"--log-format [OEE_LOG_FORMAT]: {args.log_format!r}; use text or json")
    try:
        time_scale = float(args.time_scale)
    except ValueError:
        raise SettingsError(f"--time-scale [OEE_PLANT_TIME_SCALE]: {args.time_scale!r} is not a number") from None
    if not 0 < time_scale <= 100_000:
        raise SettingsError(f"--time-scale [OEE_PLANT_TIME_SCALE]: {time_scale} must be above 0 and at most 100000")
    if args.live_bus not in ("auto", "postgresql", "redis", "off", "local"):
        raise SettingsError(f"--live-bus [OEE_LIVE_BUS]: {args.live_bus!r}; use auto, postgresql, redis or off")
    collector_process = args.role == "all" and not args.single_process
    live_bus_address = None
    if args.live_bus == "local":  # set by `python app.py` for the collector process it starts (processes/collector_process)
        raw = os.environ.get("OEE_LIVE_BUS_ADDRESS", "")
        host, _, port = raw.rpartition(":")
        if args.role != "collector" or not port.isdigit() or not os.environ.get("OEE_LIVE_BUS_KEY"):
            raise SettingsError("--live-bus [OEE_LIVE_BUS]: local is the link between `python app.py` and the "
                                "collector process it starts; use auto, postgresql, redis or off")
        live_bus_address = (host, int(port))
    if args.live_bus == "redis" and not args.redis_url:
        raise SettingsError("--live-bus [OEE_LIVE_BUS]: redis needs --redis-url [OEE_REDIS_URL]")
    if args.redis_url and not args.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"--redis-url [OEE_REDIS_URL]: {args.redis_url.split('@')[-1]!r}; "
                            "use redis://host:6379/0, rediss:// or unix://")
    if not args.live_channel.replace("_", "").isalnum() or len(args.live_channel) > 40:
        raise SettingsError(f"--live-channel [OEE_LIVE_CHANNEL]: {args.live_channel!r}; use letters, digits and _, "
                            "at most 40")
    if args.plant_file and not Path(args.plant_file).is_file():
        raise SettingsError(f"--plant-file [OEE_PLANT_FILE]: {args.plant_file!r} is not a file; give the path of a "
                            "plant layout YAML (plant/default_plant.yaml is an example)")
    if args.plant_file:
        from plant.layout import PlantFileError, load_layout

        try:
            load_layout(args.plant_file)  # checked here so that a bad file stops the start with its line number
        except PlantFileError as exc:
            raise SettingsError(f"--plant-file [OEE_PLANT_FILE]: {exc}") from None
    for option, env_name, value in (("--anonymous-viewing", "OEE_ANONYMOUS_VIEWING", args.anonymous_viewing),
                                     ("--cookie-secure", "OEE_COOKIE_SECURE", args.cookie_secure)):
        if value not in ("auto", "on", "off"):
            raise SettingsError(f"{option} [{env_name}]: {value!r}; use auto, on or off")
    heartbeat = _seconds(args.ws_heartbeat, "--ws-heartbeat", "OEE_WS_HEARTBEAT_S", 0.1, 3600)
    stall = _seconds(args.ws_stall_timeout, "--ws-stall-timeout", "OEE_WS_STALL_TIMEOUT_S", 1, 86400)
    request_timeout = _seconds(args.request_timeout, "--request-timeout", "OEE_REQUEST_TIMEOUT_S", 1, 3600)
    retention = _int(args.retention_days, "--retention-days", "OEE_RETENTION_DAYS", 0, 36500)
    compress = _int(args.compress_after_days, "--compress-after-days", "OEE_COMPRESS_AFTER_DAYS", 0, 36500)
    return Settings(
        host=args.host,
        port=_int(args.port, "--port", "OEE_PORT", 1, 65535),
        database_url=args.database_url,
        data_dir=Path(args.data_dir),
        demo=not args.no_demo,
        role=args.role,
        **({"node_name": args.node_name.strip()} if args.node_name.strip() else {}),
        collector_process=collector_process,
        timescaledb=args.timescaledb,
        samples_retention_days=retention or None,
        compress_after_days=compress or None,
        plant_seed=_int(args.seed, "--seed", "OEE_PLANT_SEED", 0, 2**31 - 1),
        plant_time_scale=time_scale,
        plant_base_port=_int(args.plant_base_port, "--plant-base-port", "OEE_PLANT_BASE_PORT", 0, 65000),
        plant_file=args.plant_file,
        metrics_port=_int(args.metrics_port, "--metrics-port", "OEE_METRICS_PORT", 0, 65535),
        log_level=args.log_level.upper(),
        log_format=args.log_format.lower(),
        frame_ancestors=parse_frame_ancestors(args.frame_ancestors),
        live_bus=args.live_bus,
        redis_url=args.redis_url,
        live_channel=args.live_channel,
        live_bus_address=live_bus_address,
        ws_heartbeat_s=heartbeat,
        ws_stall_timeout_s=stall,
        anonymous_viewing=args.anonymous_viewing,
        cookie_secure=args.cookie_secure,
        allowed_hosts=parse_allowed_hosts(args.allowed_hosts),
        request_timeout_s=request_timeout,
        **mqtt_settings(args),
        smtp_url=_smtp_url(args.smtp_url),
        smtp_from=args.smtp_from,
    )


def _smtp_url(raw: str) -> str:
    """Checked here so that a typo fails the start, not the first alert; the message never holds the password."""
    if not raw:
        return ""
    from urllib.parse import urlsplit

    try:
        url = urlsplit(raw)
        port = url.port
    except ValueError:
        url, port = None, None
    if url is None or url.scheme not in ("smtp", "smtps") or not url.hostname:
        shown = raw.split("@")[-1]
        raise SettingsError(f"--smtp-url [OEE_SMTP_URL]: ...@{shown} is not smtp://user:password@host:port or "
                            "smtps://...")
    del port
    return raw
