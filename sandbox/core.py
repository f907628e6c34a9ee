"""The sandbox process: shared state, timed operations, the servers of every API family."""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
import uuid

from .web import ApiError, FaultInjector, RequestLog, Response, Server

# Realistic durations, in seconds, of the operations the real control planes run.
# SKYFORGE_SANDBOX_TIME_SCALE multiplies all of them (0.01 turns Autopilot's 8 minutes into 4.8 s).
DURATIONS = {
    "serviceusage.enable": 20,
    "compute.network": 25,
    "compute.subnetwork": 20,
    "compute.address": 4,
    "compute.firewall": 8,
    "compute.router": 12,
    "compute.instance": 35,
    "compute.delete": 15,
    "servicenetworking.connection": 60,
    "container.cluster.create": 480,
    "container.cluster.update": 150,
    "container.cluster.delete": 240,
    "sqladmin.instance.create": 600,
    "sqladmin.instance.update": 180,
    "sqladmin.instance.delete": 120,
    "sqladmin.database": 10,
    "sqladmin.user": 8,
    "redis.instance.create": 300,
    "redis.instance.update": 120,
    "redis.instance.delete": 90,
    "iam.serviceaccount": 2,
    # A job's reconciliation after create/update is quick (a real Ready condition changed 74 ms after RECONCILING in
    # the worker log quoted in PrefectHQ/prefect#21712); an execution's instances take seconds to provision.
    "run.job.reconcile": 1,
    "run.job": 10,
    "tfc.plan": 30,
    "tfc.apply": 45,
    "tfc.agent_boot": 60,
    "default": 5,
}


class Config:
    def __init__(self, state_dir=None, port_base=None, time_scale=None, fault_rate=None, specs_dir=None):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.repo_root = root
        self.state_dir = os.path.abspath(state_dir or os.environ.get("SKYFORGE_SANDBOX_DIR") or os.path.join(root, ".sandbox"))
        pb = port_base if port_base is not None else os.environ.get("SKYFORGE_SANDBOX_PORT_BASE", "18470")
        self.port_base = int(pb)
        ts = time_scale if time_scale is not None else os.environ.get("SKYFORGE_SANDBOX_TIME_SCALE", "0.01")
        self.time_scale = float(ts)
        fr = fault_rate if fault_rate is not None else os.environ.get("SKYFORGE_SANDBOX_FAULT_RATE", "0")
        self.fault_rate = float(fr)
        self.specs_dir = os.path.abspath(
            specs_dir or os.environ.get("SKYFORGE_SPECS_DIR") or os.path.join(root, "..", "shared", "specs")
        )
        self.project = os.environ.get("SKYFORGE_SANDBOX_PROJECT", "skyforge-sandbox")

    def port(self, offset):
        """Port 0 (ephemeral) when the base is 0, as tests do."""
        return 0 if self.port_base == 0 else self.port_base + offset

    def duration(self, kind):
        return DURATIONS.get(kind, DURATIONS["default"]) * self.time_scale


class Store:
    """Thread-safe tables of resources, keyed by family-specific ids."""

    def __init__(self):
        self.lock = threading.RLock()
        self.tables = {}
        self._ids = itertools.count(1000000000000000000 + int(time.time()) % 100000)

    def table(self, name):
        with self.lock:
            return self.tables.setdefault(name, {})

    def next_id(self):
        return str(next(self._ids))

    def inventory(self):
        with self.lock:
            return {name: sorted(rows.keys()) for name, rows in self.tables.items() if rows}


