"""The cluster's kubelet, controllers and kube-proxy in miniature: runs what the stored objects say, generically.

Nothing here knows a chart or an application. It reads Deployments, Jobs, Services and Ingresses from a cluster's
store (whoever wrote them: helm, kubectl, a test) and:

- runs each replica of a Deployment's (or a Job's) pod template as local processes, one per container, from the
  container's image (mapped by `sandbox.images.local_argv`), command, args, env and envFrom; `secretKeyRef` and
  `configMapKeyRef` are resolved from the cluster's Secrets and ConfigMaps, and a missing one leaves the container
  waiting with the kubelet's `CreateContainerConfigError` and message, as an unrunnable image leaves it in
  `ErrImagePull`;
- writes Pod objects (phase, conditions, containerStatuses with restartCount and last state) and Events;
- probes readiness, liveness and startup as rendered (httpGet, tcpSocket, exec), timings scaled by the sandbox's
  time scale; restarts an exited container with the kubelet's back-off (10 s doubling to 5 min, scaled);
- keeps Deployment status (replicas, updated/ready/available/unavailableReplicas, observedGeneration, conditions
  Available and Progressing) and Job status (active, succeeded, failed, conditions Complete/Failed, backoffLimit);
- routes each Service port to a ready pod: a small TCP proxy (kube-proxy) on the service's own loopback IP, which
  the service's FQDN and clusterIP are mapped to through `Sandbox.map_address`;
- binds an Ingress's `kubernetes.io/ingress.global-static-ip-name` address to a load balancer (loadbalancer.py)
  with the Cloud Armor policy of the backend Service's BackendConfig, as GKE's ingress controller does.

The pod network. Every pod gets its own loopback address and every Service its own, in a 127.N.0.0/16 block that no
other process on the machine listens in (pods 127.N.0-127.x, services 127.N.128-255.x), so pods can all listen on
4200 or 8080, also beside another sandbox. A container told to listen on all interfaces (an env value or argument that is
exactly `0.0.0.0`, `::` or `[::]`) listens on its pod IP instead. Processes never dial a non-loopback address: in env
values, every URL authority (`scheme://[user@]host[:port]`) whose host and port the sandbox maps (cluster service
names, clusterIPs, Cloud SQL private IPs, ...) is rewritten to the loopback endpoint that stands for it; HTTPS goes
through the sandbox's googleapis CONNECT proxy (which reaches `*.googleapis.com` only and refuses the rest) and plain
HTTP to a proxy on a closed loopback port, so it fails fast. Every pod also gets GKE's Google side
(`Sandbox.network_env` for its Kubernetes service account): the googleapis CA bundle and a metadata server that issues
the annotated Google service account's tokens under Workload Identity. Container paths under a volume's
mountPath (and the workingDir) live in the pod's directory under the sandbox state dir, with the container logs
(`<container>.log`, kept for `kubectl logs`); an env value that is such a path, or a URL whose query names one
(`rediss://...?ssl_ca_certs=/etc/prefect-redis/ca.pem`), is given where the file is here.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import ipaddress
import itertools
import json
import os
import random
import re
import select
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

from .. import images, procs

BIND_ALL = ("0.0.0.0", "::", "[::]")
DEAD_PROXY = "http://127.0.0.1:9"
NODE = "gk3-sandbox-autopilot-pool-1"
STATIC_IP_ANNOTATION = "kubernetes.io/ingress.global-static-ip-name"
BACKEND_CONFIG_ANNOTATION = "cloud.google.com/backend-config"
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432, "mysql": 3306, "redis": 6379}
# userinfo may hold a '/' (Jinja's urlencode leaves it), so it runs to the first '@' (an '@' in a path is rare).
AUTHORITY = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<user>[^@\s?#]*@)?"
                       r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(?::(?P<port>\d+))?")
# A query parameter whose value is an absolute path (up to the next parameter or fragment).
URL_QUERY_PATH = re.compile(r"([?&][^=&#\s]+=)(/[^&#\s]*)")
ENV_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")
MAX_BACKOFF = 300.0


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def expand(text, env):
    """Kubernetes' dependent variable expansion: $(VAR) from the env defined so far, $$ escapes, unknown stays."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return ENV_REF.sub(sub, str(text))


class ConfigError(Exception):
    """CreateContainerConfigError: the kubelet cannot build the container's environment (message as it says it)."""


def _listening_octets():
    """Second octets of the 127.x.0.0/16 blocks where something on this machine listens (from /proc/net/tcp)."""
    used = set()
    for path in ("/proc/net/tcp",):
        try:
            with open(path) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if fields[3] != "0A":  # LISTEN
                        continue
                    ip = int(fields[1].split(":")[0], 16).to_bytes(4, "little")
                    if ip[0] == 127:
                        used.add(ip[1])
        except (OSError, StopIteration):
            pass
    return used


