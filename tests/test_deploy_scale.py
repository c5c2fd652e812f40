"""The deployment files of several hosts: docker-compose.scale.yml and what it names,
Redis Sentinel, PgBouncer in transaction mode and HAProxy in front of every worker.
"""

from __future__ import annotations

import configparser
import os
import re
from urllib.parse import urlsplit

from tests.deploy_helpers import (
    ROOT,
    SCALE,
    compose,
    daphne_args,
    dockerfile_command,
    interpolate,
    scale,
)


def scale_services() -> dict:
    return scale()["services"]


def sentinel_conf() -> str:
    return (ROOT / "deploy" / "redis" / "sentinel.conf").read_text()


def haproxy_cfg() -> str:
    return (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()


def pgbouncer_ini() -> configparser.ConfigParser:
    config = configparser.ConfigParser(inline_comment_prefixes=None, comment_prefixes=(";", "#"))
    config.optionxform = str  # keys as written
    config.read(ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini")
    return config


def dependencies(service: dict) -> list[str]:
    """The services `service` depends on (compose's list or mapping form)."""
    return list(service.get("depends_on", []))


def test_scale_compose_requires_a_secret_and_sets_workers_per_host_by_one_variable():
    try:
        interpolate((ROOT / SCALE).read_text(), {})
    except AssertionError as error:
        assert "DJANGO_SECRET_KEY" in str(error)
    else:
        raise AssertionError("compose must refuse to start without DJANGO_SECRET_KEY")
    services = scale({"WORKERS_PER_HOST": "3"})["services"]
    assert services["web-a"]["deploy"]["replicas"] == services["web-b"]["deploy"]["replicas"] == 3


def test_scale_compose_names_only_things_that_exist():
    config = scale()
    services = config["services"]
    for name, service in services.items():
        for dependency in dependencies(service):
            assert dependency in services, f"{name} depends on {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name} mounts {source}"
            else:
                assert source in config["volumes"], f"{name} mounts {source}"
        build = service.get("build")
        if build is not None:
            assert (ROOT / build / "Dockerfile").is_file(), f"{name} builds {build}"
    # What the PgBouncer image copies from its context, and runs.
    dockerfile = (ROOT / "deploy" / "pgbouncer" / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE):
        assert (ROOT / "deploy" / "pgbouncer" / copied).is_file(), copied
    assert os.access(ROOT / "deploy" / "pgbouncer" / "start.sh", os.X_OK)
    assert "pgbouncer-start" in dockerfile and "USER postgres" in dockerfile
    # Whatever a service waits on to be healthy has a health check.
    for name, service in services.items():
        depends = service.get("depends_on")
        if isinstance(depends, dict):
            for dependency, condition in depends.items():
                if condition["condition"] == "service_healthy":
                    assert services[dependency]["healthcheck"]["test"], (name, dependency)


def test_every_host_starts_its_workers_through_the_one_entry_behind_the_proxy():
    services = scale_services()
    hosts = [name for name in services if name.startswith("web-")]
    assert hosts == ["web-a", "web-b"]
    for name in hosts:
        assert services[name]["command"] == dockerfile_command()
        assert "--proxy-headers" in services[name]["command"]
        assert services[name]["image"] == services["migrate"]["image"]
    assert services["web-a"] == services["web-b"]


def test_the_workers_redis_variables_name_the_sentinels_and_masters_the_file_defines():
    from chat.platform.redis.config import redis_shards

    services = scale_services()
    environment = services["web-a"]["environment"]
    config = redis_shards(environment)
    assert config.problems == () and config.warnings == ()
    assert "REDIS_URL" not in environment
    # Every Sentinel listed is a service running deploy/redis/sentinel.conf, on its port.
    [port] = re.findall(r"^port (\d+)$", sentinel_conf(), re.MULTILINE)
    sentinels = [host for host, _ in config.shards[0].sentinels]
    assert {port for _, port in config.shards[0].sentinels} == {int(port)}
    assert sentinels == ["sentinel-1", "sentinel-2", "sentinel-3"]
    for name in sentinels:
        assert "--sentinel" in " ".join(services[name]["command"])
        assert (
            "./deploy/redis/sentinel.conf:/etc/redis/sentinel.conf:ro" in services[name]["volumes"]
        )
    # The masters, in the workers' order, are the ones the Sentinels monitor.
    monitored = re.findall(
        r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", sentinel_conf(), re.MULTILINE
    )
    assert [shard.master for shard in config.shards] == [name for name, *_ in monitored]
    assert len(monitored) == 3
    for name, host, redis_port, quorum in monitored:
        # A majority of the Sentinels must agree that a master is down.
        assert len(sentinels) // 2 < int(quorum) <= len(sentinels)
        [down_after] = re.findall(
            rf"^sentinel down-after-milliseconds {name} (\d+)$", sentinel_conf(), re.MULTILINE
        )
        assert 1000 <= int(down_after) <= 5000
        # Each master is a service, announcing its name, with a replica of its own.
        master = services[host]["command"]
        assert master[master.index("--replica-announce-ip") + 1] == host
        assert "--replicaof" not in master
        replica = services[f"{host}-replica"]["command"]
        assert replica[replica.index("--replicaof") + 1 :][:2] == [host, redis_port]
        assert replica[replica.index("--replica-announce-ip") + 1] == f"{host}-replica"
    assert re.search(r"^sentinel resolve-hostnames yes$", sentinel_conf(), re.MULTILINE)


def test_the_workers_reach_postgresql_through_pgbouncer_in_transaction_mode():
    services = scale({"POSTGRES_PASSWORD": "pw"})["services"]
    url = urlsplit(services["web-a"]["environment"]["DATABASE_URL"])
    ini = pgbouncer_ini()
    bouncer = ini["pgbouncer"]
    assert services["web-a"]["environment"]["DATABASE_PGBOUNCER"] == "1"
    assert (url.hostname, url.port) == ("pgbouncer", int(bouncer["listen_port"]))
    assert bouncer["pool_mode"] == "transaction"
    # PgBouncer's database is the db service's, and it logs in as the workers do.
    database = dict(word.split("=") for word in ini["databases"][url.path.lstrip("/")].split())
    db = services["db"]["environment"]
    assert (database["host"], database["port"], database["dbname"]) == ("db", "5432", "chat")
    assert db["POSTGRES_DB"] == "chat"
    login = services["pgbouncer"]["environment"]
    assert login["PGBOUNCER_USER"] == url.username == db["POSTGRES_USER"]
    assert login["PGBOUNCER_PASSWORD"] == url.password == db["POSTGRES_PASSWORD"] == "pw"
    assert bouncer["auth_type"] == "scram-sha-256"
    # Pools stay below PostgreSQL's max_connections (100), room left for migrate and psql.
    pools = int(bouncer["default_pool_size"]) + int(bouncer["reserve_pool_size"])
    assert pools <= int(bouncer["max_db_connections"]) < 100
    # migrate goes straight to PostgreSQL; the cleanup runs as the workers do.
    migrate = services["migrate"]["environment"]
    assert urlsplit(migrate["DATABASE_URL"]).hostname == "db"
    assert migrate["DATABASE_PGBOUNCER"] == "0"


def test_scale_compose_cleans_up_uploads_as_docker_compose_does():
    services = scale_services()
    cleanup = services["cleanup"]
    assert cleanup["command"] == compose()["services"]["cleanup"]["command"]
    assert cleanup["volumes"] == services["web-a"]["volumes"]
    assert cleanup["environment"] == services["web-a"]["environment"]
    # No nginx to hand files to: the workers stream them.
    assert "CHAT_FILES_ACCEL_REDIRECT" not in services["web-a"]["environment"]


def haproxy_lines(keyword: str) -> list[list[str]]:
    return [
        line.split()
        for line in haproxy_cfg().splitlines()
        if line.split() and line.split()[0] == keyword
    ]


def test_haproxy_spreads_over_every_web_service_and_checks_each_worker():
    services = scale_services()
    hosts = {name for name in services if name.startswith("web-")}
    templates = haproxy_lines("server-template")
    assert {template[1] for template in templates} == hosts
    port = services["web-a"]["command"][services["web-a"]["command"].index("-p") + 1]
    for _, prefix, count, address, *options in templates:
        assert address == f"{prefix}:{port}"
        assert int(count) >= services[prefix]["deploy"]["replicas"]
        assert "check" in options
        assert options[options.index("resolvers") + 1] == "docker"
    assert haproxy_lines("nameserver") == [["nameserver", "docker", "127.0.0.11:53"]]
    # GET /healthz, expecting 200: "ok" and "degraded" pass, 503 or no answer fail.
    assert ["option", "httpchk"] in haproxy_lines("option")
    [send] = haproxy_lines("http-check")[:1]
    assert send[:6] == ["http-check", "send", "meth", "GET", "uri", "/healthz"]
    assert ["http-check", "expect", "status", "200"] in haproxy_lines("http-check")
    [defaults] = haproxy_lines("default-server")
    assert defaults[1:7] == ["inter", "1s", "fall", "2", "rise", "2"]
    # A refused connection takes a worker out at once, not after its checks fail.
    assert defaults[7:] == ["observe", "layer4", "error-limit", "1", "on-error", "mark-down"]
    assert ["balance", "leastconn"] in haproxy_lines("balance")
    assert services["haproxy"]["depends_on"] == sorted(hosts)


def test_haproxy_is_reached_on_its_port_and_checks_with_an_allowed_host():
    services = scale_services()
    haproxy = services["haproxy"]
    assert haproxy_lines("bind") == [["bind", ":80"]]
    assert haproxy["ports"] == ["8000:80"]
    assert (
        "./deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in haproxy["volumes"]
    )
    assert '"${HEALTH_CHECK_HOST}"' in haproxy_cfg()
    allowed = services["web-a"]["environment"]["DJANGO_ALLOWED_HOSTS"].split(",")
    assert haproxy["environment"]["HEALTH_CHECK_HOST"] in allowed
    custom = scale(
        {"DJANGO_ALLOWED_HOSTS": "chat.example.com", "HEALTH_CHECK_HOST": "chat.example.com"}
    )
    assert custom["services"]["haproxy"]["environment"]["HEALTH_CHECK_HOST"] == "chat.example.com"
    # Two descriptors per connection (client and worker).
    [[_, maxconn]] = haproxy_lines("maxconn")
    assert haproxy["ulimits"]["nofile"] >= 2 * int(maxconn) + 100


def haproxy_seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "": 0.001}
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|)", value)
    assert match, value
    return int(match[1]) * units[match[2]]


def test_haproxy_keeps_websockets_open_and_sets_the_forwarded_address_itself():
    timeouts = {line[1]: haproxy_seconds(line[2]) for line in haproxy_lines("timeout")}
    # Open sockets are a tunnel: long enough for daphne's pings to keep them alive.
    assert timeouts["tunnel"] >= 3600 > float(daphne_args()["--ping-interval"])
    assert timeouts["http-request"] <= 30
    # The address HAProxy saw replaces what a client sent, never added after it.
    assert ["http-request", "set-header", "X-Forwarded-For", "%[src]"] in haproxy_lines(
        "http-request"
    )
    assert ["option", "forwardfor"] not in haproxy_lines("option")
    assert not any("Host" in line for line in haproxy_lines("http-request"))
    # The log never writes a query string (`?token=`).
    [[_, log_format]] = [
        line.split(None, 1) for line in haproxy_cfg().splitlines() if "log-format" in line
    ]
    assert "%HPO" in log_format
    assert not re.search(r"%\{[^}]*\}r|%r\b|%HU|%HQ", log_format)