class Operation:
    def __init__(self, op_id, kind, duration, on_done, fail_message=None, on_fail=None):
        self.id = op_id
        self.kind = kind
        self.start = time.monotonic()
        self.started_wall = time.time()
        self.end = self.start + duration
        self.on_done = on_done
        self.done = False
        self.error = None
        # The family's error code for the failure (Compute's RESOURCE_IN_USE_BY_ANOTHER_RESOURCE), when it has one.
        self.error_code = None
        self.fail_message = fail_message
        self.on_fail = on_fail
        self.result = None
        self.finished_wall = None
        self.lock = threading.Lock()

    def poll(self):
        with self.lock:
            if self.done or time.monotonic() < self.end:
                return self.done
            if self.fail_message:
                self.error = self.fail_message
                if self.on_fail:
                    self.on_fail()
            else:
                try:
                    self.result = self.on_done() if self.on_done else None
                except ApiError as err:
                    self.error = err.message
                    self.error_code = err.extra.get("op_code")
                except Exception as err:  # noqa: BLE001 - a failed backend ends the operation, not the ticker
                    self.error = "internal error in the sandbox backend: %s" % str(err).splitlines()[0][:300]
            self.done = True
            self.finished_wall = time.time()
            return True


class Operations:
    """Long-running operations that finish after a scaled, realistic duration.

    A background ticker completes them even when nobody polls, so a resource's status moves on
    its own as it would in the cloud.
    """

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.ops = {}
        self.lock = threading.Lock()
        self.timeline = []  # (kind, resource, start, end) for the critical-path benchmark
        self.fail_rate = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="sandbox-ops", daemon=True)
        self._thread.start()

    def start(self, kind, on_done=None, resource="", duration=None, can_fail=False, on_fail=None):
        """on_fail undoes what the request reserved (a pending name) when an injected failure ends the operation."""
        op_id = "operation-%d-%s" % (int(time.time() * 1000), uuid.uuid4().hex[:8])
        seconds = self.sandbox.config.duration(kind) if duration is None else duration
        fail = None
        if can_fail and self.fail_rate and self.sandbox.faults.rng.random() < self.fail_rate:
            fail = "injected operation failure (transient): retry the request"
            self.sandbox.faults.count("operation")
        op = Operation(op_id, kind, seconds, on_done, fail, on_fail)
        op.resource = resource
        with self.lock:
            self.ops[op_id] = op
        if seconds <= 0:
            op.poll()
        return op

    def get(self, op_id):
        with self.lock:
            op = self.ops.get(op_id)
        if op is not None:
            op.poll()
        return op

    def _tick(self):
        while not self._stop.wait(0.05):
            with self.lock:
                pending = [o for o in self.ops.values() if not o.done]
            for op in pending:
                if op.poll():
                    self.timeline.append(
                        {"kind": op.kind, "resource": op.resource, "start": op.started_wall, "end": op.finished_wall,
                         "error": op.error}
                    )

    def stop(self):
        self._stop.set()


