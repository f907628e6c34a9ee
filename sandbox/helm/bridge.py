"""TEMPORARY BRIDGE - delete when real Helm (helm-sdkpy) renders the charts (issue 16 items 1-3, branch kubeapi).

A template-free rendering of the objects the prefect-server and prefect-worker charts render with the values the
prefect_server / prefect_worker roles build, written from ../shared/charts/*/templates (deployment.yaml,
service.yaml, ingress.yaml, serviceaccount.yaml). It exists only so the sandbox's generic workload runner
(sandbox/kube/workloads.py) has chart-shaped objects to run until real Helm lands; it covers the value paths the
project uses, not the charts' every option.
"""

from __future__ import annotations

import copy


def _fullname(chart, release, values):
    if values.get("fullnameOverride"):
        return values["fullnameOverride"][:63].rstrip("-")
    name = values.get("nameOverride") or chart
    return (release if name in release else "%s-%s" % (release, name))[:63].rstrip("-")


def _labels(chart, meta, release, component):
    return {"app.kubernetes.io/name": chart, "helm.sh/chart": "%s-%s" % (chart, meta["version"]),
            "app.kubernetes.io/instance": release, "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/version": meta["appVersion"], "app.kubernetes.io/component": component,
            "prefect-version": meta["appVersion"]}


def _probe(spec, config):
    out = dict(spec)
    out.update(copy.deepcopy(config or {}))
    return out


def _meta(name, namespace, labels, annotations=None):
    meta = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        meta["annotations"] = {k: str(v) for k, v in annotations.items()}
    return meta