class PodNetwork:
    """Loopback addresses for pods and services, from a 127.N.0.0/16 block no other process listens in.

    Several sandboxes (tests, other developers' sandboxes) run on one machine, so each takes its own block:
    pods get 127.N.0-127.x, services 127.N.128-255.x.
    """

    def __init__(self):
        used = _listening_octets() | {0}
        free = [n for n in range(16, 255) if n not in used]
        self.octet = random.choice(free) if free else random.randint(16, 254)
        self._pods = itertools.count(2)
        self._services = itertools.count(2)
        self._cluster_ips = itertools.count(10)

    def _ip(self, base, n):
        return "127.%d.%d.%d" % (self.octet, base + (n // 250) % 128, 2 + n % 250)

    def pod_ip(self):
        return self._ip(0, next(self._pods))

    def service_ip(self):
        return self._ip(128, next(self._services))

    def cluster_ip(self):
        n = next(self._cluster_ips)
        return "34.118.%d.%d" % (224 + n // 250, n % 250)


# ---- the kubelet ------------------------------------------------------------------------------
class Container:
    def __init__(self, pod, spec, init=False):
        self.pod = pod
        self.spec = spec
        self.name = spec["name"]
        self.init = init
        self.proc = None
        self.restarts = 0
        self.ready = False
        self.started = False
        self.state = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state = {}
        self.log_path = os.path.join(pod.dir, "%s.log" % self.name)
        self.exit_code = None

    # -- environment ------------------------------------------------------------------
    def _secret(self, name, key=None, optional=False):
        obj = self.pod.api.get_object("secrets", self.pod.namespace, name)
        if obj is None:
            if optional:
                return None
            raise ConfigError('secret "%s" not found' % name)
        data = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
        if key is None:
            return data
        if key not in data:
            if optional:
                return None
            raise ConfigError("couldn't find key %s in Secret %s/%s" % (key, self.pod.namespace, name))
        return data[key]

    def _configmap(self, name, key=None, optional=False):
        obj = self.pod.api.get_object("configmaps", self.pod.namespace, name)
        if obj is None:
            if optional:
                return None
            raise ConfigError('configmap "%s" not found' % name)
        data = dict(obj.get("data") or {})
        if key is None:
            return data
        if key not in data:
            if optional:
                return None
            raise ConfigError("couldn't find key %s in ConfigMap %s/%s" % (key, self.pod.namespace, name))
        return data[key]

    def _field(self, path):
        values = {"metadata.name": self.pod.name, "metadata.namespace": self.pod.namespace,
                  "metadata.uid": self.pod.uid, "spec.nodeName": NODE, "status.podIP": self.pod.ip,
                  "status.hostIP": self.pod.ip, "spec.serviceAccountName": self.pod.spec.get("serviceAccountName",
                                                                                           "default")}
        m = re.match(r"metadata\.(labels|annotations)\['(.+)'\]$", path)
        if m:
            return (self.pod.meta.get(m.group(1)) or {}).get(m.group(2), "")
        if path not in values:
            raise ConfigError("unsupported fieldRef %s" % path)
        return values[path]

    def environment(self):
        """The container's env as the kubelet builds it: envFrom first, then env in order, $(VAR) expanded."""
        env = {}
        for source in self.spec.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                ref = source["configMapRef"]
                data = self._configmap(ref["name"], optional=ref.get("optional", False)) or {}
            elif "secretRef" in source:
                ref = source["secretRef"]
                data = self._secret(ref["name"], optional=ref.get("optional", False)) or {}
            else:
                continue
            env.update({prefix + k: v for k, v in data.items()})
        for entry in self.spec.get("env") or []:
            name = entry["name"]
            if "valueFrom" in entry:
                ref = entry["valueFrom"]
                if "secretKeyRef" in ref:
                    r = ref["secretKeyRef"]
                    value = self._secret(r["name"], r["key"], r.get("optional", False))
                elif "configMapKeyRef" in ref:
                    r = ref["configMapKeyRef"]
                    value = self._configmap(r["name"], r["key"], r.get("optional", False))
                elif "fieldRef" in ref:
                    value = self._field(ref["fieldRef"]["fieldPath"])
                else:
                    raise ConfigError("env %s: unsupported valueFrom %s" % (name, ", ".join(ref)))
                if value is None:
                    continue
            else:
                value = expand(entry.get("value", ""), env)
            env[name] = value
        return env

    def process_env(self, env):
        """What the local process gets: the pod network's rewrites applied, paths mapped, the dead proxy set."""
        out = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": self.pod.name, "LANG": "C.UTF-8",
               "PYTHONUNBUFFERED": "1", "DO_NOT_TRACK": "1"}
        hosts = {"127.0.0.1", "localhost", self.pod.ip}
        for key, value in env.items():
            value, used = self.pod.controller.rewrite(value, self.pod.namespace, self.pod.api.key)
            hosts |= used
            if value in BIND_ALL:
                value = self.pod.ip
            out[key] = self.pod.host_paths_in_url(self.pod.host_path(value, only_mounted=True))
        # GKE's pod network: Google APIs through the googleapis front (proxy + CA) and a metadata server that issues
        # the tokens of the pod's Kubernetes service account under Workload Identity, as GKE's does. What the
        # container sets itself wins, as an env entry would over the node's defaults.
        for key, value in self.pod.network_env().items():
            if key in ("NO_PROXY", "no_proxy"):
                hosts |= {h for h in value.split(",") if h}
            else:
                out.setdefault(key, value)
        no_proxy = ",".join(sorted(hosts))
        for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            out.setdefault(key, DEAD_PROXY)
        out["NO_PROXY"] = out["no_proxy"] = no_proxy
        return out

    def argv(self, env):
        command = [expand(a, env) for a in self.spec.get("command") or []]
        args = [expand(a, env) for a in self.spec.get("args") or []]
        command = [self.pod.ip if a in BIND_ALL else a for a in command]
        args = [self.pod.ip if a in BIND_ALL else a for a in args]
        return images.local_argv(self.spec.get("image"), command, args, env)

    # -- lifecycle --------------------------------------------------------------------
    def set_state(self, state):
        self.state = state
        self.pod.publish()

    def run(self):
        """Until the pod stops: start, probe, restart with back-off. Returns the last exit code (init/Job use it)."""
        policy = self.pod.spec.get("restartPolicy", "Always")
        failures = 0
        while not self.pod.stopping.is_set():
            try:
                env = self.environment()
                argv = self.argv(env)
                penv = self.process_env(env)
            except ConfigError as err:
                self.set_state({"waiting": {"reason": "CreateContainerConfigError", "message": str(err)}})
                self.pod.event("Warning", "Failed", "Error: %s" % err)
                failures += 1
                if self.pod.stopping.wait(self.pod.controller.backoff(failures)):
                    return None
                continue
            except images.ImageError as err:
                self.pod.event("Warning", "Failed", 'Failed to pull image "%s": %s' % (self.spec.get("image"), err))
                self.set_state({"waiting": {"reason": "ErrImagePull", "message": str(err)}})
                failures += 1
                if self.pod.stopping.wait(self.pod.controller.backoff(failures)):
                    return None
                self.set_state({"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "%s"'
                                            % self.spec.get("image")}})
                continue
            failures = 0
            if self.restarts == 0:
                self.pod.event("Normal", "Pulled", 'Container image "%s" already present on machine'
                               % self.spec.get("image"))
            self.pod.event("Normal", "Created", "Created container %s" % self.name)
            cwd = self.pod.host_path(self.spec.get("workingDir") or "/")
            os.makedirs(cwd, exist_ok=True)
            log = open(self.log_path, "ab")
            try:
                self.proc = procs.spawn(self.pod.controller.sandbox.config.state_dir, argv,
                                        "pod %s/%s %s" % (self.pod.namespace, self.pod.name, self.name),
                                        env=penv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
            except OSError as err:
                log.close()
                self.set_state({"waiting": {"reason": "RunContainerError", "message": str(err)}})
                self.pod.event("Warning", "Failed", "Error: %s" % err)
                if self.pod.stopping.wait(self.pod.controller.backoff(1)):
                    return None
                continue
            log.close()
            started_at = now()
            self.set_state({"running": {"startedAt": started_at}})
            self.pod.event("Normal", "Started", "Started container %s" % self.name)
            code = self.watch()
            self.ready = False
            self.started = False
            if code is None:  # the pod is being stopped
                return None
            finished = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                        "startedAt": started_at, "finishedAt": now()}
            self.exit_code = code
            procs.forget(self.pod.controller.sandbox.config.state_dir, self.proc.pid)
            if self.init or policy == "Never" or (policy == "OnFailure" and code == 0):
                self.set_state({"terminated": finished})
                return code
            if self.pod.max_restarts is not None and self.restarts >= self.pod.max_restarts:
                self.set_state({"terminated": finished})
                return code
            self.restarts += 1
            self.last_state = {"terminated": finished}
            delay = self.pod.controller.backoff(self.restarts)
            self.set_state({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off %s restarting failed "
                                        "container=%s pod=%s" % (self.pod.controller.human(delay), self.name,
                                                                 self.pod.name)}})
            self.pod.event("Warning", "BackOff", "Back-off restarting failed container %s in pod %s"
                           % (self.name, self.pod.name))
            if self.pod.stopping.wait(delay):
                return None
        return None

    def watch(self):
        """Probe the running process until it exits (its code) or the pod stops (None)."""
        scale = self.pod.controller.scale
        begun = time.monotonic()
        probes = {kind: Probe(self, kind, self.spec.get(kind)) for kind in ("startupProbe", "readinessProbe",
                                                                               "livenessProbe")}
        self.started = probes["startupProbe"].spec is None
        if probes["readinessProbe"].spec is None and self.started:
            self.ready = True
            self.pod.publish()
        while True:
            code = self.proc.poll()
            if code is not None:
                return code
            if self.pod.stopping.is_set():
                self.stop()  # the pod may have been stopped while this process was being started
                return None
            elapsed = time.monotonic() - begun
            if not self.started:
                result = probes["startupProbe"].tick(elapsed)
                if result is True:
                    self.started = True
                    if probes["readinessProbe"].spec is None:
                        self.ready = True
                    self.pod.publish()
                elif result is False:
                    self.kill("Startup probe failed: %s" % probes["startupProbe"].message)
            else:
                if probes["readinessProbe"].spec is not None:
                    result = probes["readinessProbe"].tick(elapsed)
                    if result is not None and result != self.ready:
                        self.ready = result
                        if not result:
                            self.pod.event("Warning", "Unhealthy", "Readiness probe failed: %s"
                                           % probes["readinessProbe"].message)
                        self.pod.publish()
                if probes["livenessProbe"].tick(elapsed) is False:
                    self.kill("Liveness probe failed: %s" % probes["livenessProbe"].message)
            self.pod.stopping.wait(max(0.05, min(0.2, 1.0 * scale)))

    def kill(self, why):
        self.pod.event("Warning", "Unhealthy", why)
        self.pod.event("Normal", "Killing", "Container %s failed its probe, will be restarted" % self.name)
        grace = self.pod.spec.get("terminationGracePeriodSeconds", 30) * self.pod.controller.scale
        procs.stop(self.pod.controller.sandbox.config.state_dir, self.proc, grace=max(grace, 1.0))

    def stop(self):
        if self.proc is not None:
            grace = self.pod.spec.get("terminationGracePeriodSeconds", 30)
            procs.stop(self.pod.controller.sandbox.config.state_dir, self.proc, grace=min(max(grace, 0), 15))

    def status(self):
        out = {"name": self.name, "image": self.spec.get("image", ""), "imageID": "", "ready": self.ready,
               "restartCount": self.restarts, "started": self.started and "running" in self.state,
               "state": self.state, "lastState": self.last_state}
        if "running" in self.state:
            out["containerID"] = "containerd://%s" % hashlib.sha256(
                ("%s/%s/%d" % (self.pod.uid, self.name, self.restarts)).encode()).hexdigest()
        return out


