"""One Autopilot cluster's Kubernetes API: TLS on a loopback port, reached through the kube family's CONNECT proxy.

Serves what the collection's roles and helm use: discovery, core/v1 namespaces, secrets, configmaps,
serviceaccounts, services, apps/v1 deployments and GKE's cloud.google.com/v1 backendconfigs (a CRD on every GKE
cluster; its spec is checked against the CRD's schema for the fields the platform uses), with the real object, list and Status shapes, label selectors,
merge patches, server-side dry run and resourceVersion. Unknown fields are dropped with a warning, or refused under
`fieldValidation=Strict`, as the API server does.
"""

from __future__ import annotations

import base64
import binascii
import collections
import copy
import datetime
import json
import os
import re
import tempfile
import threading
import time
import uuid

import yaml

from .. import tls
from ..web import ApiError, App, Response, Server
from . import protobuf, schemas, tables

HISTORY = 5000  # watch events kept for resumes from a list's resourceVersion

# One Kubernetes version everywhere: a cluster answers /version with the GKE API's currentMasterVersion (the
# REGULAR channel's when the cluster is not in the container stand-in, as in unit tests).
DEFAULT_VERSION = "1.33.5-gke.1100"

EVENT_FIELDS = {"involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "type",
                "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance"}
# resource -> (group/version, kind, namespaced, top-level fields the type has)
RESOURCES = {
    "namespaces": ("v1", "Namespace", False, {"spec", "status"}),
    "secrets": ("v1", "Secret", True, {"data", "stringData", "type", "immutable"}),
    "configmaps": ("v1", "ConfigMap", True, {"data", "binaryData", "immutable"}),
    "serviceaccounts": ("v1", "ServiceAccount", True, {"secrets", "imagePullSecrets", "automountServiceAccountToken"}),
    "services": ("v1", "Service", True, {"spec", "status"}),
    "pods": ("v1", "Pod", True, {"spec", "status"}),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaim", True, {"spec", "status"}),
    "events": ("v1", "Event", True, EVENT_FIELDS),
    "deployments": ("apps/v1", "Deployment", True, {"spec", "status"}),
    "replicasets": ("apps/v1", "ReplicaSet", True, {"spec", "status"}),
    "jobs": ("batch/v1", "Job", True, {"spec", "status"}),
    "ingresses": ("networking.k8s.io/v1", "Ingress", True, {"spec", "status"}),
    "roles": ("rbac.authorization.k8s.io/v1", "Role", True, {"rules"}),
    "rolebindings": ("rbac.authorization.k8s.io/v1", "RoleBinding", True, {"subjects", "roleRef"}),
    "horizontalpodautoscalers": ("autoscaling/v2", "HorizontalPodAutoscaler", True, {"spec", "status"}),
    "poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget", True, {"spec", "status"}),
    "backendconfigs": ("cloud.google.com/v1", "BackendConfig", True, {"spec", "status"}),
}
SHORT_NAMES = {"namespaces": ["ns"], "configmaps": ["cm"], "serviceaccounts": ["sa"], "services": ["svc"],
               "pods": ["po"], "persistentvolumeclaims": ["pvc"], "events": ["ev"], "deployments": ["deploy"],
               "replicasets": ["rs"], "ingresses": ["ing"],
               "horizontalpodautoscalers": ["hpa"], "poddisruptionbudgets": ["pdb"], "backendconfigs": ["bc"]}
CATEGORY_ALL = {"pods", "services", "deployments", "replicasets", "jobs", "horizontalpodautoscalers"}
# Kinds whose status only controllers write: a client's create or update never sets it.
STATUS_KINDS = {"namespaces", "services", "pods", "persistentvolumeclaims", "deployments", "replicasets", "jobs",
                "ingresses", "horizontalpodautoscalers", "poddisruptionbudgets"}
# API group prefixes served besides the core group, and their preferred versions.
GROUPS = {"apps": "apps/v1", "batch": "batch/v1", "networking.k8s.io": "networking.k8s.io/v1",
          "rbac.authorization.k8s.io": "rbac.authorization.k8s.io/v1", "autoscaling": "autoscaling/v2",
          "policy": "policy/v1", "cloud.google.com": "cloud.google.com/v1"}
# The BackendConfig CRD's spec fields (GKE's ingress-gce BackendConfigSpec).
BACKENDCONFIG_SPEC = {"cdn", "connectionDraining", "customRequestHeaders", "customResponseHeaders", "healthCheck",
                      "iap", "logging", "securityPolicy", "sessionAffinity", "timeoutSec"}
METADATA_FIELDS = {"name", "generateName", "namespace", "labels", "annotations", "uid", "resourceVersion",
                   "creationTimestamp", "ownerReferences", "finalizers", "managedFields", "generation",
                   "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"}
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_error(code, reason, message, name=None, kind=None):
    details = {}
    if name is not None:
        details["name"] = name
    if kind is not None:
        details["kind"] = kind
    return ApiError(code, message, reason=reason, details=details)