def render_server(meta, release, namespace, v):
    chart = "prefect-server"
    name = _fullname(chart, release, v)
    labels = _labels(chart, meta, release, "server")
    match = {"app.kubernetes.io/name": chart, "app.kubernetes.io/instance": release,
             "app.kubernetes.io/component": "server"}
    server, svc, image = v["server"], v["service"], v["global"]["prefect"]["image"]
    base = server.get("apiBasePath", "/api")
    env = [{"name": "HOME", "value": "/home/prefect"},
           {"name": "PREFECT_DEBUG_MODE", "value": str(server.get("debug", False)).lower()},
           {"name": "PREFECT_LOGGING_SERVER_LEVEL", "value": str(server.get("loggingLevel", "WARNING"))},
           {"name": "PREFECT_SERVER_API_BASE_PATH", "value": base},
           {"name": "PREFECT_SERVER_API_HOST", "value": "0.0.0.0"},
           {"name": "PREFECT_SERVER_API_PORT", "value": str(svc["targetPort"])},
           {"name": "PREFECT_UI_API_URL", "value": server["uiConfig"]["prefectUiApiUrl"].replace(
               "{{ .Values.server.apiBasePath }}", base)},
           {"name": "PREFECT_UI_STATIC_DIRECTORY", "value": server["uiConfig"]["prefectUiStaticDirectory"]}]
    db = v.get("externalDatabase") or {}
    if (v.get("sqlite") or {}).get("enabled"):
        env.append({"name": "PREFECT_SERVER_DATABASE_CONNECTION_URL", "value": "sqlite+aiosqlite:////data/prefect.db"})
    elif db.get("connectionString"):
        env.append({"name": "PREFECT_SERVER_DATABASE_CONNECTION_URL", "value": db["connectionString"]})
    elif db.get("connectionStringSecretKey"):
        env.append({"name": "PREFECT_SERVER_DATABASE_CONNECTION_URL", "valueFrom": {"secretKeyRef": {
            "name": db.get("existingSecret"), "key": db["connectionStringSecretKey"]}}})
    else:
        env.append({"name": "PREFECT_SERVER_DATABASE_CONNECTION_URL", "valueFrom": {"secretKeyRef": {
            "name": "%s-postgresql-connection" % name, "key": "connection-string"}}})
    auth = server.get("basicAuth") or {}
    if auth.get("enabled"):
        if auth.get("existingSecret"):
            env.append({"name": "PREFECT_SERVER_API_AUTH_STRING", "valueFrom": {"secretKeyRef": {
                "name": auth["existingSecret"], "key": "auth-string"}}})
        else:
            env.append({"name": "PREFECT_SERVER_API_AUTH_STRING", "value": str(auth.get("authString", ""))})
    env += copy.deepcopy(v["global"]["prefect"].get("env") or []) + copy.deepcopy(server.get("env") or [])
    args = server.get("args") or (["prefect", "server", "start", "--port", str(svc["targetPort"])] +
                                  [str(a) for a in server.get("extraArgs") or []])
    container = {"name": "prefect-server", "image": "%s:%s" % (image["repository"], image["prefectTag"]),
                 "imagePullPolicy": image.get("pullPolicy", "IfNotPresent"),
                 "command": server.get("command") or ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"],
                 "args": args, "workingDir": "/home/prefect", "ports": [{"containerPort": int(svc["targetPort"])}],
                 "env": env,
                 "volumeMounts": [{"mountPath": "/home/prefect", "name": "scratch", "subPathExpr": "home"},
                                  {"mountPath": "/tmp", "name": "scratch", "subPathExpr": "tmp"},
                                  {"mountPath": server["uiConfig"]["prefectUiStaticDirectory"], "name": "scratch",
                                   "subPathExpr": "ui-build"}]}
    envfrom = []
    if server.get("extraEnvVarsCM"):
        envfrom.append({"configMapRef": {"name": server["extraEnvVarsCM"]}})
    if server.get("extraEnvVarsSecret"):
        envfrom.append({"secretRef": {"name": server["extraEnvVarsSecret"]}})
    if envfrom:
        container["envFrom"] = envfrom
    if server.get("resources"):
        container["resources"] = copy.deepcopy(server["resources"])
    port = int(svc["targetPort"])
    for kind, default_path in (("startupProbe", base + "/health"), ("livenessProbe", base + "/health"),
                               ("readinessProbe", base + "/ready")):
        probe = server.get(kind) or {}
        if probe.get("enabled"):
            path = default_path if kind == "startupProbe" else (probe.get("path") or default_path).replace(
                "{{ .Values.server.apiBasePath }}", base)
            container[kind] = _probe({"httpGet": {"path": path, "port": port}}, probe.get("config"))
    pod_spec = {"serviceAccountName": (v.get("serviceAccount") or {}).get("name") or name,
                "automountServiceAccountToken": server.get("automountServiceAccountToken", True),
                "containers": [container], "volumes": [{"name": "scratch", "emptyDir": {}}]}
    if server.get("terminationGracePeriodSeconds") is not None:
        pod_spec["terminationGracePeriodSeconds"] = server["terminationGracePeriodSeconds"]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace, labels),
                  "spec": {"revisionHistoryLimit": server.get("revisionHistoryLimit", 10),
                           "replicas": 1 if (v.get("sqlite") or {}).get("enabled") else server.get("replicaCount", 1),
                           "selector": {"matchLabels": match},
                           "strategy": copy.deepcopy(server.get("updateStrategy") or {"type": "RollingUpdate"}),
                           "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec}}}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": _meta(name, namespace, labels, svc.get("annotations")),
               "spec": {"type": svc.get("type", "ClusterIP"),
                        "ports": [{"name": svc.get("portName", "server-svc-port"), "port": int(svc["port"]),
                                   "protocol": "TCP", "targetPort": int(svc["targetPort"])}],
                        "selector": match}}
    objects = [("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                    "metadata": _meta(pod_spec["serviceAccountName"], namespace, labels)}),
               ("services", service), ("deployments", deployment)]
    ingress = v.get("ingress") or {}
    if ingress.get("enabled"):
        host = ingress.get("host") or {}
        spec = {"rules": []}
        if ingress.get("className"):
            spec["ingressClassName"] = ingress["className"]
        if host.get("hostname"):
            spec["rules"].append({"host": host["hostname"], "http": {"paths": [
                {"path": host.get("path", "/"), "pathType": host.get("pathType", "ImplementationSpecific"),
                 "backend": {"service": {"name": name, "port": {"name": ingress.get("servicePort",
                                                                                     "server-svc-port")}}}}]}})
        tls = []
        if ingress.get("tls") and ingress.get("selfSigned"):
            tls.append({"hosts": [host.get("hostname")], "secretName": "%s-tls" % host.get("hostname")})
        tls += copy.deepcopy(ingress.get("extraTls") or [])
        if tls:
            spec["tls"] = tls
        objects.append(("ingresses", {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                      "metadata": _meta(name, namespace, labels, ingress.get("annotations")),
                                      "spec": spec}))
    return objects


def render_worker(meta, release, namespace, v):
    chart = "prefect-worker"
    name = _fullname(chart, release, v)
    labels = _labels(chart, meta, release, "worker")
    match = {"app.kubernetes.io/name": chart, "app.kubernetes.io/instance": release,
             "app.kubernetes.io/component": "worker"}
    worker, config = v["worker"], v["worker"]["config"]
    args = worker.get("args") or None
    if not args:
        args = ["prefect", "worker", "start", "--type", str(config["type"]), "--pool", str(config["workPool"])]
        for queue in config.get("workQueues") or []:
            args += ["--work-queue", str(queue)]
        args += ["--install-policy", str(config.get("installPolicy", "prompt"))]
        if config.get("limit"):
            args += ["--limit", str(config["limit"])]
        if (worker.get("livenessProbe") or {}).get("enabled"):
            args.append("--with-healthcheck")
        if config.get("name"):
            args += ["--name", str(config["name"])]
        args += [str(a) for a in worker.get("extraArgs") or []]
    api = worker.get("selfHostedServerApiConfig") or {}
    cloud = worker.get("cloudApiConfig") or {}
    api_url = api.get("apiUrl", "")
    if worker.get("apiConfig") == "cloud":
        api_url = "%s/accounts/%s/workspaces/%s" % (cloud.get("cloudUrl"), cloud.get("accountId"),
                                                    cloud.get("workspaceId"))
    env = [{"name": "HOME", "value": "/home/prefect"},
           {"name": "PREFECT_WORKER_PREFETCH_SECONDS", "value": str(config.get("prefetchSeconds", 10))},
           {"name": "PREFECT_WORKER_QUERY_SECONDS", "value": str(config.get("queryInterval", 5))},
           {"name": "PREFECT_API_ENABLE_HTTP2", "value": str(config.get("http2", True)).lower()},
           {"name": "PREFECT_API_URL", "value": str(api_url)},
           {"name": "PREFECT_KUBERNETES_CLUSTER_UID", "value": str(worker.get("clusterUid") or "")}]
    if not config.get("observerClusterWide"):
        env.append({"name": "PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES",
                    "value": config.get("jobNamespace") or namespace})
    if worker.get("apiConfig") == "cloud":
        env.append({"name": "PREFECT_API_KEY", "valueFrom": {"secretKeyRef": {
            "name": cloud["apiKeySecret"]["name"], "key": cloud["apiKeySecret"]["key"]}}})
    env.append({"name": "PREFECT_DEBUG_MODE", "value": str(worker["image"].get("debug", False)).lower()})
    auth = api.get("basicAuth") or {}
    if auth.get("enabled") and worker.get("apiConfig") == "selfHostedServer":
        if auth.get("existingSecret"):
            env += [{"name": "PREFECT_API_AUTH_STRING", "valueFrom": {"secretKeyRef": {
                        "name": auth["existingSecret"], "key": "auth-string"}}},
                    {"name": "PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME",
                     "value": auth["existingSecret"]},
                    {"name": "PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_KEY",
                     "value": "auth-string"}]
        else:
            env.append({"name": "PREFECT_API_AUTH_STRING", "value": str(auth.get("authString", ""))})
    env += copy.deepcopy(worker.get("extraEnvVars") or [])
    image = worker["image"]
    container = {"name": "prefect-worker", "image": "%s:%s" % (image["repository"], image["prefectTag"]),
                 "imagePullPolicy": image.get("pullPolicy", "IfNotPresent"),
                 "command": worker.get("command") or ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"],
                 "args": args, "workingDir": "/home/prefect", "env": env, "envFrom": [],
                 "volumeMounts": [{"mountPath": "/home/prefect", "name": "scratch", "subPathExpr": "home"},
                                  {"mountPath": "/tmp", "name": "scratch", "subPathExpr": "tmp"}]}
    for key, ref in (("extraEnvVarsCM", "configMapRef"), ("extraEnvVarsSecret", "secretRef")):
        if worker.get(key):
            container["envFrom"].append({ref: {"name": worker[key]}})
    if worker.get("resources"):
        container["resources"] = copy.deepcopy(worker["resources"])
    if (worker.get("livenessProbe") or {}).get("enabled"):
        container["livenessProbe"] = _probe({"httpGet": {"path": "/health", "port": 8080}},
                                            worker["livenessProbe"].get("config"))
    sa = v.get("serviceAccount") or {}
    sa_name = sa.get("name") or name
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace, labels),
                  "spec": {"revisionHistoryLimit": worker.get("revisionHistoryLimit", 10),
                           "replicas": worker.get("replicaCount", 1), "selector": {"matchLabels": match},
                           "template": {"metadata": {"labels": dict(labels)}, "spec": {
                               "serviceAccountName": sa_name, "containers": [container],
                               "volumes": [{"name": "scratch", "emptyDir": {}}]}}}}
    objects = []
    if sa.get("create", True):
        objects.append(("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                            "metadata": _meta(sa_name, namespace, labels, sa.get("annotations"))}))
    objects.append(("deployments", deployment))
    return objects


RENDERERS = {"prefect-server": render_server, "prefect-worker": render_worker}
PATHS = {"serviceaccounts": "/api/v1", "services": "/api/v1", "deployments": "/apis/apps/v1",
         "ingresses": "/apis/networking.k8s.io/v1"}


def render(meta, release, namespace, values):
    return RENDERERS[meta["name"]](meta, release, namespace, values)


def apply(cluster, namespace, objects, previous=()):
    """Create or replace each object (helm's upgrade), delete what the previous revision had and this one lacks."""
    keep = set()
    for resource, obj in objects:
        base = "%s/namespaces/%s/%s" % (PATHS[resource], namespace, resource)
        name = obj["metadata"]["name"]
        keep.add((resource, name))
        current = cluster.request("GET", "%s/%s" % (base, name))
        if current is None:
            cluster.request("POST", base, obj)
            continue
        new = copy.deepcopy(obj)
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if resource == "services" and (current.get("spec") or {}).get("clusterIP"):
            new["spec"]["clusterIP"] = current["spec"]["clusterIP"]
            new["spec"]["clusterIPs"] = current["spec"].get("clusterIPs", [current["spec"]["clusterIP"]])
        cluster.request("PUT", "%s/%s" % (base, name), new)
    delete(cluster, namespace, [(r, o) for r, o in previous if (r, o["metadata"]["name"]) not in keep])


def delete(cluster, namespace, objects):
    for resource, obj in objects:
        cluster.request("DELETE", "%s/namespaces/%s/%s/%s" % (PATHS[resource], namespace, resource,
                                                            obj["metadata"]["name"]), ok=(200, 202, 404))
