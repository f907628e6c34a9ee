"""GCP: every API is served below /<api>/ on one port, routed and validated by its discovery doc.

Service modules (compute.py, sqladmin.py, ...) register handlers by discovery method id:

    def register(app):
        app.handle("compute.networks.insert", insert_network)

A handler gets (req, params) where params holds the path parameters in both the flat
(`projectsId`) and the `{+name}` forms, and returns a JSON-able object or a Response.
"""

from __future__ import annotations

import importlib
import threading
import time
import urllib.parse

from ..web import ApiError, App, Response
from . import auth, discovery, googleapis, iam_enforce

APIS = {
    "compute": ("v1",),
    "container": ("v1",),
    "sqladmin": ("v1", "v1beta4"),  # gcloud sql uses v1beta4
    "secretmanager": ("v1",),
    "iam": ("v1",),
    "cloudresourcemanager": ("v1", "v3"),
    "serviceusage": ("v1",),
    "servicenetworking": ("v1",),
    "run": ("v2", "v1"),  # gcloud run jobs uses v1 (namespaces/<project>/jobs)
    "redis": ("v1",),
    "cloudkms": ("v1",),
    "storage": ("v1",),
    "artifactregistry": ("v1",),
}
SERVICE_MODULES = ("serviceusage", "compute", "compute_networks", "compute_subnetworks", "compute_addresses",
                   "compute_firewalls", "routers", "instances", "security_policies", "servicenetworking", "container",
                   "sqladmin", "secretmanager", "iam", "crm", "run", "run_v1", "redis", "kms", "storage",
                   "artifactregistry")

# Cloud Storage's media paths: (raw path prefix, what it carries).
MEDIA_PREFIXES = (("/upload/storage/v1/", "upload"), ("/storage/upload/storage/v1/", "upload"),
                  ("/download/storage/v1/", "download"), ("/storage/download/storage/v1/", "download"))

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                405: "METHOD_NOT_ALLOWED", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE"}
REASONS = {400: "badRequest", 401: "authError", 403: "forbidden", 404: "notFound", 409: "alreadyExists",
           412: "conditionNotMet", 429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}

# A new project has only these APIs on; everything else answers SERVICE_DISABLED until enabled.
DEFAULT_SERVICES = ("serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com")
SERVICE_TITLES = {
    "compute": "Compute Engine API", "container": "Kubernetes Engine API", "sqladmin": "Cloud SQL Admin API",
    "secretmanager": "Secret Manager API", "iam": "Identity and Access Management (IAM) API",
    "servicenetworking": "Service Networking API", "run": "Cloud Run Admin API",
    "redis": "Google Cloud Memorystore for Redis API",
    "cloudkms": "Cloud Key Management Service (KMS) API", "storage": "Cloud Storage JSON API",
    "artifactregistry": "Artifact Registry API",
}


