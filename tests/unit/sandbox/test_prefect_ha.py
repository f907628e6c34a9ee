"""The prefect_server role's HA profile, for real: two API server processes and a background-services process share a
real redis-server (TLS with its own CA, AUTH: Memorystore's shape, sandbox/redis_server.py) and a real PostgreSQL,
configured with the env the chart renders from the role's values (tests/unit/sandbox/test_prefect_ha_values.py).

- The migrations run once, as the chart's Job runs them, and a re-run is a no-op; the API processes do not migrate.
- An event written through replica A is read through replica B (A publishes it on the Redis broker, the services
  process persists it, B reads it).
- Replica A is killed while flow runs submitted through B go on: every run ends Completed.
- The database connections stay within what the role's check counts per process (pool size + max overflow).
"""

import datetime
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from tests.unit.conftest import REPO
from tests.unit.sandbox.test_prefect_ha_values import HA_VARS, render_values

POOL_SIZE, MAX_OVERFLOW = 3, 4
FLOW_RUNS = 6
RUNNER = '''import sys, time
from prefect import flow, task


@task
def step(i):
    time.sleep(0.2)
    return i


@flow(name="ha-proof")
def proof(n: int):
    return sum(step(i) for i in range(3))


for n in range(int(sys.argv[1])):
    proof(n)
    print("done", n, flush=True)
'''


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base, method, path, body=None, timeout=20):
    req = urllib.request.Request(base + path, method=method, headers={"Content-Type": "application/json"},
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def _wait(what, check, timeout, procs=()):
    deadline = time.monotonic() + timeout
    while True:
        for proc, log in procs:
            assert proc.poll() is None, "%s: a process exited: %s" % (what, _tail(log))
        try:
            value = check()
            if value:
                return value
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, "%s: not within %ss" % (what, timeout)
        time.sleep(0.3)


def _tail(path, lines=25):
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    from sandbox.postgres import Postgres
    from sandbox.redis_server import RedisServer, make_tls

    base = tmp_path_factory.mktemp("ha")
    pg = Postgres(str(base / "pg"), 0)
    redis_dir = str(base / "redis")
    os.makedirs(redis_dir, mode=0o700)
    # Memorystore's shape: TLS only, with a certificate of the instance's own CA for its address, and AUTH.
    make_tls(redis_dir, "127.0.0.1", "ha-proof")
    redis = RedisServer(redis_dir, _free_port(), str(base), "redis-server for the HA proof")
    auth = uuid.uuid4().hex
    try:
        pg.start()
        pg.sql("CREATE DATABASE prefect")
        redis.start(password=auth, tls=True)
        yield {"base": base, "pg": pg, "redis": redis, "auth": auth, "ca": os.path.join(redis_dir, "ca.pem")}
    finally:
        redis.destroy()
        pg.destroy()


def _role_values():
    return render_values(dict(HA_VARS, prefect_server_db_pool_size=POOL_SIZE,
                              prefect_server_db_max_overflow=MAX_OVERFLOW))


def _role_redis_url(auth, host, port, ca_dir):
    """The URL the role writes into its Redis Secret (vars/main.yml prefect_server_redis_url)."""
    import jinja2
    import yaml

    with open(os.path.join(REPO, "roles", "prefect_server", "vars", "main.yml")) as fh:
        template = yaml.safe_load(fh)["prefect_server_redis_url"]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    url = env.from_string(template).render(prefect_server_redis_auth_value=auth, prefect_server_redis_host=host,
                                           prefect_server_redis_port=port, prefect_server_redis_ca_path=ca_dir)
    assert url.startswith("rediss://:%s@%s:%d/0?ssl_ca_certs=" % (auth, host, port)), url
    return url


def _env(backends, home):
    """What the chart gives the server and background-services pods with the role's HA values: the plain values of
    the role's env, then what the chart and the role's Secrets fill in (loopback addresses for the instance's)."""
    from sandbox.kube.releases import offline_env

    pg, redis = backends["pg"], backends["redis"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(offline_env())
    env.update({e["name"]: e["value"] for e in _role_values()["global"]["prefect"]["env"] if "value" in e})
    bindir = home.parent / "bin"
    if not bindir.exists():
        bindir.mkdir()
        for name, argv in (("prefect", "%s -m prefect" % sys.executable), ("python", sys.executable)):
            (bindir / name).write_text('#!/bin/sh\nexec %s "$@"\n' % argv)
            (bindir / name).chmod(0o755)
    env["PATH"] = "%s%s%s" % (bindir, os.pathsep, env.get("PATH", ""))
    url = _role_redis_url(backends["auth"], "127.0.0.1", redis.port, os.path.dirname(backends["ca"]))
    env.update({
        "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://%s:%s@127.0.0.1:%d/prefect?ssl=require"
        % (pg.superuser, urllib.parse.quote(pg.password, safe=""), pg.port),
        "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging", "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_URL": url, "PREFECT_SERVER_DOCKET_URL": url,
        # The chart's fields beside the URL (which prefect-redis says it ignores for them).
        "PREFECT_REDIS_MESSAGING_HOST": "127.0.0.1", "PREFECT_REDIS_MESSAGING_PORT": str(redis.port),
        "PREFECT_REDIS_MESSAGING_SSL": "true", "PREFECT_REDIS_MESSAGING_DB": "0",
        "PREFECT_REDIS_MESSAGING_PASSWORD": backends["auth"],
        "PREFECT_LOGGING_SERVER_LEVEL": "WARNING",
    })
    return env


def _spawn(args, env, log):
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "prefect"] + args, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO)