class Probe:
    """One of a container's probes: `tick(elapsed)` -> True/False once the thresholds say so, else None.

    initialDelaySeconds runs on the sandbox's clock (scaled). Failures count at most once per real periodSeconds, so
    a slow local process gets the failure window it would get in the cluster; between those, the probe is tried
    every half second so a success is seen at once instead of a period later.
    """

    FAST = 0.5

    def __init__(self, container, kind, spec):
        self.container = container
        self.kind = kind
        self.spec = spec
        self.message = ""
        self.successes = self.failures = 0
        self.next = None
        self.last_failure = None
        if spec:
            self.delay = spec.get("initialDelaySeconds", 0) * container.pod.controller.scale
            self.period = max(spec.get("periodSeconds", 10), 1)
            self.timeout = max(spec.get("timeoutSeconds", 1), 1)
            self.success_threshold = spec.get("successThreshold", 1)
            self.failure_threshold = spec.get("failureThreshold", 3)

    def tick(self, elapsed):
        if not self.spec or elapsed < self.delay:
            return None
        if self.next is not None and elapsed < self.next:
            return None
        self.next = elapsed + min(self.FAST, self.period)
        if self.check():
            self.successes += 1
            self.failures = 0
            self.last_failure = None
            return True if self.successes >= self.success_threshold else None
        self.successes = 0
        if self.last_failure is None or elapsed - self.last_failure >= self.period:
            self.failures += 1
            self.last_failure = elapsed
        return False if self.failures >= self.failure_threshold else None

    def _port(self, port):
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for c in self.container.pod.spec.get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == port:
                    return int(p["containerPort"])
        raise ValueError("port %s not found in the pod's containers" % port)

    def check(self):
        spec, pod = self.spec, self.container.pod
        try:
            if "httpGet" in spec:
                get = spec["httpGet"]
                host = get.get("host") or pod.ip
                url = "%s://%s:%d%s" % (get.get("scheme", "HTTP").lower(), host, self._port(get["port"]),
                                        get.get("path", "/"))
                req = urllib.request.Request(url, headers={h["name"]: h["value"]
                                                           for h in get.get("httpHeaders") or []})
                req.add_header("User-Agent", "kube-probe/1.31")
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                try:
                    with opener.open(req, timeout=self.timeout) as resp:
                        ok = 200 <= resp.status < 400
                        self.message = 'HTTP probe failed with statuscode: %d' % resp.status
                        return ok
                except urllib.error.HTTPError as err:
                    self.message = "HTTP probe failed with statuscode: %d" % err.code
                    return False
            if "tcpSocket" in spec:
                tcp = spec["tcpSocket"]
                with socket.create_connection((tcp.get("host") or pod.ip, self._port(tcp["port"])),
                                              timeout=self.timeout):
                    return True
            if "exec" in spec:
                c = self.container
                env = c.environment()
                argv = images.local_argv(c.spec.get("image"), spec["exec"].get("command") or [], [], env)
                res = subprocess.run(argv, env=c.process_env(env), cwd=pod.host_path(c.spec.get("workingDir") or "/"),
                                     capture_output=True, timeout=self.timeout * 5)
                self.message = (res.stdout + res.stderr).decode("utf-8", "replace").strip()[-300:]
                return res.returncode == 0
        except (OSError, ValueError, ConfigError, images.ImageError, subprocess.TimeoutExpired) as err:
            self.message = 'Get "%s": %s' % (spec.get("httpGet", {}).get("path", ""), err) if "httpGet" in spec \
                else str(err)
            return False
        return True