class GcpApp(App):
    family = "gcp"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.handlers = {}
        self.request_ids = {}  # (method id, project, requestId) -> compute operation name
        self.request_ids_lock = threading.Lock()
        self.project = sandbox.config.project
        self.project_number = "123456789012"
        self.auth = auth.Auth(sandbox)
        self.googleapis = None  # the https://<api>.googleapis.com front end, from started()
        self.iam = iam_enforce.Enforcer(lambda: getattr(self.auth, "deployer_email", None))
        self.enabled = self.sandbox.store.table("serviceusage.services")
        for svc in DEFAULT_SERVICES:
            self.enabled["projects/%s/services/%s" % (self.project_number, svc)] = True
        self.discovery = {api: [discovery.load(api, v) for v in versions] for api, versions in APIS.items()}
        self.modules = []
        for name in SERVICE_MODULES:
            try:
                mod = importlib.import_module("%s.%s" % (__package__, name))
            except ModuleNotFoundError as exc:
                if exc.name != "%s.%s" % (__package__, name):
                    raise
                continue
            mod.register(self)
            self.modules.append(mod)

    def handle(self, method_id, fn):
        self.handlers[method_id] = fn

    def endpoint_info(self):
        base = self.sandbox.url("gcp")
        return {
            "gcp_api_endpoint_template": base + "/{api}/",
            "gcp_token_uri": base + "/token",
            "gcp_service_account_file": self.auth.key_file,
            "gcp_project": self.project,
            "gcp_project_number": self.project_number,
            "googleapis_ca_file": self.googleapis.ca_file if self.googleapis else None,
            "googleapis_proxy_url": self.sandbox.url("kube") if "kube" in self.sandbox.servers else None,
        }

    def admin(self, req, path):
        if path == "env":
            identity = {k: req.query[k] for k in ("namespace", "service_account", "cluster") if req.query.get(k)}
            try:
                return self.sandbox.network_env(identity or None)
            except ValueError as exc:
                raise ApiError(400, str(exc))
        if path == "iam/deployer-roles":
            if req.method == "POST":
                self.iam.set_roles((req.json or {}).get("roles"))
            return self.iam.describe()
        return None

    def started(self):
        self.auth.ensure_deployer_key(self.sandbox.url("gcp") + "/token")
        self.googleapis = googleapis.GoogleApis(self.sandbox, self)
        for mod in self.modules:
            if hasattr(mod, "started"):
                mod.started(self)

    def stopping(self):
        if self.googleapis is not None:
            self.googleapis.stop()
        for mod in self.modules:
            if hasattr(mod, "stopping"):
                mod.stopping(self)

    # ---- errors in Google's shape ------------------------------------------------------
    def error_response(self, err):
        status = err.extra.get("status") or STATUS_NAMES.get(err.status, "UNKNOWN")
        body = {
            "error": {
                "code": err.status,
                "message": err.message,
                "status": status,
                "errors": [{"message": err.message, "domain": err.extra.get("domain", "global"),
                            "reason": err.reason or REASONS.get(err.status, "unknown")}],
            }
        }
        if err.extra.get("details"):
            body["error"]["details"] = err.extra["details"]
        return Response(err.status, body, err.headers)

    # ---- routing ------------------------------------------------------------------------
    def dispatch(self, req):
        if req.path == "/token" and req.method == "POST":
            return self.auth.token_endpoint(req)
        api, rest, req.media = self.split_path(req)
        if api not in self.discovery:
            raise ApiError(404, "The requested URL %s was not found on this server." % req.path)
        match = None
        for doc in self.discovery[api]:
            match = doc.match(req.method, rest)
            if match:
                break
        if not match or (req.media == "upload" and not match[0].get("mediaUpload")) or \
                (req.media == "download" and not match[0].get("supportsMediaDownload")):
            raise ApiError(404, "The requested URL %s was not found on this server." % req.path)
        method, params = match
        if api == "storage":
            # Matched on the raw path, so an object name's %2F stays inside its segment.
            params = {k: urllib.parse.unquote(v) if isinstance(v, str) else v for k, v in params.items()}
        req.principal = self.auth.check(req)
        doc.validate_query(method, req.query)
        if req.media == "upload":
            req.upload = self.storage._upload(req)
            doc.validate_body(method, req.upload[0])
        elif req.method in ("POST", "PUT", "PATCH"):
            doc.validate_body(method, req.json)
        self.require_project(api, params, method)
        self.iam.check(req, api, method, params, req.principal)
        fn = self.handlers.get(method["id"])
        if fn is None:
            raise ApiError(501, "the sandbox does not implement %s" % method["id"], status="UNIMPLEMENTED")
        req.method_id = method["id"]
        # Compute's requestId: a retried mutation with the same id (for 60 minutes) gets the first request's
        # operation back instead of running again (no 409 for an insert whose first attempt got through).
        request_id = req.query.get("requestId") if api == "compute" else None
        if request_id:
            key = (method["id"], params.get("project"), request_id)
            with self.request_ids_lock:
                seen = self.request_ids.get(key)
                if seen is not None and seen in self.compute.ops:
                    return Response(200, self.compute.render_op(self.compute.ops[seen]))
                out = fn(req, params)
                if isinstance(out, dict) and out.get("kind") == "compute#operation":
                    self.request_ids[key] = out["name"]
        else:
            out = fn(req, params)
        return out if isinstance(out, Response) else Response(200, out)

    @staticmethod
    def split_path(req):
        """(api, path below the API root, media): Cloud Storage's media paths sit outside /storage/v1, at the root
        (googleapiclient) or under the client's endpoint (google-cloud-storage); storage is matched on the raw path."""
        raw = req.raw_path
        for prefix, media in MEDIA_PREFIXES:
            if raw.startswith(prefix):
                return "storage", "/storage/v1/" + raw[len(prefix):], media
        parts = req.path.split("/", 2)
        api = parts[1] if len(parts) > 1 else ""
        if api == "storage":
            parts = raw.split("/", 2)
        return api, "/" + (parts[2] if len(parts) > 2 else ""), None

    def require_project(self, api, params, method):
        project = params.get("project") or params.get("projectsId") or params.get("projectId")
        if project is None:
            for key in ("name", "parent", "resource"):
                value = params.get(key) or ""
                if value.startswith("projects/"):
                    project = value.split("/")[1]
                    break
        if project is None:
            return
        if project not in (self.project, self.project_number, "-"):
            raise ApiError(403, "Permission denied on resource project %s (or it may not exist)." % project,
                           reason="forbidden")
        service = "%s.googleapis.com" % api
        if api != "serviceusage" and not self.service_enabled(service):
            title = SERVICE_TITLES.get(api, service)
            raise ApiError(
                403,
                "%s has not been used in project %s before or it is disabled. Enable it by visiting "
                "https://console.developers.google.com/apis/api/%s/overview?project=%s then retry."
                % (title, self.project_number, service, self.project_number),
                reason="accessNotConfigured",
                domain="usageLimits",
                details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED",
                          "domain": "googleapis.com",
                          "metadata": {"service": service, "consumer": "projects/%s" % self.project_number}}],
            )

    def project_id(self, project):
        """A path's project as its ID: clients may name the project by number."""
        return self.project if project == self.project_number else project

    def location_name(self, p):
        """projects/<id>/locations/<location> of a request's path parameters."""
        return "projects/%s/locations/%s" % (self.project_id(p["projectsId"]), p["locationsId"])

    def service_enabled(self, service):
        return bool(self.enabled.get("projects/%s/services/%s" % (self.project_number, service)))


# ---- helpers the service modules share ----------------------------------------------------
def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"


def compute_timestamp():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000-07:00", time.localtime())


def lro(op, name, metadata=None, response=None):
    """A google.longrunning.Operation for a sandbox Operation."""
    out = {"name": name, "done": bool(op.done)}
    if metadata is not None:
        out["metadata"] = metadata
    if op.done:
        if op.error:
            out["error"] = {"code": 9, "message": op.error}
        elif response is not None:
            out["response"] = response
        elif op.result is not None:
            out["response"] = op.result
        else:
            out["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
    return out


def not_found(what):
    return ApiError(404, "The resource '%s' was not found" % what, reason="notFound")


def conflict(what):
    return ApiError(409, "The resource '%s' already exists" % what, reason="alreadyExists")
