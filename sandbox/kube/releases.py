"""Runs the Prefect Helm releases for real: the sandbox's stand-in for the charts' pods.

Helm stores each release revision as a `helm.sh/release.v1` Secret. When the newest revision of a release is
`deployed`, this controller renders what the chart would run from the stored chart defaults and the user's values,
and starts it as a local process:

- prefect-server: a real `prefect server start` whose database URL, basic auth and UI API URL come only from the
  release's values and the Secrets they name; the database host (a Cloud SQL private IP) is mapped to the loopback
  PostgreSQL that stands for that instance, never dialled.
- prefect-worker: a real `prefect worker start` polling the server at the values' API URL (the service FQDN, mapped to
  the server's loopback port) for the values' pool.

Helm creates the objects the chart renders; this controller starts from a revision's pending-install/-upgrade (Helm
marks it deployed only after its wait), writes the status of the release's Deployments (available only while the
process is ready) that `helm --wait` watches, and routes the release's Services to the process. What a pod cannot do here (pull an image, run a Cloud Run job, reach Prefect Cloud) shows up as
a pod that never becomes ready, with the reason in the Deployment's conditions.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from .loadbalancer import LoadBalancer

SERVER_PORT = 4200
BACKEND_CONFIG_ANNOTATION = "cloud.google.com/backend-config"


def decode_release(secret):
    raw = base64.b64decode(secret["data"]["release"])
    return json.loads(gzip.decompress(base64.b64decode(raw)))


def encode_release(release):
    inner = base64.b64encode(gzip.compress(json.dumps(release, sort_keys=True).encode()))
    return base64.b64encode(inner).decode()


def coalesce(defaults, overrides):
    """helm's value coalescing: maps merge, anything else replaces, null removes a default."""
    out = copy.deepcopy(defaults) if isinstance(defaults, dict) else {}
    for key, value in (overrides or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = coalesce(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def offline_env():
    """Environment that keeps a release's process on loopback.

    Prefect reaches out on its own (the collection registry on GitHub, telemetry); here only loopback may be dialled,
    so outbound HTTP goes to a closed loopback port and fails fast, and Prefect falls back to its bundled data.
    """
    dead = "http://127.0.0.1:9"
    return {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead, "ALL_PROXY": dead,
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


class Unready(Exception):
    """The pod cannot start: the reason goes into the Deployment's conditions, as kubelet events would say it."""


class Release:
    def __init__(self, controller, api, namespace, release):
        self.controller = controller
        self.sandbox = controller.sandbox
        self.api = api
        self.namespace = namespace
        self.name = release["name"]
        self.revision = release["version"]
        self.chart = release["chart"]["metadata"]["name"]
        self.values = coalesce(release["chart"].get("values") or {}, release.get("config") or {})
        self.proc = None
        self.port = None
        self.message = "starting"
        self.ready = False
        self.mapped = []
        self.stopped = threading.Event()
        self.started_wall = time.time()
        base = os.path.join(self.sandbox.config.state_dir, "releases", api.key.replace("/", "_"), namespace)
        os.makedirs(base, exist_ok=True)
        self.home = os.path.join(base, self.name)
        os.makedirs(self.home, exist_ok=True)
        self.log_path = os.path.join(base, self.name + ".log")

    @property
    def fullname(self):
        return self.values.get("fullnameOverride") or "%s-%s" % (self.name, self.chart)

    def labels(self):
        return {"app.kubernetes.io/name": self.chart, "app.kubernetes.io/instance": self.name,
                "app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": self.chart}

    def secret_value(self, secret_name, key):
        found = self.api.find("secrets", self.namespace)
        for obj in found:
            if obj["metadata"]["name"] == secret_name:
                if key not in (obj.get("data") or {}):
                    raise Unready('Error: couldn\'t find key %s in Secret %s/%s' % (key, self.namespace, secret_name))
                return base64.b64decode(obj["data"][key]).decode()
        raise Unready('Error: secret "%s" not found' % secret_name)

    def resolve_url(self, url, default_port):
        """Rewrite a URL whose host is a cloud or cluster address to the loopback endpoint that stands for it."""
        parts = urllib.parse.urlsplit(url)
        port = parts.port or default_port
        try:
            host, lport = self.sandbox.resolve(parts.hostname, port)
        except LookupError:
            raise Unready("dial tcp %s:%s: connect: connection refused (nothing serves that address)"
                          % (parts.hostname, port))
        netloc = "%s:%d" % (host, lport)
        if parts.username is not None:
            cred = urllib.parse.quote(urllib.parse.unquote(parts.username), safe="")
            if parts.password is not None:
                cred += ":" + urllib.parse.quote(urllib.parse.unquote(parts.password), safe="")
            netloc = cred + "@" + netloc
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def base_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({"PREFECT_HOME": self.home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_CLI_COLORS": "false", "PYTHONUNBUFFERED": "1"})
        env.update(offline_env())
        return env

    def extra_env(self, env, entries):
        for entry in entries or []:
            if "value" in entry:
                env[entry["name"]] = str(entry["value"])
            elif "valueFrom" in entry and "secretKeyRef" in entry["valueFrom"]:
                ref = entry["valueFrom"]["secretKeyRef"]
                env[entry["name"]] = self.secret_value(ref["name"], ref["key"])

    # ---- the objects Helm rendered ----------------------------------------------------------
    def helm_objects(self, resource):
        """The release's objects of a kind, as Helm created them from the chart (never made up here)."""
        return [o for o in self.api.find(resource, self.namespace, {"app.kubernetes.io/instance": self.name})
                if (o["metadata"].get("annotations") or {}).get("meta.helm.sh/release-name") == self.name]

    def publish(self):
        """Write the Deployments' status as the deployment controller would: available only when the pod is ready."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for dep in self.helm_objects("deployments"):
            want = int((dep.get("spec") or {}).get("replicas", 1))
            ready = want if self.ready else 0
            status = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": want,
                      "updatedReplicas": want,
                      "conditions": [
                          {"type": "Available", "status": "True" if ready >= want else "False",
                           "reason": "MinimumReplicasAvailable" if ready >= want else "MinimumReplicasUnavailable",
                           "message": self.message, "lastUpdateTime": stamp, "lastTransitionTime": stamp},
                          {"type": "Progressing", "status": "True",
                           "reason": "NewReplicaSetAvailable" if ready >= want else "ReplicaSetUpdated",
                           "message": 'ReplicaSet "%s" %s' % (dep["metadata"]["name"], "has successfully progressed."
                                                              if ready >= want else "is progressing."),
                           "lastUpdateTime": stamp, "lastTransitionTime": stamp}]}
            if ready:
                status.update({"readyReplicas": ready, "availableReplicas": ready})
            else:
                status["unavailableReplicas"] = want
            old = dep.get("status") or {}
            same = {k: v for k, v in old.items() if k != "conditions"} == \
                {k: v for k, v in status.items() if k != "conditions"} and \
                [(c.get("type"), c.get("status"), c.get("message")) for c in old.get("conditions") or []] == \
                [(c["type"], c["status"], c["message"]) for c in status["conditions"]]
            if not same:
                self.api.set_status("deployments", self.namespace, dep["metadata"]["name"], status)

    def unpublish(self):
        # Helm deletes what it created; the status written here goes with the objects.
        pass

    def start_process(self, argv, env):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, env=env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def stop(self):
        self.stopped.set()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
        for ip, port in self.mapped:
            self.sandbox.unmap_address(ip, port)
        self.mapped = []
        if getattr(self, "lb", None) is not None:
            self.lb.stop()
            self.lb = None

    def route_services(self):
        """The Services Helm created route to this process: their DNS names and cluster IPs, on their ports."""
        if self.port is None:
            return
        for svc_obj in self.helm_objects("services"):
            spec = svc_obj.get("spec") or {}
            for port in spec.get("ports") or []:
                hosts = ["%s.%s.svc.cluster.local" % (svc_obj["metadata"]["name"], self.namespace)]
                if spec.get("clusterIP") not in (None, "None"):
                    hosts.append(spec["clusterIP"])
                for host in hosts:
                    if (host, port["port"]) not in self.mapped:
                        self.map(host, port["port"], "service")

    def map(self, host, port, what, target=None):
        self.sandbox.map_address(host, port, "127.0.0.1", target or self.port, what)
        self.mapped.append((host, port))

    def run(self):
        try:
            self.start()
        except Unready as err:
            self.message = str(err)
            # Helm creates the Deployment after the revision that started this: keep its status honest meanwhile.
            self.publish()
            while not self.stopped.wait(0.5):
                self.publish()
            return
        self.publish()
        while not self.stopped.wait(0.5):
            # Helm creates the objects after the pending revision that started this; pick them up as they come.
            self.publish()
            self.route_services()
            alive = self.proc is not None and self.proc.poll() is None
            ready = alive and self.probe()
            if not alive:
                self.message = "Back-off restarting failed container (exit code %s); see %s" % (
                    self.proc.returncode if self.proc else "?", self.log_path)
            if ready != self.ready or not alive:
                if ready and not self.ready:
                    # The benchmarks' critical path counts a release from install to ready, like any operation.
                    self.sandbox.ops.timeline.append({"kind": "helm.release", "resource": "%s/%s" % (
                        self.namespace, self.name), "start": self.started_wall, "end": time.time(), "error": None})
                self.ready = ready
                if ready:
                    self.message = "Deployment has minimum availability."
                self.publish()
            if not alive:
                return


class ServerRelease(Release):
    def start(self):
        v = self.values
        server = v.get("server") or {}
        if (v.get("postgresql") or {}).get("enabled"):
            raise Unready("the sandbox cannot run the bundled bitnami PostgreSQL subchart: set postgresql.enabled="
                          "false and point externalDatabase at Cloud SQL")
        env = self.base_env()
        db = v.get("externalDatabase") or {}
        if (v.get("sqlite") or {}).get("enabled"):
            url = "sqlite+aiosqlite:///%s/prefect.db" % self.home
        elif db.get("connectionString"):
            url = db["connectionString"]
        elif db.get("existingSecret") and db.get("connectionStringSecretKey"):
            url = self.secret_value(db["existingSecret"], db["connectionStringSecretKey"])
        else:
            raise Unready("no database configured: set externalDatabase.existingSecret and "
                          "externalDatabase.connectionStringSecretKey")
        if not url.startswith("sqlite"):
            url = self.resolve_url(url, 5432)
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = url
        auth = server.get("basicAuth") or {}
        if auth.get("enabled"):
            env["PREFECT_SERVER_API_AUTH_STRING"] = (self.secret_value(auth["existingSecret"], "auth-string")
                                                     if auth.get("existingSecret") else auth.get("authString", ""))
        ui = server.get("uiConfig") or {}
        if ui.get("prefectUiApiUrl"):
            env["PREFECT_UI_API_URL"] = ui["prefectUiApiUrl"]
        env["PREFECT_LOGGING_SERVER_LEVEL"] = server.get("loggingLevel", "WARNING")
        env["PREFECT_SERVER_API_BASE_PATH"] = server.get("apiBasePath", "/api")
        self.extra_env(env, server.get("env"))
        self.port = self.sandbox.free_port()
        env["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
        env["PREFECT_SERVER_API_PORT"] = str(self.port)
        self.start_process([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                            "--port", str(self.port)], env)
        self.route_services()
        ingress = v.get("ingress") or {}
        if ingress.get("enabled"):
            self.expose_ingress(ingress)

    def expose_ingress(self, ingress):
        # GKE's ingress controller binds the reserved global address named by this annotation to the load balancer.
        name = (ingress.get("annotations") or {}).get("kubernetes.io/ingress.global-static-ip-name")
        if not name:
            self.ingress_message = "ingress has no kubernetes.io/ingress.global-static-ip-name: GKE assigns an " \
                                   "ephemeral IP that the DNS record cannot point at"
            return
        project = self.sandbox.config.project
        addr = self.sandbox.store.table("compute.addresses").get("projects/%s/global/addresses/%s" % (project, name))
        if addr is None:
            self.ingress_message = "the given static IP name %s doesn't translate to an existing static IP" % name
            return
        self.ingress_ip = addr["address"]
        self.ingress_host = (ingress.get("host") or {}).get("hostname")
        from ..gcp.security_policies import evaluate

        self.lb = LoadBalancer(self.origin_policy, lambda: self.port, evaluate)
        self.controller.watch_policies()
        for port in (80, 443):
            self.map(addr["address"], port, "ingress:%s" % name, target=self.lb.port)
        self.ingress_message = "serving %s on %s" % (self.ingress_host, addr["address"])

    def backend_config(self):
        """The BackendConfig the service names for its port, or None; a bad annotation is GKE's sync error."""
        raw = ((self.values.get("service") or {}).get("annotations") or {}).get(BACKEND_CONFIG_ANNOTATION)
        self.armor_message = None
        if not raw:
            return None
        try:
            ref = json.loads(raw)
            port = str((self.values.get("service") or {}).get("port") or SERVER_PORT)
            name = (ref.get("ports") or {}).get(port) or ref.get("default")
        except (ValueError, AttributeError):
            self.armor_message = "Error syncing to GCP: invalid %s annotation %r" % (BACKEND_CONFIG_ANNOTATION, raw)
            return None
        for obj in self.api.find("backendconfigs", self.namespace):
            if obj["metadata"]["name"] == name:
                return obj
        self.armor_message = 'Error syncing to GCP: error getting BackendConfig for port %s on service "%s/%s": ' \
                             "no BackendConfig for service port exists" % (port, self.namespace, self.fullname)
        return None

    def origin_policy(self):
        """The Cloud Armor policy in force on this backend now, as GCP stores it (None: every source passes)."""
        config = self.backend_config()
        name = (((config or {}).get("spec") or {}).get("securityPolicy") or {}).get("name")
        if not name:
            return None
        gcp = self.sandbox.apps.get("gcp")
        policies = getattr(gcp, "security_policies", None)
        policy = policies.by_name(self.sandbox.config.project, name) if policies else None
        if policy is None:
            self.armor_message = "Error syncing to GCP: the given security policy \"%s\" does not exist" % name
        return policy

    def backend_service(self):
        return "projects/%s/global/backendServices/k8s1-sandbox-%s-%s-%s" % (
            self.sandbox.config.project, self.namespace, self.fullname,
            (self.values.get("service") or {}).get("port") or SERVER_PORT)

    def probe(self):
        base = (self.values.get("server") or {}).get("apiBasePath", "/api")
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s/health" % (self.port, base), timeout=2) as resp:
                return resp.status == 200
        except Exception:  # noqa: BLE001 - not up yet
            return False


class WorkerRelease(Release):
    # Worker types whose infrastructure this machine can run; the others need their integration package and a
    # cloud API (cloud-run-v2 runs flow runs as Cloud Run jobs), which the sandbox does not have.
    RUNNABLE = {"process"}

    def start(self):
        v = self.values
        worker = v.get("worker") or {}
        config = worker.get("config") or {}
        if worker.get("apiConfig") != "selfHostedServer":
            raise Unready("worker.apiConfig=%s needs Prefect Cloud, which the sandbox cannot reach: use "
                          "selfHostedServer" % worker.get("apiConfig"))
        api = worker.get("selfHostedServerApiConfig") or {}
        if not api.get("apiUrl"):
            raise Unready("worker.selfHostedServerApiConfig.apiUrl is empty")
        if not config.get("workPool"):
            raise Unready("worker.config.workPool is empty")
        kind = config.get("type", "kubernetes")
        if kind not in self.RUNNABLE:
            raise Unready("the sandbox runs workers of type %s only; a %s worker needs its integration and the "
                          "cloud it submits to" % (", ".join(sorted(self.RUNNABLE)), kind))
        env = self.base_env()
        env["PREFECT_API_URL"] = self.resolve_url(api["apiUrl"], 80)
        auth = api.get("basicAuth") or {}
        if auth.get("enabled"):
            env["PREFECT_API_AUTH_STRING"] = (self.secret_value(auth["existingSecret"], "auth-string")
                                              if auth.get("existingSecret") else auth.get("authString", ""))
        env["PREFECT_WORKER_QUERY_SECONDS"] = str(config.get("queryInterval", 5))
        env["PREFECT_WORKER_PREFETCH_SECONDS"] = str(config.get("prefetchSeconds", 10))
        self.extra_env(env, worker.get("extraEnvVars"))
        self.worker_name = config.get("name") or "%s-%s" % (self.fullname, self.api.key.rsplit("/", 1)[-1])
        argv = [sys.executable, "-m", "prefect", "worker", "start", "--pool", config["workPool"], "--type", kind,
                "--name", self.worker_name]
        for queue in config.get("workQueues") or []:
            argv += ["--work-queue", queue]
        if config.get("limit"):
            argv += ["--limit", str(config["limit"])]
        self.api_url, self.auth = env["PREFECT_API_URL"], env.get("PREFECT_API_AUTH_STRING")
        self.pool = config["workPool"]
        self.start_process(argv, env)

    def probe(self):
        # Ready once the server has a heartbeat from this worker in its pool.
        req = urllib.request.Request(
            "%s/work_pools/%s/workers/filter" % (self.api_url, urllib.parse.quote(self.pool)),
            data=b"{}", method="POST", headers={"Content-Type": "application/json"})
        if self.auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(self.auth.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=3) as resp:
                workers = json.loads(resp.read())
        except Exception:  # noqa: BLE001 - server not reachable yet
            return False
        return any(w.get("name") == self.worker_name and w.get("status") == "ONLINE" for w in workers)


KINDS = {"prefect-server": ServerRelease, "prefect-worker": WorkerRelease}


class ReleaseController:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.lock = threading.Lock()
        self.running = {}  # (cluster key, namespace, release name) -> Release
        self._ips = {}

    def cluster_ip(self, api, namespace, name):
        key = (api.key, namespace, name)
        with self.lock:
            if key not in self._ips:
                self._ips[key] = "34.118.%d.%d" % (224 + len(self._ips) // 250, 10 + len(self._ips) % 250)
            return self._ips[key]

    def on_event(self, api, event, resource, obj):
        if resource != "secrets" or obj.get("type") != "helm.sh/release.v1":
            return
        labels = obj["metadata"].get("labels") or {}
        name, namespace = labels.get("name"), obj["metadata"]["namespace"]
        key = (api.key, namespace, name)
        # Helm marks a revision deployed only after its wait, so the pods run from pending-install/-upgrade on.
        if event == "DELETED" or labels.get("status") not in ("deployed", "pending-install", "pending-upgrade"):
            if labels.get("status") in ("uninstalled", "uninstalling") or (
                    event == "DELETED" and not self._has_revisions(api, namespace, name)):
                self.stop(key)
            return
        release = decode_release(obj)
        kind = KINDS.get(release["chart"]["metadata"]["name"])
        with self.lock:
            current = self.running.get(key)
        if current is not None and current.revision == release["version"]:
            return
        self.stop(key)
        if kind is None:
            return
        rel = kind(self, api, namespace, release)
        with self.lock:
            self.running[key] = rel
        threading.Thread(target=rel.run, name="release-%s" % name, daemon=True).start()

    @staticmethod
    def _has_revisions(api, namespace, name):
        return bool(api.find("secrets", namespace, {"owner": "helm", "name": name}))

    def watch_policies(self):
        """Tell the GCP stand-in which security policies a load balancer uses, so deleting one fails as in GCP."""
        policies = getattr(self.sandbox.apps.get("gcp"), "security_policies", None)
        if policies is not None and self.policy_user not in policies.users:
            policies.users.append(self.policy_user)

    def policy_user(self, policy_link):
        with self.lock:
            rels = list(self.running.values())
        for rel in rels:
            if getattr(rel, "lb", None) is None:
                continue
            policy = rel.origin_policy()
            if policy and policy["selfLink"] == policy_link:
                return rel.backend_service()
        return None

    def stop(self, key):
        with self.lock:
            rel = self.running.pop(key, None)
        if rel is not None:
            rel.stop()
            rel.unpublish()

    def stop_cluster(self, api):
        for key in [k for k in self.running if k[0] == api.key]:
            self.stop(key)

    def stop_all(self):
        for key in list(self.running):
            self.stop(key)

    def describe(self):
        with self.lock:
            rels = list(self.running.items())
        out = []
        for (cluster, ns, name), rel in rels:
            entry = {"cluster": cluster, "namespace": ns, "name": name, "chart": rel.chart, "revision": rel.revision,
                     "ready": rel.ready, "message": rel.message, "log": rel.log_path,
                     "port": rel.port}
            for attr in ("ingress_ip", "ingress_host", "ingress_message", "armor_message", "worker_name", "pool"):
                if getattr(rel, attr, None) is not None:
                    entry[attr] = getattr(rel, attr)
            out.append(entry)
        return out

    def summary(self):
        out = {}
        for rel in self.describe():
            out["release %s/%s" % (rel["namespace"], rel["name"])] = "%s (%s)" % (
                "ready" if rel["ready"] else "not ready", rel["message"])
            if rel.get("ingress_host"):
                out["prefect url"] = "https://%s (ingress IP %s)" % (rel["ingress_host"], rel.get("ingress_ip"))
        return out