class Sandbox:
    def __init__(self, config=None, with_postgres=True, with_aws=None):
        self.config = config or Config()
        # The AWS stand-in (moto) runs only when asked for: SKYFORGE_SANDBOX_AWS=1 or with_aws=True.
        self.with_aws = with_aws if with_aws is not None else os.environ.get("SKYFORGE_SANDBOX_AWS", "0") == "1"
        self.aws = None
        self.aws_tasks = None  # ECS services' tasks run as local processes
        os.makedirs(self.config.state_dir, exist_ok=True)
        self.store = Store()
        self.faults = FaultInjector(rate=self.config.fault_rate)
        self.log = RequestLog(os.path.join(self.config.state_dir, "requests.log"))
        self.ops = Operations(self)
        self.ops.fail_rate = float(os.environ.get("SKYFORGE_SANDBOX_OP_FAIL_RATE", "0"))
        self.with_postgres = with_postgres
        self.postgres = None
        self.servers = {}
        self.apps = {}
        self.children = []  # processes the sandbox runs (releases, edge proxies)
        self.credentials = {}
        # Addresses the fake cloud hands out (10.x, 172.16.x, public IPs) are never dialled: whoever
        # serves them registers the loopback endpoint here, and every consumer resolves through it.
        self.address_map = {}
        # A cluster's Service names (`<svc>.<ns>.svc.cluster.local`, ...) resolve only inside that cluster, as
        # kube-dns answers them: two clusters may each have a prefect-server in namespace prefect.
        self.cluster_names = {}
        self.address_lock = threading.Lock()
        # Host names (a pattern each) served on loopback, e.g. every *.googleapis.com:443 by the GCP front end.
        self.host_routes = []
        self._port_counter = itertools.count(20)

    # ---- the families, by name: None when the family is not running (a test may build one app alone) ----
    @property
    def gcp(self):
        return self.apps.get("gcp")

    @property
    def cloudflare(self):
        return self.apps.get("cloudflare")

    @property
    def tfc(self):
        return self.apps.get("tfc")

    @property
    def kube(self):
        return self.apps.get("kube")

    @property
    def edge(self):
        """Cloudflare's edge: the proxies in front of proxied records."""
        cloudflare = self.cloudflare
        return cloudflare.edge if cloudflare is not None else None

    # ---- lifecycle --------------------------------------------------------------------
    def start(self):
        from . import families

        if self.with_postgres:
            from .postgres import find_pg_bin

            find_pg_bin()  # fail at start, not at the first Cloud SQL instance, when PostgreSQL is missing
        for offset, (name, factory) in enumerate(families.FAMILIES):
            app = factory(self)
            self.apps[name] = app
            self.servers[name] = Server(app, self, self.config.port(offset)).start()
        for app in self.apps.values():
            if hasattr(app, "started"):
                app.started()
        if self.with_aws:
            from .aws import AwsStandIn

            from .aws.ecs_tasks import EcsTaskRunner

            self.aws = AwsStandIn(self.config.port(len(families.FAMILIES))).start()
            self.aws_tasks = EcsTaskRunner(self.aws, self.config.state_dir).start()
        self.write_endpoints()
        return self

    def stop(self):
        for app in self.apps.values():
            if hasattr(app, "stopping"):
                try:
                    app.stopping()
                except Exception:  # noqa: BLE001
                    pass
        for proc in self.children:
            try:
                proc.terminate()
                proc.wait(10)
            except Exception:  # noqa: BLE001
                try:
                    proc.kill()
                except Exception:  # noqa: BLE001
                    pass
        for server in self.servers.values():
            server.stop()
        if self.aws_tasks is not None:
            self.aws_tasks.stop()
        if self.aws is not None:
            self.aws.stop()
        self.ops.stop()

    def free_port(self):
        """A loopback port for a process the sandbox runs (release, proxy)."""
        import socket

        if self.config.port_base:
            while True:
                port = self.config.port_base + next(self._port_counter)
                with socket.socket() as s:
                    try:
                        s.bind(("127.0.0.1", port))
                        return port
                    except OSError:
                        continue
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def map_address(self, ip, port, host, host_port, what="", cluster=None):
        with self.address_lock:
            table = self.address_map if cluster is None else self.cluster_names.setdefault(cluster, {})
            table[(ip, int(port))] = (host, int(host_port), what)

    def unmap_address(self, ip, port, cluster=None):
        with self.address_lock:
            table = self.address_map if cluster is None else self.cluster_names.get(cluster, {})
            table.pop((ip, int(port)), None)

    def map_hosts(self, pattern, port, host, host_port, what=""):
        """Serve every host name matching `pattern` (a regex, whole name, case-insensitive) on port from loopback."""
        with self.address_lock:
            self.host_routes.append((re.compile(pattern, re.IGNORECASE), int(port), (host, int(host_port), what)))

    def resolve(self, ip, port, cluster=None):
        """The loopback (host, port) that stands for a cloud address; raises if none is mapped.

        `cluster` (a container cluster key) is where the caller runs: that cluster's Service names come first. From
        outside any cluster a Service name resolves only while exactly one cluster serves it.
        """
        key = (ip, int(port))
        with self.address_lock:
            entry = self.cluster_names.get(cluster, {}).get(key) if cluster is not None else None
            if entry is None:
                entry = self.address_map.get(key)
            if entry is None:
                for rx, route_port, target in self.host_routes:
                    if route_port == int(port) and rx.fullmatch(ip):
                        entry = target
                        break
            if entry is None and cluster is None:
                served = [(c, names[key]) for c, names in self.cluster_names.items() if key in names]
                if len(served) > 1:
                    raise LookupError("sandbox: %s:%s is a Service name in %d clusters (%s): resolve it with "
                                      "cluster=<the cluster's key>" % (ip, port, len(served),
                                                                       ", ".join(sorted(c for c, _ in served))))
                entry = served[0][1] if served else None
        if entry is None:
            raise LookupError("sandbox: nothing serves %s:%s (it is never dialled directly)" % (ip, port))
        return entry[0], entry[1]

    def network_env(self, identity=None):
        """Environment that lets an unmodified Google client reach the sandbox as https://<api>.googleapis.com.

        Proxy (the sandbox's CONNECT bastion), CA bundle, gcloud's CLOUDSDK_* settings and the project. Without an
        identity: the deployer's service-account key (GOOGLE_APPLICATION_CREDENTIALS). With a pod identity
        `{"namespace": ..., "service_account": ..., "cluster": <container cluster key, optional>}`: a metadata-server
        stand-in of that pod's own (GCE_METADATA_HOST) that issues the Google service account its Kubernetes service
        account is annotated with (`iam.gke.io/gcp-service-account`, read from the cluster at token time, or
        `identity["annotations"]` without a cluster) only under a `roles/iam.workloadIdentityUser` binding for
        `serviceAccount:<project>.svc.id.goog[<namespace>/<ksa>]`, as GKE's metadata server does. With
        `{"google_service_account": email}` (a Cloud Run task or a VM) the metadata server issues that runtime
        account's tokens while the account exists.
        """
        return self.gcp.googleapis.env(identity)

    def url(self, family):
        return self.servers[family].url

    def endpoints(self):
        out = {"project": self.config.project, "state_dir": self.config.state_dir}
        for name, server in self.servers.items():
            out[name + "_url"] = server.url
        for app in self.apps.values():
            if hasattr(app, "endpoint_info"):
                out.update(app.endpoint_info())
        if self.aws is not None:
            out.update(self.aws.endpoint_info())
        return out

    def write_endpoints(self):
        path = os.path.join(self.config.state_dir, "endpoints.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(self.endpoints(), fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return path

    def summary(self):
        """The headline facts of what the site built, for `python -m sandbox summary`."""
        out = {}
        nat_ips = sorted(a["address"] for a in self.store.table("compute.addresses").values()
                         if any("/routers/" in u for u in a.get("users", [])))
        out["nat egress IPs"] = ", ".join(nat_ips) or "(no Cloud NAT yet)"
        for app in self.apps.values():
            if hasattr(app, "summary"):
                out.update(app.summary())
        if not any(key.startswith("ingress ") for key in out):
            out["prefect url"] = "(no ingress serves the Prefect UI yet)"
        return out

    # ---- admin API (on every port under /_sandbox/) ----------------------------------
    def admin(self, req, app):
        path = req.path[len("/_sandbox/"):]
        if path == "health":
            return Response(200, {"ok": True, "family": app.family})
        if path == "endpoints":
            return Response(200, self.endpoints())
        if path == "inventory":
            out = self.store.inventory()
            for other in self.apps.values():
                if hasattr(other, "inventory"):
                    out.update(other.inventory())
            return Response(200, out)
        if path == "requests":
            return Response(200, self.log.entries[-int(req.query.get("last", 100000)):])
        if path == "summary":
            return Response(200, self.summary())
        if path == "timeline":
            return Response(200, self.ops.timeline)
        if path == "faults":
            if req.method == "POST":
                body = req.json
                self.faults.rate = float(body.get("rate", self.faults.rate))
                if body.get("kinds"):
                    self.faults.kinds = tuple(body["kinds"])
                self.ops.fail_rate = float(body.get("operation_fail_rate", self.ops.fail_rate))
            return Response(200, {"rate": self.faults.rate, "kinds": list(self.faults.kinds),
                                  "operation_fail_rate": self.ops.fail_rate, "injected": self.faults.injected})
        if hasattr(app, "admin"):
            out = app.admin(req, path)
            if out is not None:
                return out if isinstance(out, Response) else Response(200, out)
        raise ApiError(404, "no sandbox admin endpoint %s" % path)