def make_tls(endpoint):
    """A cluster CA and a serving certificate for the endpoint IP, as GKE issues them."""
    ca, ca_key = tls.new_ca("sandbox-cluster-ca-%s" % uuid.uuid4().hex[:8], 30, None, key_usage=())
    cert, key = tls.issue(ca, ca_key, endpoint, ["kubernetes.default.svc"], [endpoint], server_auth=False)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = tls.server_context(os.path.join(tmp, "serving.pem"), cert, key, chain=[ca])
    return ctx, base64.b64encode(tls.pem(ca)).decode()


class ClusterApi(App):
    family = "kube"
    rate_faults = False

    def __init__(self, sandbox, key, endpoint):
        super().__init__(sandbox)
        self.key = key
        self.endpoint = endpoint
        self.lock = threading.RLock()
        self.objects = {}  # (resource, namespace, name) -> object
        self.created_by_clients = set()  # keys of objects a client POSTed (not the workload runner's)
        self.rv = 1
        self.watchers = []  # callables(api, event, resource, obj) -- the workload runner wakes on them
        self.open_watches = collections.Counter()  # (resource, namespace): watch streams being served now
        self.changed = threading.Condition(self.lock)
        self.history = collections.deque(maxlen=HISTORY)  # (rv, event, resource, namespace, object) for watches
        self.stopped = False
        self.ips = set()
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._store("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                                             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        self.route("GET", "/version", self.version)
        self.route("GET", "/openapi/v2", self.openapi_v2)
        self.route("GET", "/openapi/v3", self.openapi_v3)
        self.route("GET", "/api", self.api_versions)
        self.route("GET", "/apis", self.api_groups)
        self.route("GET", "/api/v1", lambda req: self.resource_list("v1"))
        for group_version in GROUPS.values():
            self.route("GET", "/apis/" + group_version, lambda req, gv=group_version: self.resource_list(gv))
        for prefix in ["/api/v1"] + ["/apis/" + gv for gv in GROUPS.values()]:
            self.route("GET", prefix + "/{resource}", self.list_all)
            self.route("GET", prefix + "/namespaces/{namespace}/{resource}", self.list)
            self.route("POST", prefix + "/namespaces/{namespace}/{resource}", self.create)
            self.route("POST", prefix + "/{resource}", self.create)
            for method, handler in (("GET", self.get), ("PUT", self.replace), ("PATCH", self.patch),
                                    ("DELETE", self.delete)):
                self.route(method, prefix + "/namespaces/{namespace}/{resource}/{name}", handler)
                self.route(method, prefix + "/{resource}/{name}", handler)
        # /api/v1/namespaces/{name} is matched by "/{resource}/{name}" with resource=namespaces.
        self.route("GET", "/api/v1/namespaces/{namespace}/{resource}/{name}/log", self.pod_log)
        self.tls, self.ca_b64 = make_tls(endpoint)
        self.server = Server(self, sandbox, 0, ssl_context=self.tls).start()

    # ---- plumbing ----------------------------------------------------------------------
    def error_response(self, err):
        reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
                   409: "AlreadyExists", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
                   500: "InternalError", 503: "ServiceUnavailable"}
        reason = err.reason if err.reason and err.reason[0].isupper() else reasons.get(err.status, "Unknown")
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": err.message,
                "reason": reason, "details": err.extra.get("details", {}), "code": err.status}
        return Response(err.status, body, err.headers)

    def authenticate(self, req):
        gcp = self.sandbox.gcp
        try:
            principal = gcp.auth.check(req)
        except ApiError:
            raise ApiError(401, "Unauthorized", reason="Unauthorized")
        params = getattr(req, "params", None) or {}
        gcp.iam.check_kube(principal, req.method, params.get("resource"), params.get("namespace"), params.get("name"))

    def stop(self):
        with self.changed:
            self.stopped = True
            self.changed.notify_all()
        self.server.stop()

    def dispatch(self, req):
        ctype = (req.header("Content-Type") or "").split(";")[0].strip()
        if ctype == protobuf.CONTENT_TYPE and req.body:
            try:
                req._json = protobuf.decode(req.body)
            except (protobuf.ProtobufError, UnicodeDecodeError) as err:
                raise status_error(415 if "decodes protobuf" in str(err) else 400,
                                   "UnsupportedMediaType" if "decodes protobuf" in str(err) else "BadRequest", str(err))
        elif ctype not in ("", "application/json", "application/yaml", "application/merge-patch+json",
                           "application/strategic-merge-patch+json", "application/json-patch+json",
                           "application/apply-patch+yaml") and req.body:
            raise status_error(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                               "accepted media types include: application/json, application/yaml, "
                               "application/vnd.kubernetes.protobuf")
        elif ctype in ("application/yaml", "application/apply-patch+yaml") and req.body:
            try:
                req._json = yaml.safe_load(req.body.decode("utf-8"))
            except yaml.YAMLError as err:
                raise status_error(400, "BadRequest", "error converting YAML to JSON: %s" % err)
        resp = super().dispatch(req)
        accept = req.header("Accept") or ""
        if "as=Table" in accept and req.method == "GET" and resp.status == 200 and isinstance(resp.body, dict) \
                and req.params.get("resource") in RESOURCES and getattr(resp, "stream", None) is None:
            resp = Response(200, tables.table(req.params["resource"], resp.body, req.query.get("includeObject",
                                                                                                  "Metadata")),
                            resp.headers)
        return resp

    def inventory(self):
        """What clients manage here: the objects they created, with Helm's revision Secrets folded into releases."""
        out = {}
        with self.lock:
            for key in sorted(self.created_by_clients):
                obj = self.objects.get(key)
                if obj is None:
                    continue
                resource, ns, name = key
                if resource == "secrets" and obj.get("type") == "helm.sh/release.v1":
                    labels = obj["metadata"].get("labels", {})
                    out.setdefault("helm.releases", set()).add("%s/%s" % (ns, labels.get("name", name)))
                else:
                    out.setdefault("kube." + resource, set()).add("%s/%s" % (ns, name) if ns else name)
        return {k: sorted(v) for k, v in out.items()}

    def _store(self, resource, namespace, obj):
        meta = obj.setdefault("metadata", {})
        self.rv += 1
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now())
        meta["resourceVersion"] = str(self.rv)
        if namespace is not None:
            meta["namespace"] = namespace
        self.objects[(resource, namespace, meta["name"])] = obj
        return obj

    def _spec(self, resource):
        if resource not in RESOURCES:
            raise status_error(404, "NotFound", "the server could not find the requested resource")
        return RESOURCES[resource]

    def _ns(self, req, resource, must_exist=True):
        namespaced = self._spec(resource)[2]
        ns = req.params.get("namespace")
        if namespaced and ns is None:
            raise status_error(404, "NotFound", "the server could not find the requested resource")
        if not namespaced and ns is not None:
            raise status_error(404, "NotFound", "the server could not find the requested resource")
        if must_exist and ns is not None and ("namespaces", None, ns) not in self.objects:
            raise status_error(404, "NotFound", 'namespaces "%s" not found' % ns, name=ns, kind="namespaces")
        return ns

    def notify(self, event, resource, obj):
        with self.changed:
            obj = copy.deepcopy(obj)
            if event == "DELETED":
                obj["metadata"]["resourceVersion"] = str(self.rv)
            self.history.append((int(obj["metadata"]["resourceVersion"]), event, resource,
                                 obj["metadata"].get("namespace"), obj))
            self.changed.notify_all()
        for watcher in list(self.watchers):
            watcher(self, event, resource, copy.deepcopy(obj))

    # ---- discovery ---------------------------------------------------------------------
    def kube_version(self):
        row = self.sandbox.store.table("container.clusters").get(self.key) if self.sandbox is not None else None
        return ((row or {}).get("currentMasterVersion") or DEFAULT_VERSION).lstrip("v")

    def version(self, req):
        full = self.kube_version()
        return {"major": full.split(".")[0], "minor": full.split(".")[1], "gitVersion": "v" + full,
                "gitCommit": "sandbox", "emulationMajor": full.split(".")[0], "emulationMinor": full.split(".")[1],
                "gitTreeState": "clean", "buildDate": "2026-10-01T00:00:00Z", "goVersion": "go1.23.6",
                "compiler": "gc", "platform": "linux/amd64"}

    def openapi_v2(self, req):
        """The swagger document, in the protobuf form client-go asks for: it carries no definitions, so client-side
        validation (kubectl, helm's namespace creation) finds no schema for a kind and leaves the checks to this
        server."""
        info = protobuf.message([(1, b"Kubernetes"), (2, ("v" + self.kube_version()).encode())])
        doc = protobuf.message([(1, b"2.0"), (2, info), (8, b"")])
        accept = req.header("Accept") or ""
        if "protobuf" in accept or "json" not in accept:
            return Response(200, doc, content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v" + self.kube_version()},
                "paths": {}, "definitions": {}}

    def openapi_v3(self, req):
        # No per-group documents: clients fall back to the v2 document above.
        return {"paths": {}}

    def api_versions(self, req):
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.endpoint + ":443"}]}

    def api_groups(self, req):
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": name, "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
             "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}} for name, gv in GROUPS.items()]}

    def resource_list(self, group_version):
        out = []
        for name, (gv, kind, namespaced, _fields) in sorted(RESOURCES.items()):
            if gv != group_version:
                continue
            out.append({"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
            if name in SHORT_NAMES:
                out[-1]["shortNames"] = SHORT_NAMES[name]
            if name in CATEGORY_ALL:
                out[-1]["categories"] = ["all"]
            if name in STATUS_KINDS:
                out.append({"name": name + "/status", "singularName": "", "namespaced": namespaced, "kind": kind,
                            "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": out}

    # ---- validation --------------------------------------------------------------------
    def validate(self, req, resource, body, namespace, name=None):
        gv, kind, _namespaced, fields = self._spec(resource)
        if not isinstance(body, dict):
            raise status_error(400, "BadRequest", "the body of the request was in an unknown format")
        if body.get("kind", kind) != kind or body.get("apiVersion", gv) != gv:
            raise status_error(400, "BadRequest", "the API version in the data (%s) does not match the expected "
                               "API version (%s)" % (body.get("apiVersion"), gv))
        meta = body.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise status_error(422, "Invalid", "%s \"\" is invalid: metadata.name: Required value: name or "
                               "generateName is required" % kind, kind=resource)
        obj_name = meta["name"]
        rule = DNS1123_LABEL if resource in ("namespaces", "services") else DNS1123_SUBDOMAIN
        if len(obj_name) > (63 if rule is DNS1123_LABEL else 253) or not rule.match(obj_name):
            raise status_error(422, "Invalid", "%s \"%s\" is invalid: metadata.name: Invalid value: \"%s\": a "
                               "lowercase RFC 1123 %s must consist of lower case alphanumeric characters or '-'"
                               % (kind, obj_name, obj_name, "label" if rule is DNS1123_LABEL else "subdomain"),
                               name=obj_name, kind=resource)
        if name is not None and obj_name != name:
            raise status_error(400, "BadRequest", "the name of the object (%s) does not match the name on the URL "
                               "(%s)" % (obj_name, name))
        if namespace is not None and meta.get("namespace", namespace) != namespace:
            raise status_error(400, "BadRequest", "the namespace of the provided object does not match the "
                               "namespace sent on the request")
        unknown = ["metadata.%s" % k for k in meta if k not in METADATA_FIELDS]
        unknown += [k for k in body if k not in fields | {"apiVersion", "kind", "metadata"}]
        for key in ("labels", "annotations"):
            value = meta.get(key)
            if value is not None and (not isinstance(value, dict) or
                                      not all(isinstance(v, str) for v in value.values())):
                raise status_error(400, "BadRequest", "json: cannot unmarshal into Go struct field "
                                   "ObjectMeta.metadata.%s of type map[string]string" % key)
        warnings = []
        if unknown:
            if req.query.get("fieldValidation") == "Strict":
                raise status_error(400, "BadRequest", "strict decoding error: %s" % ", ".join(
                    'unknown field "%s"' % u for u in unknown))
            warnings = ['299 - "unknown field \\"%s\\""' % u for u in unknown]
            for u in unknown:
                if u.startswith("metadata."):
                    meta.pop(u[9:], None)
                else:
                    body.pop(u, None)
        body["apiVersion"], body["kind"] = gv, kind
        if resource != "backendconfigs":
            warnings += self._check_schema(req, body, kind, gv)
        if resource == "secrets":
            self._normalise_secret(body)
        if resource == "backendconfigs":
            warnings += self._check_backendconfig(req, body)
        if resource == "configmaps":
            data = body.get("data") or {}
            if not all(isinstance(v, str) for v in data.values()):
                raise status_error(400, "BadRequest", "json: cannot unmarshal into Go struct field ConfigMap.data "
                                   "of type string")
        return warnings

    def _check_schema(self, req, body, kind, gv):
        """The official schema of the cluster's version: wrong types refused as the decoder refuses them; unknown
        nested fields dropped with a warning, or refused under fieldValidation=Strict."""
        minor = ".".join(self.kube_version().split(".")[:2])
        try:
            bad = schemas.wrong_types(minor, body)
            unknown = schemas.unknown_fields(minor, body)
        except schemas.SchemaUnavailable as err:
            raise status_error(500, "InternalError", str(err))
        if bad:
            path, message = bad[0]
            raise status_error(400, "BadRequest", '%s in version "%s" cannot be handled as a %s: %s: %s'
                               % (kind, gv.split("/")[-1], kind, path or "(root)", message))
        return drop_unknown(req, body, unknown)

    @staticmethod
    def _check_backendconfig(req, body):
        """The CRD's structural schema: wrong types are 422 Invalid, unknown spec fields pruned (or refused)."""
        name = body["metadata"]["name"]
        spec = body.get("spec")
        if spec is None:
            return []

        def invalid(path, value, want):
            got = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array",
                   dict: "object"}.get(type(value), "null")
            return status_error(422, "Invalid", 'BackendConfig.cloud.google.com "%s" is invalid: %s: Invalid value: '
                                '"%s": %s in body must be of type %s: "%s"' % (name, path, got, path, want, got),
                                name=name, kind="backendconfigs")

        if not isinstance(spec, dict):
            raise invalid("spec", spec, "object")
        unknown = ["spec.%s" % k for k in spec if k not in BACKENDCONFIG_SPEC]
        policy = spec.get("securityPolicy")
        if policy is not None:
            if not isinstance(policy, dict):
                raise invalid("spec.securityPolicy", policy, "object")
            if "name" in policy and not isinstance(policy["name"], str):
                raise invalid("spec.securityPolicy.name", policy["name"], "string")
            unknown += ["spec.securityPolicy.%s" % k for k in policy if k != "name"]
        if "timeoutSec" in spec and (isinstance(spec["timeoutSec"], bool) or not isinstance(spec["timeoutSec"], int)):
            raise invalid("spec.timeoutSec", spec["timeoutSec"], "integer")
        return drop_unknown(req, body, unknown)

    @staticmethod
    def _normalise_secret(body):
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise status_error(400, "BadRequest", "json: cannot unmarshal into Go struct field Secret.data of type "
                               "map[string][]uint8")
        for key, value in data.items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise status_error(400, "BadRequest", "illegal base64 data in Secret.data[%s]" % key)
        for key, value in (body.pop("stringData", None) or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        body["data"] = data
        body.setdefault("type", "Opaque")

    # ---- verbs -------------------------------------------------------------------------
    @staticmethod
    def _selector(req):
        sel = req.query.get("labelSelector") or ""
        out = []
        for term in filter(None, (t.strip() for t in sel.split(","))):
            if "!=" in term:
                k, v = term.split("!=", 1)
                out.append((k.strip(), v.strip(), False))
            elif "=" in term:
                k, v = term.replace("==", "=").split("=", 1)
                out.append((k.strip(), v.strip(), True))
            else:
                out.append((term, None, True))
        return out

    def _list(self, req, resource, namespace, all_namespaces=False):
        gv, kind = self._spec(resource)[:2]
        sel, fields = self._selector(req), self._field_selector(req)
        items = []
        with self.lock:
            for (res, ns, _name), obj in sorted(self.objects.items(), key=lambda kv: (kv[0][1] or "", kv[0][2])):
                if res != resource or (not all_namespaces and ns != namespace):
                    continue
                labels = obj["metadata"].get("labels") or {}
                if all((labels.get(k) == v) == eq if v is not None else k in labels for k, v, eq in sel) and \
                        self._fields_match(obj, fields):
                    items.append(copy.deepcopy(obj))
            rv = str(self.rv)
        return {"kind": kind + "List", "apiVersion": gv, "metadata": {"resourceVersion": rv}, "items": items}

    def list(self, req):
        # Listing in a namespace that does not exist is an empty list, as the API server answers (helm reads its
        # release history that way before it creates the namespace).
        resource = req.params["resource"]
        ns = self._ns(req, resource, must_exist=False)
        if req.query.get("watch") in ("true", "1"):
            return self._watch(req, resource, ns)
        return self._list(req, resource, ns)

    def list_all(self, req):
        resource = req.params["resource"]
        self._spec(resource)
        if req.query.get("watch") in ("true", "1"):
            return self._watch(req, resource, None)
        return self._list(req, resource, None, all_namespaces=RESOURCES[resource][2])

    @staticmethod
    def _field_selector(req):
        """fieldSelector terms (path=value, path!=value) on the fields the API server indexes for the kind."""
        out = []
        for term in filter(None, (req.query.get("fieldSelector") or "").split(",")):
            negate = "!=" in term
            key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
            if not re.match(r"^(metadata\.(name|namespace)|involvedObject\.[a-zA-Z]+|spec\.nodeName|status\.phase|"
                            r"type|reason|source|spec\.serviceAccountName)$", key):
                raise status_error(400, "BadRequest", 'field label not supported: %s' % key)
            out.append((key, value, negate))
        return out

    @staticmethod
    def _fields_match(obj, terms):
        for key, value, negate in terms:
            have = obj
            for part in key.split("."):
                have = have.get(part) if isinstance(have, dict) else None
            if have is None:
                have = ""
            if (str(have) == value) == negate:
                return False
        return True

    def _watch(self, req, resource, namespace):
        """A watch as client-go's reflectors use it: from a list's resourceVersion, from now with the current objects
        as synthetic ADDED events (no resourceVersion or "0"), or WatchList (sendInitialEvents=true) ending the initial
        events with a bookmark annotated k8s.io/initial-events-end."""
        gv, kind = self._spec(resource)[:2]
        sel, fields = self._selector(req), self._field_selector(req)
        timeout = min(float(req.query.get("timeoutSeconds") or 1800), 1800)
        rv_text = req.query.get("resourceVersion") or ""
        initial_events = req.query.get("sendInitialEvents") == "true"
        if initial_events and req.query.get("resourceVersionMatch") != "NotOlderThan":
            raise status_error(422, "Invalid", "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                               "resourceVersionMatch to NotOlderThan")

        def matches(res, ns, obj):
            if res != resource or (namespace is not None and ns != namespace):
                return False
            if not self._fields_match(obj, fields):
                return False
            labels = obj["metadata"].get("labels") or {}
            return all((labels.get(k) == v) == eq if v is not None else k in labels for k, v, eq in sel)

        with self.lock:
            if initial_events or rv_text in ("", "0"):
                start = self.rv
                first = [("ADDED", copy.deepcopy(o)) for (res, ns, _n), o in sorted(self.objects.items(),
                         key=lambda kv: (kv[0][1] or "", kv[0][2])) if matches(res, ns, o)]
            else:
                try:
                    start = int(rv_text)
                except ValueError:
                    raise status_error(400, "BadRequest", 'invalid resource version "%s"' % rv_text)
                if self.history and start < self.history[0][0] - 1 and len(self.history) == self.history.maxlen:
                    raise status_error(410, "Expired", "too old resource version: %s (%s)"
                                       % (start, self.history[0][0]))
                first = []
        if initial_events:
            first.append(("BOOKMARK", {"kind": kind, "apiVersion": gv, "metadata": {
                "resourceVersion": str(start), "annotations": {"k8s.io/initial-events-end": "true"}}}))
        bookmarks = req.query.get("allowWatchBookmarks") == "true"

        def stream():
            with self.lock:
                self.open_watches[resource, namespace] += 1
            try:
                yield from events_until_done()
            finally:
                with self.lock:
                    self.open_watches[resource, namespace] -= 1

        def events_until_done():
            deadline = time.monotonic() + timeout
            last, next_bookmark = start, time.monotonic() + 30
            for event, obj in first:
                yield (json.dumps({"type": event, "object": obj}) + "\n").encode()
            while True:
                with self.changed:
                    while not self.stopped and time.monotonic() < deadline and not req.client_gone() and \
                            not (self.history and self.history[-1][0] > last) and time.monotonic() < next_bookmark:
                        self.changed.wait(min(1.0, max(0.01, deadline - time.monotonic())))
                    if self.stopped or time.monotonic() >= deadline or req.client_gone():
                        return
                    events = [e for e in self.history if e[0] > last]
                    current = self.rv
                for rv, event, res, ns, obj in events:
                    last = max(last, rv)
                    if matches(res, ns, obj):
                        yield (json.dumps({"type": event, "object": obj}) + "\n").encode()
                if bookmarks and time.monotonic() >= next_bookmark:
                    last = max(last, current)
                    yield (json.dumps({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": gv, "metadata": {
                        "resourceVersion": str(last)}}}) + "\n").encode()
                if time.monotonic() >= next_bookmark:
                    next_bookmark = time.monotonic() + 30

        resp = Response(200, None)
        resp.stream = stream()
        return resp

    def _allocate_cluster_ip(self, namespace, body):
        """A ClusterIP Service gets its address from the cluster's service range, as GKE's 34.118.224.0/20."""
        spec = body.setdefault("spec", {})
        if spec.get("type", "ClusterIP") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        if spec.get("clusterIP"):
            self.ips.add(spec["clusterIP"])
            return
        n = len(self.ips)
        while True:
            ip = "34.118.%d.%d" % (224 + n // 250, 10 + n % 250)
            if ip not in self.ips:
                break
            n += 1
        self.ips.add(ip)
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        body.setdefault("status", {"loadBalancer": {}})

    def _existing(self, resource, namespace, name):
        obj = self.objects.get((resource, namespace, name))
        if obj is None:
            raise status_error(404, "NotFound", '%s "%s" not found' % (resource, name), name=name, kind=resource)
        return obj

    def get(self, req):
        resource = req.params["resource"]
        ns = self._ns(req, resource)
        with self.lock:
            return copy.deepcopy(self._existing(resource, ns, req.params["name"]))

    def pod_log(self, req):
        """pods/log as the kubelet serves it: a container's output (plain text), `tailLines` and `limitBytes`."""
        if req.params["resource"] != "pods":
            raise status_error(404, "NotFound", "the server could not find the requested resource")
        ns, name = self._ns(req, "pods"), req.params["name"]
        with self.lock:
            pod = copy.deepcopy(self._existing("pods", ns, name))
        names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        container = req.query.get("container")
        if not container:
            if len(names) != 1:
                raise status_error(400, "BadRequest", "a container name must be specified for pod %s, choose one "
                                   "of: [%s]" % (name, " ".join(names)))
            container = names[0]
        if container not in names:
            raise status_error(400, "BadRequest", "container %s is not valid for pod %s" % (container, name))
        # Where the workload runner writes each container's output (workloads.Pod.dir).
        path = os.path.join(self.sandbox.config.state_dir, "pods", self.key.replace("/", "_"), ns, name,
                            "%s.log" % container)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise status_error(400, "BadRequest", 'container "%s" in pod "%s" is waiting to start: '
                               "ContainerCreating" % (container, name))
        if req.query.get("tailLines") not in (None, ""):
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(req.query["tailLines"]):]) if int(req.query["tailLines"]) > 0 else b""
        if req.query.get("limitBytes") not in (None, ""):
            data = data[:int(req.query["limitBytes"])]
        return Response(200, data, content_type="text/plain")

    def create(self, req, body=None):
        resource = req.params["resource"]
        ns = self._ns(req, resource)
        body = copy.deepcopy(req.json if body is None else body)
        warnings = self.validate(req, resource, body, ns)
        name = body["metadata"]["name"]
        with self.lock:
            if (resource, ns, name) in self.objects:
                raise status_error(409, "AlreadyExists", '%s "%s" already exists' % (resource, name), name=name,
                                   kind=resource)
            if resource == "namespaces":
                body.setdefault("spec", {"finalizers": ["kubernetes"]})
                body["status"] = {"phase": "Active"}
            for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
                body["metadata"].pop(key, None)
            if resource in STATUS_KINDS and resource != "namespaces":
                body.pop("status", None)
            if RESOURCES[resource][3] >= {"spec"} and resource not in ("namespaces", "services", "pods", "events"):
                body["metadata"]["generation"] = 1
            if resource == "services":
                self._allocate_cluster_ip(ns, body)
            if req.query.get("dryRun") == "All":
                out = copy.deepcopy(body)
                out["metadata"].update({"uid": str(uuid.uuid4()), "creationTimestamp": now()})
                if ns is not None:
                    out["metadata"]["namespace"] = ns
                return Response(201, out, self._warn(warnings))
            obj = self._store(resource, ns, body)
            self.created_by_clients.add((resource, ns, body["metadata"]["name"]))
            out = copy.deepcopy(obj)
        self.notify("ADDED", resource, out)
        return Response(201, out, self._warn(warnings))

    @staticmethod
    def _warn(warnings):
        return {"Warning": ", ".join(warnings)} if warnings else {}

    def _write(self, req, resource, ns, name, new, current):
        warnings = self.validate(req, resource, new, ns, name)
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise status_error(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been '
                               "modified; please apply your changes to the latest version and try again"
                               % (resource, name), name=name, kind=resource)
        if current.get("immutable") and (new.get("data") != current.get("data")):
            raise status_error(422, "Invalid", '%s "%s" is invalid: data: Forbidden: field is immutable when '
                               "`immutable` is set" % (RESOURCES[resource][1], name), name=name, kind=resource)
        for key in ("uid", "creationTimestamp"):
            new["metadata"][key] = current["metadata"][key]
        if resource in STATUS_KINDS:
            new.pop("status", None)
            if "status" in current:
                new["status"] = current["status"]
        if "generation" in current["metadata"]:
            # The API server counts spec changes in metadata.generation; the controllers' observedGeneration
            # follows it, which is how kstatus (helm's wait) tells a rollout it has not seen yet.
            changed = {k: v for k, v in new.items() if k not in ("metadata", "status")} != \
                {k: v for k, v in current.items() if k not in ("metadata", "status")}
            new["metadata"]["generation"] = current["metadata"]["generation"] + (1 if changed else 0)
        comparable = copy.deepcopy(new)
        comparable["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if ns is not None:
            comparable["metadata"]["namespace"] = ns
        if comparable == current or req.query.get("dryRun") == "All":
            # A write that changes nothing does not bump resourceVersion, as the API server does.
            return Response(200, comparable if req.query.get("dryRun") == "All" else copy.deepcopy(current),
                            self._warn(warnings))
        obj = self._store(resource, ns, new)
        out = copy.deepcopy(obj)
        self.notify("MODIFIED", resource, out)
        return Response(200, out, self._warn(warnings))

    def replace(self, req):
        resource, name = req.params["resource"], req.params["name"]
        ns = self._ns(req, resource)
        with self.lock:
            current = self._existing(resource, ns, name)
            return self._write(req, resource, ns, name, copy.deepcopy(req.json), current)

    def patch(self, req):
        resource, name = req.params["resource"], req.params["name"]
        ns = self._ns(req, resource)
        ctype = (req.header("Content-Type") or "").split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            return self.apply(req, resource, ns, name)
        if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise status_error(415, "UnsupportedMediaType", "the sandbox API server accepts merge patches and "
                               "server-side apply (application/merge-patch+json, application/strategic-merge-patch+"
                               "json, application/apply-patch+yaml); got %s" % (ctype or "no Content-Type"))
        strategic = ctype == "application/strategic-merge-patch+json" and resource != "backendconfigs"
        patch = req.json
        if not isinstance(patch, dict):
            raise status_error(400, "BadRequest", "json: cannot unmarshal array into Go value of type map[string]"
                               "interface {}")
        with self.lock:
            current = self._existing(resource, ns, name)
            new = (strategic_merge if strategic else merge_patch)(copy.deepcopy(current), patch)
            if "resourceVersion" not in (patch.get("metadata") or {}):
                new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if resource == "secrets" and "stringData" in patch:
                new.setdefault("data", {})
            return self._write(req, resource, ns, name, new, current)

    def apply(self, req, resource, ns, name):
        """Server-side apply: creates the object, or merges the applied configuration into it (a field this
        manager applied before and now omits is not removed: the sandbox tracks no managedFields)."""
        if not req.query.get("fieldManager"):
            raise status_error(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                               "is required for apply patch")
        body = req.json
        if not isinstance(body, dict):
            raise status_error(400, "BadRequest", "error decoding YAML: the applied configuration is not an object")
        for key in ("apiVersion", "kind"):
            if not body.get(key):
                raise status_error(400, "BadRequest", "%s must be set in the applied configuration" % key)
        with self.lock:
            current = self.objects.get((resource, ns, name))
            if current is None:
                return self.create(req, body)
            new = strategic_merge(copy.deepcopy(current), body)
            new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self._write(req, resource, ns, name, new, current)

    def delete(self, req):
        resource, name = req.params["resource"], req.params["name"]
        ns = self._ns(req, resource)
        with self.lock:
            obj = copy.deepcopy(self._existing(resource, ns, name))
            options = req.json if req.body else {}
            if req.query.get("dryRun") == "All" or "All" in ((options or {}).get("dryRun") or []):
                return obj
            if resource == "services":
                self.ips.discard((obj.get("spec") or {}).get("clusterIP"))
            self.objects.pop((resource, ns, name))
            self.rv += 1
            if resource == "namespaces":
                # Namespace deletion takes everything in it along, releases included.
                for key in [k for k in self.objects if k[1] == name]:
                    gone = self.objects.pop(key)
                    self.notify("DELETED", key[0], gone)
        self.notify("DELETED", resource, obj)
        if resource == "namespaces":
            obj["status"] = {"phase": "Terminating"}
        return obj

    # ---- used by the workload runner (the sandbox's stand-in for kubelet and controllers) ---
    def put_object(self, resource, namespace, obj):
        with self.lock:
            current = self.objects.get((resource, namespace, obj["metadata"]["name"]))
            if current is not None:
                obj["metadata"]["uid"] = current["metadata"]["uid"]
                obj["metadata"]["creationTimestamp"] = current["metadata"]["creationTimestamp"]
            out = copy.deepcopy(self._store(resource, namespace, obj))
        self.notify("ADDED" if current is None else "MODIFIED", resource, out)
        return out

    def set_status(self, resource, namespace, name, status, spec_updates=None):
        """A controller's status write (the /status subresource, and fields it owns in spec): metadata stays;
        unchanged writes nothing. Watchers see it, as kstatus (Helm's wait) needs."""
        with self.lock:
            current = self.objects.get((resource, namespace, name))
            if current is None:
                return None
            new = copy.deepcopy(current)
            new["status"] = copy.deepcopy(status)
            for key, value in (spec_updates or {}).items():
                new.setdefault("spec", {})[key] = value
            if new == current:
                return copy.deepcopy(current)
            out = copy.deepcopy(self._store(resource, namespace, new))
        self.notify("MODIFIED", resource, out)
        return out

    def get_object(self, resource, namespace, name):
        with self.lock:
            obj = self.objects.get((resource, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def remove_object(self, resource, namespace, name):
        with self.lock:
            gone = self.objects.pop((resource, namespace, name), None)
            if gone is not None:
                self.rv += 1
        if gone is not None:
            self.notify("DELETED", resource, gone)

    def find(self, resource, namespace=None, labels=None):
        with self.lock:
            out = []
            for (res, ns, _n), obj in self.objects.items():
                if res != resource or (namespace is not None and ns != namespace):
                    continue
                have = obj["metadata"].get("labels") or {}
                if all(have.get(k) == v for k, v in (labels or {}).items()):
                    out.append(copy.deepcopy(obj))
            return out


# patchMergeKey of the lists k8s.io/api merges by key in a strategic merge patch; other lists are replaced.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
              "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
              "conditions": "type", "ownerReferences": "uid", "hostAliases": "ip",
              "topologySpreadConstraints": "topologyKey", "resourceClaims": "name"}


def _merge_key(field, items):
    if field == "ports":
        return "containerPort" if any("containerPort" in i for i in items if isinstance(i, dict)) else "port"
    return MERGE_KEYS.get(field)


def strategic_merge(target, patch):
    """A strategic merge patch as the API server applies it to built-in kinds: lists with a patchMergeKey merge
    item by item, `$patch: delete|replace`, `$setElementOrder/`, `$retainKeys` and `$deleteFromPrimitiveList/`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: v for k, v in copy.deepcopy(patch).items() if k != "$patch"}
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    orders = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
        elif key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [v for v in out.get(field) or [] if v not in value]
        elif key in ("$patch", "$retainKeys"):
            continue
        elif value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            if value.get("$patch") == "delete":
                out.pop(key, None)
            else:
                out[key] = strategic_merge(out.get(key), value)
        elif isinstance(value, list) and _merge_key(key, value + (out.get(key) or [])) and \
                all(isinstance(v, dict) for v in value):
            out[key] = _merge_list(out.get(key) or [], value, _merge_key(key, value + (out.get(key) or [])))
        else:
            out[key] = copy.deepcopy(value)
    for field, order in orders.items():
        items = out.get(field)
        if not isinstance(items, list):
            continue
        mkey = _merge_key(field, items + [o for o in order if isinstance(o, dict)])
        ident = (lambda i: i.get(mkey) if isinstance(i, dict) else i)
        wanted = [ident(o) for o in order]
        out[field] = sorted(items, key=lambda i: wanted.index(ident(i)) if ident(i) in wanted else len(wanted))
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"])
        out = {k: v for k, v in out.items() if k in keep}
    return out


def _merge_list(current, patch, key):
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [p for p in copy.deepcopy(patch) if p.get("$patch") != "replace"]
    out = copy.deepcopy(current)
    for item in patch:
        idx = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append(strategic_merge({}, item))
        else:
            out[idx] = strategic_merge(out[idx], item)
    return out



def drop_unknown(req, body, unknown):
    """Unknown fields (dotted paths): refused under fieldValidation=Strict, else pruned with the apiserver's warnings."""
    if not unknown:
        return []
    if req.query.get("fieldValidation") == "Strict":
        raise status_error(400, "BadRequest", "strict decoding error: %s" % ", ".join(
            'unknown field "%s"' % u for u in unknown))
    for path in unknown:
        parts, holder = path.split("."), body
        for part in parts[:-1]:
            holder = holder[int(part)] if isinstance(holder, list) else holder.get(part)
        if isinstance(holder, dict):
            holder.pop(parts[-1], None)
    return ['299 - "unknown field \\"%s\\""' % u for u in unknown]

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


def dumps(obj):
    return json.dumps(obj, sort_keys=True)