class Pod:
    def __init__(self, controller, api, namespace, name, template, owner, max_restarts=None):
        self.controller = controller
        self.api = api
        self.namespace = namespace
        self.name = name
        self.uid = str(uuid.uuid4())
        self.meta = copy.deepcopy(template.get("metadata") or {})
        self.spec = copy.deepcopy(template.get("spec") or {})
        self.owner = owner
        self.max_restarts = max_restarts
        self.ip = controller.network.pod_ip()
        self.dir = os.path.join(controller.sandbox.config.state_dir, "pods", api.key.replace("/", "_"), namespace,
                                name)
        os.makedirs(self.dir, exist_ok=True)
        self.stopping = threading.Event()
        self.lock = threading.RLock()
        self.started_at = now()
        self.phase = "Pending"
        self.init_done = not self.spec.get("initContainers")
        self.init_containers = [Container(self, c, init=True) for c in self.spec.get("initContainers") or []]
        self.containers = [Container(self, c) for c in self.spec.get("containers") or []]
        self.mounts = {}
        self.thread = None

    # -- files ------------------------------------------------------------------------
    def prepare_volumes(self):
        volumes = {v["name"]: v for v in self.spec.get("volumes") or []}
        for c in self.init_containers + self.containers:
            for m in c.spec.get("volumeMounts") or []:
                vol = volumes.get(m["name"], {})
                base = os.path.join(self.dir, "volumes", m["name"])
                sub = m.get("subPath") or expand(m.get("subPathExpr", ""), {"POD_NAME": self.name})
                path = os.path.join(base, sub) if sub else base
                os.makedirs(path if not sub or "." not in os.path.basename(sub) else base, exist_ok=True)
                files = None
                if "secret" in vol:
                    files = c._secret(vol["secret"]["secretName"], optional=vol["secret"].get("optional", False))
                elif "configMap" in vol:
                    files = c._configmap(vol["configMap"]["name"], optional=vol["configMap"].get("optional", False))
                if files:
                    items = (vol.get("secret") or vol.get("configMap")).get("items")
                    pairs = [(i["key"], i["path"]) for i in items] if items else [(k, k) for k in files]
                    for key, rel in pairs:
                        if key in files:
                            target = os.path.join(base, rel)
                            os.makedirs(os.path.dirname(target), exist_ok=True)
                            with open(target, "w") as fh:
                                fh.write(files[key])
                    if sub:
                        path = os.path.join(base, sub)
                self.mounts[m["mountPath"].rstrip("/") or "/"] = path

    def host_path(self, value, only_mounted=False):
        """Where a container path lives here; non-paths (and unmounted paths when only_mounted) stay as they are."""
        if not isinstance(value, str) or not value.startswith("/"):
            return value
        best = None
        for mount in self.mounts:
            if value == mount or value.startswith(mount + "/"):
                if best is None or len(mount) > len(best):
                    best = mount
        if best is not None:
            return self.mounts[best] + value[len(best):]
        if only_mounted:
            return value
        return os.path.join(self.dir, "rootfs", value.lstrip("/"))

    def host_paths_in_url(self, value):
        """A URL's query values that are mounted container paths (`rediss://...?ssl_ca_certs=/etc/ca/ca.pem`), mapped
        to where they live here; unmounted paths stay, so a file the pod was not given is still missing."""
        if not isinstance(value, str) or "://" not in value or "?" not in value:
            return value
        return URL_QUERY_PATH.sub(lambda m: m.group(1) + self.host_path(m.group(2), only_mounted=True), value)

    def network_env(self):
        """The Google side of the pod network, for this pod's Kubernetes service account (`Sandbox.network_env`)."""
        sandbox = self.controller.sandbox
        if "gcp" not in getattr(sandbox, "apps", {}):
            return {}
        ksa = self.spec.get("serviceAccountName") or self.spec.get("serviceAccount") or "default"
        return sandbox.network_env({"namespace": self.namespace, "service_account": ksa, "cluster": self.api.key})

    # -- objects ----------------------------------------------------------------------
    def ready(self):
        return self.phase == "Running" and bool(self.containers) and all(c.ready for c in self.containers)

    def pod_object(self):
        meta = {"name": self.name, "namespace": self.namespace, "uid": self.uid,
                "labels": dict(self.meta.get("labels") or {}), "annotations": dict(self.meta.get("annotations") or {}),
                "ownerReferences": [self.owner] if self.owner else []}
        spec = dict(self.spec, nodeName=NODE)
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("serviceAccountName", "default")
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": self.status()}

    def status(self):
        ready = self.ready()
        conds = [{"type": "PodScheduled", "status": "True"},
                 {"type": "Initialized", "status": "True" if self.init_done else "False"},
                 {"type": "ContainersReady", "status": "True" if ready else "False"},
                 {"type": "Ready", "status": "True" if ready else "False"}]
        for cond in conds:
            cond["lastProbeTime"] = None
            cond["lastTransitionTime"] = self.started_at
        out = {"phase": self.phase, "conditions": conds, "hostIP": "10.128.0.2", "podIP": self.ip,
               "podIPs": [{"ip": self.ip}], "startTime": self.started_at, "qosClass": "Guaranteed",
               "containerStatuses": [c.status() for c in self.containers]}
        if self.init_containers:
            out["initContainerStatuses"] = [c.status() for c in self.init_containers]
        return out

    def publish(self):
        with self.lock:
            if self.api.get_object("pods", self.namespace, self.name) is None:
                if not self.stopping.is_set():
                    self.api.put_object("pods", self.namespace, self.pod_object())
                return
            self.api.set_status("pods", self.namespace, self.name, self.status())
        self.controller.wake()

    def event(self, kind, reason, message):
        self.controller.event(self.api, self.namespace, {"apiVersion": "v1", "kind": "Pod", "name": self.name,
                                                         "namespace": self.namespace, "uid": self.uid},
                              kind, reason, message, component="kubelet")

    # -- run --------------------------------------------------------------------------
    def start(self):
        self.api.put_object("pods", self.namespace, self.pod_object())
        self.event("Normal", "Scheduled", "Successfully assigned %s/%s to %s" % (self.namespace, self.name, NODE))
        self.thread = threading.Thread(target=self.run, name="pod-%s" % self.name, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                self.prepare_volumes()
                break
            except ConfigError as err:
                self.event("Warning", "FailedMount", "MountVolume.SetUp failed: %s" % err)
                if self.stopping.wait(self.controller.backoff(2)):
                    return
        for c in self.init_containers:
            code = c.run()
            if code is None:
                return
            if code != 0:
                self.phase = "Failed"
                self.publish()
                return
        self.init_done = True
        self.phase = "Running"
        self.publish()
        results = {}
        threads = []
        for c in self.containers:
            t = threading.Thread(target=lambda c=c: results.__setitem__(c.name, c.run()), daemon=True,
                                 name="ctr-%s-%s" % (self.name, c.name))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        if self.stopping.is_set():
            return
        codes = list(results.values())
        self.phase = "Succeeded" if codes and all(code == 0 for code in codes) else "Failed"
        self.publish()

    def stop(self, remove=True):
        self.stopping.set()
        for c in self.containers + self.init_containers:
            c.stop()
        if remove:
            self.api.remove_object("pods", self.namespace, self.name)

    @property
    def finished(self):
        return self.phase in ("Succeeded", "Failed")


# ---- kube-proxy -------------------------------------------------------------------------------
class ServiceProxy:
    """One service port on the service's loopback IP, forwarding each connection to a ready endpoint."""

    def __init__(self, ip, port, endpoints):
        self.endpoints = endpoints  # callable -> [(ip, port)]
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(64)
        self.closed = False
        threading.Thread(target=self.serve, name="svc-%s:%d" % (ip, port), daemon=True).start()

    def serve(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.pipe, args=(client,), daemon=True).start()

    def pipe(self, client):
        targets = self.endpoints()
        if not targets:
            client.close()  # no ready endpoint: the connection is refused, as iptables rejects it
            return
        try:
            upstream = socket.create_connection(random.choice(targets), timeout=10)
        except OSError:
            client.close()
            return
        socks = [client, upstream]
        try:
            while True:
                readable, _, broken = select.select(socks, [], socks, 600)
                if broken or not readable:
                    break
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        raise EOFError
                    (upstream if s is client else client).sendall(data)
        except (OSError, EOFError):
            pass
        finally:
            client.close()
            upstream.close()

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---- controllers ------------------------------------------------------------------------------
def _rand(n=5):
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def _unroutable(host):
    """An address no process here may dial: a non-loopback IP literal, or a cluster-internal name."""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.endswith((".svc", ".svc.cluster.local", ".cluster.local"))


def _selected(labels, selector):
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


class Ingress:
    """A GCLB for one Ingress with a reserved global address."""

    def __init__(self, controller, api, namespace, name):
        from ..gcp.security_policies import evaluate
        from .loadbalancer import LoadBalancer

        self.controller, self.api, self.namespace, self.name = controller, api, namespace, name
        self.service = None
        self.port = None
        self.armor_message = None
        self.ip = None
        self.mapped = []
        self.lb = LoadBalancer(self.origin_policy, self.backend, evaluate)

    def backend(self):
        svc = self.controller.services.get((self.api.key, self.namespace, self.service))
        if svc is None:
            return None
        return svc["ip"], int(self.port)

    def backend_config(self):
        """The BackendConfig the service names for its port, or None; a bad annotation is GKE's sync error."""
        self.armor_message = None
        obj = self.api.get_object("services", self.namespace, self.service) or {}
        raw = (obj.get("metadata", {}).get("annotations") or {}).get(BACKEND_CONFIG_ANNOTATION)
        if not raw:
            return None
        try:
            ref = json.loads(raw)
            name = (ref.get("ports") or {}).get(str(self.port)) or ref.get("default")
        except (ValueError, AttributeError):
            self.armor_message = "Error syncing to GCP: invalid %s annotation %r" % (BACKEND_CONFIG_ANNOTATION, raw)
            return None
        config = self.api.get_object("backendconfigs", self.namespace, name) if name else None
        if config is None:
            self.armor_message = 'Error syncing to GCP: error getting BackendConfig for port %s on service "%s/%s": ' \
                                 "no BackendConfig for service port exists" % (self.port, self.namespace,
                                                                               self.service)
        return config

    def origin_policy(self):
        """The Cloud Armor policy in force on this backend now, as GCP stores it (None: every source passes)."""
        config = self.backend_config()
        name = (((config or {}).get("spec") or {}).get("securityPolicy") or {}).get("name")
        if not name:
            return None
        sandbox = self.controller.sandbox
        policies = getattr(sandbox.gcp, "security_policies", None)
        policy = policies.by_name(sandbox.config.project, name) if policies else None
        if policy is None:
            self.armor_message = "Error syncing to GCP: the given security policy \"%s\" does not exist" % name
        return policy

    def backend_service(self):
        return "projects/%s/global/backendServices/k8s1-sandbox-%s-%s-%s" % (
            self.controller.sandbox.config.project, self.namespace, self.service, self.port)

    def bind(self, ip):
        if ip == self.ip:
            return
        self.unbind()
        for port in (80, 443):
            self.controller.sandbox.map_address(ip, port, "127.0.0.1", self.lb.port,
                                                "ingress %s/%s" % (self.namespace, self.name))
            self.mapped.append((ip, port))
        self.ip = ip

    def unbind(self):
        for ip, port in self.mapped:
            self.controller.sandbox.unmap_address(ip, port)
        self.mapped = []
        self.ip = None

    def stop(self):
        self.unbind()
        self.lb.stop()


class WorkloadController:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.network = PodNetwork()
        self.lock = threading.RLock()
        self.apis = {}
        self.deployments = {}  # (cluster, ns, name) -> {"hash", "pods", "old", "rs"}
        self.jobs = {}  # (cluster, ns, name) -> {"uid", "pods", "failed", "succeeded", ...}
        self.services = {}  # (cluster, ns, name) -> {"ip", "proxies": {port: ServiceProxy}, "mapped": [...]}
        self.ingresses = {}  # (cluster, ns, name) -> Ingress
        self.errors = []  # the controllers' last internal errors, for the admin view
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="workloads", daemon=True)
        self.thread.start()

    @property
    def scale(self):
        return self.sandbox.config.time_scale

    def backoff(self, n):
        """The kubelet's restart back-off: 10 s, 20 s, 40 s ... at most 5 min, on the sandbox's clock."""
        return max(min(10.0 * 2 ** (max(n, 1) - 1), MAX_BACKOFF) * self.scale, 0.2)

    @staticmethod
    def human(seconds):
        return "%ds" % max(int(round(seconds)), 0) if seconds < 60 else "%dm%ds" % divmod(int(seconds), 60)

    def wake(self, *_args):
        self._wake.set()

    def attach(self, api):
        with self.lock:
            self.apis[api.key] = api
        api.watchers.append(self.wake)
        self.wake()

    def detach(self, api):
        with self.lock:
            self.apis.pop(api.key, None)
        self._teardown(lambda key: key[0] == api.key)

    def stop_all(self):
        self._stop.set()
        self._wake.set()
        self._teardown(lambda key: True)

    def _teardown(self, match):
        with self.lock:
            deps = [(k, self.deployments.pop(k)) for k in list(self.deployments) if match(k)]
            jobs = [(k, self.jobs.pop(k)) for k in list(self.jobs) if match(k)]
            ingresses = [(k, self.ingresses.pop(k)) for k in list(self.ingresses) if match(k)]
            services = [(k, self.services.pop(k)) for k in list(self.services) if match(k)]
        for _k, state in deps + jobs:
            for pod in state["pods"] + state.get("old", []):
                pod.stop(remove=False)
        for _k, ing in ingresses:
            ing.stop()
        for _k, svc in services:
            self._close_service(svc)

    # -- the loop ---------------------------------------------------------------------
    def loop(self):
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self.lock:
                apis = list(self.apis.values())
            for api in apis:
                self.reconcile(api)

    def reconcile(self, api):
        # Services first: a pod started in this pass finds the names it is given already mapped.
        for step in (self.reconcile_services, self.reconcile_deployments, self.reconcile_jobs,
                     self.reconcile_ingresses):
            try:
                step(api)
            except Exception as err:  # noqa: BLE001 - one controller's failure must not stop the others
                self.errors.append("%s: %s" % (step.__name__, err))
                del self.errors[:-20]

    # -- Deployments ------------------------------------------------------------------
    def reconcile_deployments(self, api):
        seen = set()
        for dep in api.find("deployments"):
            meta, spec = dep["metadata"], dep.get("spec") or {}
            template = spec.get("template")
            if not template or not (template.get("spec") or {}).get("containers"):
                continue  # nothing a kubelet could run
            key = (api.key, meta["namespace"], meta["name"])
            seen.add(key)
            digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
            with self.lock:
                state = self.deployments.setdefault(key, {"hash": None, "pods": [], "old": [], "revision": 0,
                                                          "old_rs": []})
            replicas = spec.get("replicas", 1)
            tmpl = copy.deepcopy(template)
            tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = digest
            if state["hash"] != digest or state.get("uid") != meta["uid"]:
                state["old"] += state["pods"]
                state["pods"] = []
                if state["hash"] is not None and state["rs"] not in state["old_rs"]:
                    state["old_rs"].append(state["rs"])
                state["hash"], state["uid"] = digest, meta["uid"]
                state["rs"] = "%s-%s" % (meta["name"], digest)
                state["revision"] += 1
                state["rs_uid"] = self.replicaset(api, dep, state, tmpl, digest, replicas)
            owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": state["rs"], "uid": state["rs_uid"],
                     "controller": True, "blockOwnerDeletion": True}
            while len(state["pods"]) < replicas:
                pod = Pod(self, api, meta["namespace"], "%s-%s" % (state["rs"], _rand()), tmpl, owner)
                state["pods"].append(pod)
                pod.start()
                self.event(api, meta["namespace"], {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                    "name": state["rs"], "namespace": meta["namespace"]},
                           "Normal", "SuccessfulCreate", "Created pod: %s" % pod.name, "replicaset-controller")
            while len(state["pods"]) > replicas:
                state["pods"].pop().stop()
            new_ready = [p for p in state["pods"] if p.ready()]
            # RollingUpdate: the old pods go once the new ones are ready (Recreate: at once).
            if state["old"] and (len(new_ready) >= replicas or
                                 (spec.get("strategy") or {}).get("type") == "Recreate"):
                for pod in state["old"]:
                    pod.stop()
                state["old"] = []
            if api.get_object("replicasets", meta["namespace"], state["rs"]) is None:
                state["rs_uid"] = self.replicaset(api, dep, state, tmpl, digest, replicas)
            self.replicaset_status(api, meta["namespace"], state["rs"], state["pods"], replicas)
            for name in state["old_rs"]:
                self.replicaset_status(api, meta["namespace"], name, [p for p in state["old"]
                                                                      if p.name.startswith(name + "-")], 0)
            self.deployment_status(api, dep, state, replicas)
        with self.lock:
            gone = [(k, self.deployments.pop(k)) for k in list(self.deployments) if k[0] == api.key and k not in seen]
        for (_c, ns, _n), state in gone:
            for pod in state["pods"] + state["old"]:
                pod.stop()
            # The garbage collector deletes the Deployment's ReplicaSets with it.
            for name in state["old_rs"] + [state["rs"]]:
                api.remove_object("replicasets", ns, name)

    @staticmethod
    def replicaset(api, dep, state, tmpl, digest, replicas):
        """The Deployment controller's ReplicaSet for this pod template, owned by the Deployment; returns its uid."""
        meta, spec = dep["metadata"], dep.get("spec") or {}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = digest
        existing = api.get_object("replicasets", meta["namespace"], state["rs"])
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": state["rs"], "namespace": meta["namespace"], "generation": 1,
                           "labels": dict(tmpl["metadata"]["labels"]),
                           "annotations": {"deployment.kubernetes.io/desired-replicas": str(replicas),
                                           "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                                           "deployment.kubernetes.io/revision": str(state["revision"])},
                           "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                                "uid": meta["uid"], "controller": True,
                                                "blockOwnerDeletion": True}]},
              "spec": {"replicas": replicas, "selector": selector, "template": copy.deepcopy(tmpl)},
              "status": (existing or {}).get("status") or {"replicas": 0}}
        if existing is not None:
            rs["metadata"]["generation"] = existing["metadata"].get("generation", 1) + (
                existing.get("spec") != rs["spec"])
        return api.put_object("replicasets", meta["namespace"], rs)["metadata"]["uid"]

    @staticmethod
    def replicaset_status(api, namespace, name, pods, replicas):
        current = api.get_object("replicasets", namespace, name)
        if current is None:
            return
        ready = [p for p in pods if p.ready()]
        status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": len(ready),
                  "availableReplicas": len(ready), "observedGeneration": current["metadata"].get("generation", 1)}
        # The API server omits zero counts (omitempty), except replicas, which is required.
        status = {k: v for k, v in status.items() if v != 0 or k == "replicas"}
        spec = {"replicas": replicas} if (current.get("spec") or {}).get("replicas") != replicas else None
        if spec:
            status["observedGeneration"] = current["metadata"].get("generation", 1) + 1
            current["metadata"]["generation"] = status["observedGeneration"]
            api.put_object("replicasets", namespace, dict(current, spec=dict(current["spec"], **spec),
                                                          status=status))
            return
        api.set_status("replicasets", namespace, name, status)

    def deployment_status(self, api, dep, state, replicas):
        meta = dep["metadata"]
        pods = state["pods"] + state["old"]
        ready = [p for p in pods if p.ready()]
        updated = len(state["pods"])
        strategy = (dep.get("spec") or {}).get("strategy") or {}
        max_unavailable = 0
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            raw = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
            max_unavailable = (replicas * int(raw[:-1]) // 100) if isinstance(raw, str) and raw.endswith("%") \
                else int(raw)
        available = len(ready)
        is_available = available >= replicas - max_unavailable
        complete = updated == replicas and not state["old"] and available >= replicas
        ts = now()
        old = {c["type"]: c for c in (dep.get("status") or {}).get("conditions") or []}

        def cond(ctype, ok, reason, message):
            prev = old.get(ctype) or {}
            status = "True" if ok else "False"
            changed = prev.get("status") != status or prev.get("reason") != reason
            return {"type": ctype, "status": status, "reason": reason, "message": message,
                    "lastUpdateTime": ts if changed else prev.get("lastUpdateTime", ts),
                    "lastTransitionTime": ts if prev.get("status") != status else prev.get("lastTransitionTime", ts)}

        problems = sorted({c.state["waiting"].get("message", c.state["waiting"]["reason"])
                           for p in state["pods"] for c in p.containers
                           if "waiting" in c.state and c.state["waiting"]["reason"] not in ("ContainerCreating",)})
        conditions = [
            cond("Available", is_available, "MinimumReplicasAvailable" if is_available else
                 "MinimumReplicasUnavailable", "Deployment has minimum availability." if is_available else
                 "Deployment does not have minimum availability." + (" " + "; ".join(problems) if problems else "")),
            cond("Progressing", True, "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                 'ReplicaSet "%s" has %s.' % (state["rs"], "successfully progressed" if complete
                                              else "is progressing")),
        ]
        status = {"observedGeneration": meta.get("generation", 1), "replicas": len(pods),
                  "updatedReplicas": updated, "readyReplicas": len(ready), "availableReplicas": available,
                  "unavailableReplicas": max(len(pods) - available, 0), "conditions": conditions}
        # The API server omits zero counts (omitempty), and clients read absence as 0.
        status = {k: v for k, v in status.items() if v != 0}
        current = dep.get("status") or {}
        if {k: v for k, v in current.items() if k != "conditions"} == {k: v for k, v in status.items()
                                                                       if k != "conditions"} and \
                [(c["type"], c["status"], c["message"]) for c in current.get("conditions") or []] == \
                [(c["type"], c["status"], c["message"]) for c in conditions]:
            return
        api.set_status("deployments", meta["namespace"], meta["name"], status)

    # -- Jobs -------------------------------------------------------------------------
    def reconcile_jobs(self, api):
        seen = set()
        for job in api.find("jobs"):
            meta, spec = job["metadata"], job.get("spec") or {}
            template = spec.get("template")
            if not template or not (template.get("spec") or {}).get("containers"):
                continue
            key = (api.key, meta["namespace"], meta["name"])
            seen.add(key)
            with self.lock:
                state = self.jobs.get(key)
                if state is None or state["uid"] != meta["uid"]:
                    if state is not None:
                        for pod in state["pods"]:
                            pod.stop()
                    state = self.jobs[key] = {"uid": meta["uid"], "pods": [], "failed": 0, "succeeded": 0,
                                              "done": None, "start": now(), "next": 0.0}
            if state["done"] is None:
                self.job_step(api, job, state)
            self.job_status(api, job, state)
        with self.lock:
            gone = [k for k in self.jobs if k[0] == api.key and k not in seen]
            states = [self.jobs.pop(k) for k in gone]
        for state in states:
            for pod in state["pods"]:
                pod.stop()

    def job_step(self, api, job, state):
        meta, spec = job["metadata"], job["spec"]
        limit = spec.get("backoffLimit", 6)
        completions = spec.get("completions", 1)
        active = [p for p in state["pods"] if not p.finished]
        for pod in state["pods"]:
            if pod.finished and not getattr(pod, "counted", False):
                pod.counted = True
                if pod.phase == "Succeeded":
                    state["succeeded"] += 1
                else:
                    state["failed"] += 1
                    state["next"] = time.monotonic() + self.backoff(state["failed"])
        restarts = sum(c.restarts for p in active for c in p.containers)
        if state["succeeded"] >= completions:
            state["done"] = ("Complete", "Completed", "Job completed")
        elif state["failed"] + restarts > limit:
            for pod in active:
                pod.stop(remove=False)
            state["done"] = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        if state["done"]:
            state["completion"] = now()
            kind = "Normal" if state["done"][0] == "Complete" else "Warning"
            self.event(api, meta["namespace"], {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                                "namespace": meta["namespace"], "uid": meta["uid"]},
                       kind, state["done"][1], state["done"][2], "job-controller")
            return
        if not active and time.monotonic() >= state["next"]:
            tmpl = copy.deepcopy(spec["template"])
            labels = tmpl.setdefault("metadata", {}).setdefault("labels", {})
            labels.update({"batch.kubernetes.io/job-name": meta["name"], "job-name": meta["name"],
                           "batch.kubernetes.io/controller-uid": meta["uid"], "controller-uid": meta["uid"]})
            owner = {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"],
                     "controller": True, "blockOwnerDeletion": True}
            pod = Pod(self, api, meta["namespace"], "%s-%s" % (meta["name"], _rand()), tmpl, owner,
                      max_restarts=limit)
            state["pods"].append(pod)
            pod.start()
            self.event(api, meta["namespace"], {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                                "namespace": meta["namespace"], "uid": meta["uid"]},
                       "Normal", "SuccessfulCreate", "Created pod: %s" % pod.name, "job-controller")

    def job_status(self, api, job, state):
        meta = job["metadata"]
        active = [p for p in state["pods"] if not p.finished and not p.stopping.is_set()]
        status = {"startTime": state["start"], "active": len(active), "succeeded": state["succeeded"],
                  "failed": state["failed"], "ready": len([p for p in active if p.ready()]),
                  "uncountedTerminatedPods": {}}
        if state["done"]:
            ctype, reason, message = state["done"]
            ts = state["completion"]
            conds = []
            if ctype == "Complete":
                conds.append({"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                              "message": "Reached expected number of succeeded pods", "lastProbeTime": ts,
                              "lastTransitionTime": ts})
                status["completionTime"] = ts
            else:
                conds.append({"type": "FailureTarget", "status": "True", "reason": reason, "message": message,
                              "lastProbeTime": ts, "lastTransitionTime": ts})
            conds.append({"type": ctype, "status": "True", "reason": reason, "message": message,
                          "lastProbeTime": ts, "lastTransitionTime": ts})
            status["conditions"] = conds
        status = {k: v for k, v in status.items() if v != 0}
        api.set_status("jobs", meta["namespace"], meta["name"], status)

    # -- Services ---------------------------------------------------------------------
    def ready_pods(self, api_key, namespace, selector):
        with self.lock:
            states = [s for k, s in list(self.deployments.items()) + list(self.jobs.items())
                      if k[0] == api_key and k[1] == namespace]
        return [p for s in states for p in s["pods"] + s.get("old", [])
                if p.ready() and not p.stopping.is_set() and _selected(p.meta.get("labels"), selector)]

    def endpoints(self, api_key, namespace, selector, target):
        out = []
        for pod in self.ready_pods(api_key, namespace, selector):
            port = target
            if not (isinstance(target, int) or str(target).isdigit()):
                port = next((p["containerPort"] for c in pod.spec.get("containers") or []
                             for p in c.get("ports") or [] if p.get("name") == target), None)
                if port is None:
                    continue
            out.append((pod.ip, int(port)))
        return out

    def reconcile_services(self, api):
        seen = set()
        for svc in api.find("services"):
            meta, spec = svc["metadata"], svc.get("spec") or {}
            ns, name = meta["namespace"], meta["name"]
            key = (api.key, ns, name)
            seen.add(key)
            with self.lock:
                state = self.services.get(key)
                if state is None or state["uid"] != meta["uid"]:
                    if state is not None:
                        self._close_service(state)
                    state = self.services[key] = {"uid": meta["uid"], "ip": self.network.service_ip(),
                                                  "proxies": {}, "mapped": []}
            cluster_ip = spec.get("clusterIP")
            if not cluster_ip:
                # The API server allocates the clusterIP when a Service is created.
                cluster_ip = self.network.cluster_ip()
                api.set_status("services", ns, name, svc.get("status") or {"loadBalancer": {}},
                               spec_updates={"clusterIP": cluster_ip, "clusterIPs": [cluster_ip]})
            selector = spec.get("selector") or {}
            ports = {}
            for p in spec.get("ports") or []:
                ports[int(p["port"])] = p.get("targetPort", p["port"])
            for port in list(state["proxies"]):
                if port not in ports:
                    state["proxies"].pop(port).close()
            for port, target in ports.items():
                if port not in state["proxies"]:
                    state["proxies"][port] = ServiceProxy(
                        state["ip"], port, lambda k=api.key, n=ns, s=selector, t=target: self.endpoints(k, n, s, t))
                else:
                    state["proxies"][port].endpoints = lambda k=api.key, n=ns, s=selector, t=target: \
                        self.endpoints(k, n, s, t)
            # The names live in this cluster's DNS only; the clusterIP is unique across clusters.
            names = [("%s.%s.svc.cluster.local" % (name, ns), api.key), ("%s.%s.svc" % (name, ns), api.key),
                     ("%s.%s" % (name, ns), api.key), (cluster_ip, None)]
            wanted = [(host, port, scope) for host, scope in names for port in ports]
            for host, port, scope in state["mapped"]:
                if (host, port, scope) not in wanted:
                    self.sandbox.unmap_address(host, port, cluster=scope)
            for host, port, scope in wanted:
                self.sandbox.map_address(host, port, state["ip"], port, "service %s/%s" % (ns, name), cluster=scope)
            state["mapped"] = wanted
        with self.lock:
            gone = [k for k in self.services if k[0] == api.key and k not in seen]
            states = [self.services.pop(k) for k in gone]
        for state in states:
            self._close_service(state)

    def _close_service(self, state):
        for proxy in state["proxies"].values():
            proxy.close()
        for host, port, scope in state["mapped"]:
            self.sandbox.unmap_address(host, port, cluster=scope)

    def rewrite(self, value, namespace, cluster=None):
        """Rewrite URL authorities the sandbox maps to their loopback endpoints; returns (value, hosts used).

        `cluster` is the key of the cluster the process runs in: its Service names resolve there only.
        """
        used = set()
        if not isinstance(value, str) or "://" not in value:
            return value, used

        def sub(m):
            host = m.group("host")
            port = int(m.group("port")) if m.group("port") else DEFAULT_PORTS.get(
                m.group("scheme").split("+")[0].lower())
            if port is None:
                return m.group(0)
            for candidate in (host, "%s.%s.svc.cluster.local" % (host, namespace)):
                try:
                    lhost, lport = self.sandbox.resolve(candidate.strip("[]"), port, cluster=cluster)
                except LookupError:
                    continue
                used.add(lhost)
                return "%s://%s%s:%d" % (m.group("scheme"), m.group("user") or "", lhost, lport)
            if _unroutable(host.strip("[]")):
                # Nothing serves it: the process gets "connection refused" from a closed loopback port instead of
                # dialling a private or public address (or asking DNS for a cluster name).
                return "%s://%s127.0.0.1:9" % (m.group("scheme"), m.group("user") or "")
            return m.group(0)

        return AUTHORITY.sub(sub, value), used

    # -- Ingresses --------------------------------------------------------------------
    def reconcile_ingresses(self, api):
        seen = set()
        for ing in api.find("ingresses"):
            meta, spec = ing["metadata"], ing.get("spec") or {}
            key = (api.key, meta["namespace"], meta["name"])
            address_name = (meta.get("annotations") or {}).get(STATIC_IP_ANNOTATION)
            backend = spec.get("defaultBackend") or next(
                (p.get("backend") for r in spec.get("rules") or [] for p in (r.get("http") or {}).get("paths") or []),
                None)
            service = (backend or {}).get("service") or {}
            if not address_name or not service:
                continue
            seen.add(key)
            with self.lock:
                lb = self.ingresses.get(key)
                if lb is None:
                    lb = self.ingresses[key] = Ingress(self, api, meta["namespace"], meta["name"])
                    self.watch_policies()
            lb.service = service.get("name")
            lb.hosts = [r["host"] for r in spec.get("rules") or [] if r.get("host")]
            port = service.get("port") or {}
            lb.port = port.get("number")
            if lb.port is None and port.get("name"):
                svc = api.get_object("services", meta["namespace"], lb.service) or {}
                lb.port = next((p["port"] for p in (svc.get("spec") or {}).get("ports") or []
                                if p.get("name") == port["name"]), None)
            project = self.sandbox.config.project
            addr = self.sandbox.store.table("compute.addresses").get(
                "projects/%s/global/addresses/%s" % (project, address_name))
            if addr is None:
                lb.unbind()
                lb.message = "the given static IP name %s doesn't translate to an existing static IP" % address_name
                continue
            lb.bind(addr["address"])
            lb.message = "serving on %s" % addr["address"]
            api.set_status("ingresses", meta["namespace"], meta["name"],
                           {"loadBalancer": {"ingress": [{"ip": addr["address"]}]}})
        with self.lock:
            gone = [k for k in self.ingresses if k[0] == api.key and k not in seen]
            lbs = [self.ingresses.pop(k) for k in gone]
        for lb in lbs:
            lb.stop()

    def watch_policies(self):
        """Tell the GCP stand-in which security policies a load balancer uses, so deleting one fails as in GCP."""
        policies = getattr(self.sandbox.gcp, "security_policies", None)
        if policies is not None and self.policy_user not in policies.users:
            policies.users.append(self.policy_user)

    def policy_user(self, policy_link):
        with self.lock:
            lbs = list(self.ingresses.values())
        for lb in lbs:
            policy = lb.origin_policy()
            if policy and policy["selfLink"] == policy_link:
                return lb.backend_service()
        return None

    # -- Events -----------------------------------------------------------------------
    def event(self, api, namespace, involved, kind, reason, message, component):
        base = "%s.%s" % (involved["name"], hashlib.sha1(("%s/%s/%s" % (involved.get("uid", ""), reason, message))
                                                         .encode()).hexdigest()[:16])
        ts = now()
        with api.lock:
            current = api.get_object("events", namespace, base)
            if current is not None:
                current["count"] = current.get("count", 1) + 1
                current["lastTimestamp"] = ts
                api.put_object("events", namespace, current)
                return
            api.put_object("events", namespace, {
                "apiVersion": "v1", "kind": "Event", "metadata": {"name": base, "namespace": namespace},
                "involvedObject": involved, "reason": reason, "message": message, "type": kind, "count": 1,
                "firstTimestamp": ts, "lastTimestamp": ts, "source": {"component": component, "host": NODE},
                "reportingComponent": component, "reportingInstance": NODE})

    # -- what the admin endpoint shows ------------------------------------------------
    def describe(self):
        with self.lock:
            items = list(self.deployments.items()) + list(self.jobs.items())
            ings = list(self.ingresses.items())
        out = {"pods": [], "ingresses": [], "errors": list(self.errors)}
        for (cluster, ns, owner), state in items:
            for pod in state["pods"] + state.get("old", []):
                out["pods"].append({"cluster": cluster, "namespace": ns, "owner": owner, "name": pod.name,
                                    "ip": pod.ip, "phase": pod.phase, "ready": pod.ready(), "dir": pod.dir,
                                    "containers": [dict(c.status(), log=c.log_path) for c in pod.containers]})
        for (cluster, ns, name), lb in ings:
            out["ingresses"].append({"cluster": cluster, "namespace": ns, "name": name, "ip": lb.ip,
                                     "hosts": list(getattr(lb, "hosts", [])),
                                     "service": lb.service, "port": lb.port, "message": getattr(lb, "message", ""),
                                     "armor_message": lb.armor_message})
        return out