def _migrate(env, log):
    """The chart's migrations Job: its script around the role's command and env, started as the sandbox's kubelet
    starts the image's entrypoint (which checks that EXTRA_PIP_PACKAGES is installed here)."""
    from sandbox.images import local_argv

    values = _role_values()
    migrations = values["migrations"]
    script = "set -eo pipefail\necho \"Starting database migration...\"\n" + migrations["command"]
    job_env = dict(env, **{e["name"]: e["value"] for e in migrations["env"]})
    argv = local_argv("prefecthq/prefect:%s" % values["global"]["prefect"]["image"]["prefectTag"],
                      command=migrations["entrypoint"], args=[script], env=job_env)
    with open(log, "ab") as out:
        res = subprocess.run(argv, env=job_env, stdout=out, stderr=subprocess.STDOUT, timeout=300, check=False)
    assert res.returncode == 0, _tail(log)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_two_api_replicas_and_the_services_share_redis_and_postgres_and_survive_losing_a_replica(backends):
    base, pg, redis = backends["base"], backends["pg"], backends["redis"]
    env = _env(backends, base / "home")
    logs = {name: str(base / ("%s.log" % name)) for name in ("migrate", "api-a", "api-b", "services", "runner")}
    # The chart's migrations Job, then a re-run: nothing left to do, the schema's revision unchanged.
    _migrate(env, logs["migrate"])
    revision = pg.sql("SELECT version_num FROM alembic_version", dbname="prefect").strip()
    assert revision
    # Registration rewrites each block type's `updated`; what a re-run must keep is the rows themselves.
    blocks_query = ("SELECT (SELECT string_agg(id::text || slug, ',' ORDER BY slug) FROM block_type), "
                    "(SELECT string_agg(id::text || checksum, ',' ORDER BY checksum) FROM block_schema)")
    blocks = pg.sql(blocks_query, dbname="prefect").strip()
    assert "secret" in blocks
    _migrate(env, logs["migrate"])
    assert pg.sql("SELECT version_num FROM alembic_version", dbname="prefect").strip() == revision
    assert pg.sql(blocks_query, dbname="prefect").strip() == blocks

    port_a, port_b = _free_port(), _free_port()
    procs = {}
    try:
        procs["api-a"] = _spawn(["server", "start", "--no-services", "--host", "127.0.0.1", "--port", str(port_a)],
                                env, logs["api-a"])
        procs["api-b"] = _spawn(["server", "start", "--no-services", "--host", "127.0.0.1", "--port", str(port_b)],
                                env, logs["api-b"])
        procs["services"] = _spawn(["server", "services", "start"], env, logs["services"])
        watched = [(procs[n], logs[n]) for n in ("api-a", "api-b", "services")]
        api_a, api_b = "http://127.0.0.1:%d/api" % port_a, "http://127.0.0.1:%d/api" % port_b
        for api in (api_a, api_b):
            _wait("%s healthy" % api, lambda api=api: _call(api, "GET", "/health") is True, 180, watched)

        # An event written through A reaches B: A publishes it on Redis, the services persist it, B reads it.
        event_id, resource = str(uuid.uuid4()), "skyforge.ha-proof.%s" % uuid.uuid4().hex
        _call(api_a, "POST", "/events", [{
            "id": event_id, "occurred": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "event": "skyforge.ha.proof", "resource": {"prefect.resource.id": resource}}])

        def read_through_b():
            page = _call(api_b, "POST", "/events/filter", {"filter": {"resource": {"id": [resource]}}, "limit": 5})
            return [e for e in page["events"] if e["id"] == event_id]

        (event,) = _wait("the event through B", read_through_b, 60, watched)
        assert event["event"] == "skyforge.ha.proof"
        assert int(redis.command("DBSIZE")) > 0, "messaging went through Redis"

        # Flow runs through B; A is killed once they are under way.
        runner_env = {k: v for k, v in env.items() if not k.startswith("PREFECT_SERVER_")}
        runner_env.update({"PREFECT_API_URL": api_b, "PREFECT_HOME": str(base / "client-home")})
        runner_env = {k: v for k, v in runner_env.items() if not k.startswith(("PREFECT_REDIS", "PREFECT_MESSAGING"))}
        (base / "runner.py").write_text(RUNNER)
        with open(logs["runner"], "wb") as out:
            runner = subprocess.Popen([sys.executable, str(base / "runner.py"), str(FLOW_RUNS)], env=runner_env,
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(base))
        procs["runner"] = runner
        _wait("the first flow run", lambda: "done 0" in _tail(logs["runner"], 200), 120,
              watched[1:] + [(runner, logs["runner"])])
        os.killpg(procs["api-a"].pid, signal.SIGKILL)
        procs["api-a"].wait(10)
        killed_at = datetime.datetime.now(datetime.timezone.utc)
        assert runner.wait(180) == 0, _tail(logs["runner"])

        runs = _call(api_b, "POST", "/flow_runs/filter", {"flows": {"name": {"any_": ["ha-proof"]}}, "limit": 50})
        assert len(runs) == FLOW_RUNS
        assert sorted(r["state"]["type"] for r in runs) == ["COMPLETED"] * FLOW_RUNS, \
            [(r["name"], r["state"]) for r in runs]
        ended = sorted(datetime.datetime.fromisoformat(r["end_time"].replace("Z", "+00:00")) for r in runs)
        assert ended[0] < killed_at < ended[-1], "runs ended on both sides of the kill: %s / %s" % (killed_at, ended)
        assert procs["api-b"].poll() is None and procs["services"].poll() is None
        # Two live processes, each within the pool the role's check counts for it.
        connections = int(pg.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'prefect'").strip())
        assert connections <= 2 * (POOL_SIZE + MAX_OVERFLOW), connections
    finally:
        for proc in procs.values():
            _stop(proc)
