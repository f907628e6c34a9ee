"""The GCP stand-in as `https://<api>.googleapis.com`, for clients that cannot be pointed at another endpoint.

prefect-gcp's Cloud Run worker, gcloud and the google-cloud-* libraries hard-code Google's host names. The sandbox
answers them over TLS with a CA of its own (kept in the state dir, so exported settings survive a restart), on a
loopback port that only the sandbox's CONNECT proxy (the kube family's bastion) leads to: the client needs nothing
but proxy and CA settings (`Sandbox.network_env`, `python -m sandbox env`). Each host is routed to the same GCP app
that serves the path-style endpoint (`/<api>/...`), so strictness, IAM and faults are the same on both.

Workload Identity: `network_env(identity)` for a pod also gives it a metadata-server stand-in of its own
(GCE_METADATA_HOST on loopback; the port identifies the pod, as the node's metadata server identifies it by pod IP)
that issues the Google service account's tokens the way GKE's does: only when the pod's Kubernetes service account
carries `iam.gke.io/gcp-service-account` and that account's IAM policy grants `roles/iam.workloadIdentityUser` to
`serviceAccount:<project>.svc.id.goog[<namespace>/<ksa>]`.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import threading

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .. import tls
from ..web import ApiError, App, Response, Server, connect_tunnel

HOSTS = r"([a-z0-9-]+\.)?googleapis\.com"
WI_ANNOTATION = "iam.gke.io/gcp-service-account"
WI_ROLE = "roles/iam.workloadIdentityUser"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"]


def load_or_create_ca(state_dir):
    """(ca_cert, ca_key, ca_pem_path): one CA per state dir."""
    cert_path = os.path.join(state_dir, "googleapis-ca.pem")
    key_path = os.path.join(state_dir, "googleapis-ca.key")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        with open(cert_path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
        with open(key_path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
        if cert.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1):
            return cert, key, cert_path
    cert, key = tls.new_ca("skyforge sandbox googleapis CA", 365, organization="skyforge sandbox")
    tls.write_private(key_path, tls.key_pem(key))
    with open(cert_path, "wb") as fh:
        fh.write(tls.pem(cert))
    return cert, key, cert_path


def serving_context(state_dir, ca_cert, ca_key):
    """A TLS server context for *.googleapis.com signed by the sandbox CA."""
    cert, key = tls.issue(ca_cert, ca_key, "*.googleapis.com", ["*.googleapis.com", "googleapis.com"], ["127.0.0.1"],
                          days=30)
    return tls.server_context(os.path.join(state_dir, "googleapis-serving.pem"), cert, key)


class Frontend(App):
    """https://<api>.googleapis.com -> the GCP app's /<api>/ routes."""

    family = "googleapis"
    admin_api = False  # Google's hosts have no /_sandbox/: a process given only the proxy cannot reach the admin API

    def __init__(self, sandbox, gcp):
        super().__init__(sandbox)
        self.gcp = gcp

    def error_response(self, err):
        return self.gcp.error_response(err)

    def api_for(self, host, path):
        """(GCP app path, region of a regional endpoint or None) for a request to host+path, or None."""
        host = host.split(":")[0].lower()
        if not host.endswith(".googleapis.com"):
            return None
        label = host[: -len(".googleapis.com")]
        if label == "oauth2":
            return ("/token", None) if path == "/token" else None
        if label == "www":
            # Older clients: the token endpoint and APIs under their service path on www.googleapis.com.
            if path in ("/oauth2/v4/token", "/oauth2/v3/token"):
                return "/token", None
            for api, docs in self.gcp.discovery.items():
                for doc in docs:
                    if doc.service_path and path.startswith("/" + doc.service_path):
                        return "/" + api + path, None
            return None
        region = None
        if label not in self.gcp.discovery:
            # Regional endpoints: <region>-<api>.googleapis.com (gcloud run uses europe-west1-run.googleapis.com).
            m = re.fullmatch(r"([a-z]+-[a-z]+\d+)-([a-z]+)", label)
            if m:
                region, label = m.group(1), m.group(2)
        if label not in self.gcp.discovery:
            return None
        return "/" + label + path, region

    def dispatch(self, req):
        routed = self.api_for(req.header("Host", ""), req.path)
        if routed is None:
            raise ApiError(404, "The requested URL %s was not found on this server (the sandbox serves %s)."
                           % (req.path, ", ".join("%s.googleapis.com" % a for a in sorted(self.gcp.discovery))))
        target, req.endpoint_region = routed
        prefix = target[: len(target) - len(req.path)]
        req.path = target
        req.raw_path = prefix + req.raw_path
        return self.gcp.dispatch(req)


class Metadata(App):
    """A GKE metadata server for one pod (Workload Identity), answering as metadata.google.internal does."""

    family = "metadata"
    rate_faults = False
    admin_api = False

    def __init__(self, sandbox, gcp, identity):
        super().__init__(sandbox)
        self.gcp = gcp
        self.identity = dict(identity)

    def error_response(self, err):
        return Response(err.status, err.message + "\n", content_type="text/plain; charset=utf-8",
                        headers={"Metadata-Flavor": "Google"})

    # ---- who the pod is -------------------------------------------------------------
    def ksa_annotations(self):
        """The pod's Kubernetes service account's annotations, read from its cluster now (they may change)."""
        ident = self.identity
        kube = self.sandbox.kube
        cluster = ident.get("cluster")
        if cluster and kube is not None and cluster in kube.clusters:
            obj = kube.clusters[cluster].objects.get(("serviceaccounts", ident["namespace"], ident["service_account"]))
            if obj is None:
                return None
            return (obj.get("metadata") or {}).get("annotations") or {}
        return ident.get("annotations") or {}

    def connect(self, handler, host, port):
        # The node's way to Google APIs for this pod: the same bastion as the cluster's, on the pod's own port so
        # the request log can tell the pod's traffic (a server's telemetry, a worker's clean-up) from the deployer's.
        return connect_tunnel(handler, self.sandbox, host, port)

    def origin(self):
        """The workload this metadata server serves, as the request log names it."""
        if self.identity.get("google_service_account"):
            return "workload:%s" % self.identity["google_service_account"]
        return "workload:pod/%s/%s" % (self.identity["namespace"], self.identity["service_account"])

    def member(self):
        return "serviceAccount:%s.svc.id.goog[%s/%s]" % (self.gcp.project, self.identity["namespace"],
                                                         self.identity["service_account"])

    def google_account(self):
        """The Google service account's email, or raise as GKE's metadata server refuses."""
        if self.identity.get("google_service_account"):  # a Cloud Run task or a VM: its own runtime account
            return self.identity["google_service_account"]
        ann = self.ksa_annotations()
        if ann is None:
            raise ApiError(404, "Kubernetes service account %s/%s not found" % (
                self.identity["namespace"], self.identity["service_account"]))
        email = ann.get(WI_ANNOTATION)
        if not email:
            raise ApiError(404, "The Kubernetes service account %s/%s has no %s annotation: annotate it with the "
                                "Google service account to act as (the sandbox issues no federated tokens)"
                           % (self.identity["namespace"], self.identity["service_account"], WI_ANNOTATION))
        return email

    def _granted(self, email):
        resource = "projects/%s/serviceAccounts/%s" % (self.gcp.project, email)
        if resource not in self.sandbox.store.table("iam.serviceAccounts"):
            return False
        if self.identity.get("google_service_account"):
            return True
        policy = self.sandbox.store.table("iam.policies").get(resource) or {}
        return any(b.get("role") == WI_ROLE and self.member() in (b.get("members") or [])
                   for b in policy.get("bindings") or [])

    # ---- routes -------------------------------------------------------------------------
    def dispatch(self, req):
        if req.path in ("/", ""):
            return self._text("computeMetadata/\n")
        if req.header("Metadata-Flavor") != "Google":
            raise ApiError(403, "Missing required header: Metadata-Flavor: Google")
        path = req.path
        if not path.startswith("/computeMetadata/v1/"):
            raise ApiError(404, "Not Found")
        rest = path[len("/computeMetadata/v1/"):]
        project = {"project/project-id": self.gcp.project, "project/numeric-project-id": self.gcp.project_number,
                   "instance/attributes/cluster-name": self.identity.get("cluster_name", ""),
                   "instance/attributes/cluster-location": self.identity.get("cluster_location", "")}
        if rest in project and project[rest]:
            return self._text(project[rest])
        m = re.fullmatch(r"instance/service-accounts/([^/]+)/?(email|token|scopes|aliases|identity)?", rest)
        if not m:
            raise ApiError(404, "Not Found")
        account, leaf = m.group(1), m.group(2)
        email = self.google_account()
        if account not in ("default", email):
            raise ApiError(404, "Service account %s not found for this pod" % account)
        if leaf == "email":
            return self._text(email)
        if leaf == "scopes":
            return self._text("\n".join(SCOPES) + "\n")
        if leaf == "aliases":
            return self._text("default\n")
        if leaf is None:
            if req.query.get("recursive") != "true":
                return self._text("aliases\nemail\nidentity\nscopes\ntoken\n")
            return Response(200, {"aliases": ["default"], "email": email, "scopes": SCOPES},
                            headers={"Metadata-Flavor": "Google"})
        if leaf == "identity":
            raise ApiError(501, "the sandbox's metadata server issues no identity tokens")
        if not self._granted(email):
            # GKE's metadata server passes IAM's refusal on as its own 403.
            if self.identity.get("google_service_account"):
                raise ApiError(403, "Unable to generate access token: service account %s does not exist" % email)
            raise ApiError(403, "Unable to generate access token; IAM returned 403 Forbidden: Permission "
                                "'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist). "
                                "Grant %s on %s to %s." % (WI_ROLE, email, self.member()))
        token = self.gcp.auth.mint(email, origin=self.origin())
        return Response(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"},
                        headers={"Metadata-Flavor": "Google"})

    @staticmethod
    def _text(body):
        return Response(200, body, headers={"Metadata-Flavor": "Google"}, content_type="application/text")


class GoogleApis:
    def __init__(self, sandbox, gcp):
        self.sandbox = sandbox
        self.gcp = gcp
        self.lock = threading.Lock()
        self.metadata = {}  # identity key -> Server
        state = sandbox.config.state_dir
        ca_cert, ca_key, self.ca_file = load_or_create_ca(state)
        self.bundle_file = self._write_bundle(state)
        self.frontend = Frontend(sandbox, gcp)
        self.server = Server(self.frontend, sandbox, sandbox.free_port(),
                             ssl_context=serving_context(state, ca_cert, ca_key)).start()
        sandbox.map_hosts(HOSTS, 443, "127.0.0.1", self.server.port, "googleapis")
        self.key_file = os.path.join(state, "gcp-deployer-key-googleapis.json")

    def _write_bundle(self, state):
        """The public roots plus the sandbox CA: a process given SSL_CERT_FILE still trusts what it trusted before."""
        import certifi

        path = os.path.join(state, "googleapis-ca-bundle.pem")
        with open(certifi.where(), "rb") as fh:
            roots = fh.read()
        with open(self.ca_file, "rb") as fh:
            ours = fh.read()
        with open(path + ".tmp", "wb") as fh:
            fh.write(roots.rstrip(b"\n") + b"\n" + ours)
        os.replace(path + ".tmp", path)
        return path

    def write_key(self):
        """The deployer's key with Google's own token URI, for clients that are not pointed at the sandbox."""
        with open(self.gcp.auth.key_file) as fh:
            info = json.load(fh)
        info["token_uri"] = "https://oauth2.googleapis.com/token"
        tls.write_private(self.key_file, json.dumps(info, indent=2).encode())

    def stop(self):
        self.server.stop()
        with self.lock:
            servers, self.metadata = list(self.metadata.values()), {}
        for server in servers:
            server.stop()

    def metadata_server(self, identity):
        key = json.dumps(identity, sort_keys=True)
        with self.lock:
            server = self.metadata.get(key)
            if server is None:
                server = Server(Metadata(self.sandbox, self.gcp, identity), self.sandbox,
                                self.sandbox.free_port()).start()
                self.metadata[key] = server
        return server

    def env(self, identity=None):
        proxy = self.sandbox.url("kube")
        proxy_port = proxy.rsplit(":", 1)[1]
        no_proxy = "127.0.0.1,localhost,::1"
        out = {
            "HTTPS_PROXY": proxy, "https_proxy": proxy,
            "NO_PROXY": no_proxy, "no_proxy": no_proxy,
            "REQUESTS_CA_BUNDLE": self.bundle_file, "SSL_CERT_FILE": self.bundle_file,
            "CURL_CA_BUNDLE": self.bundle_file, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": self.bundle_file,
            # httplib2 (google-api-python-client's transport, prefect-gcp's) reads neither of the above.
            "HTTPLIB2_CA_CERTS": self.bundle_file,
            "CLOUDSDK_PROXY_TYPE": "http", "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1", "CLOUDSDK_PROXY_PORT": proxy_port,
            "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": self.bundle_file,
            "CLOUDSDK_CORE_PROJECT": self.gcp.project, "GOOGLE_CLOUD_PROJECT": self.gcp.project,
            # Nothing gcloud would fetch besides the APIs may leave the machine (the proxy refuses it anyway).
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        }
        if identity is None:
            self.write_key()
            out["GOOGLE_APPLICATION_CREDENTIALS"] = self.key_file
            out["CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE"] = self.key_file
        else:
            missing = [k for k in ("namespace", "service_account") if not identity.get(k)]
            if missing and not identity.get("google_service_account"):
                raise ValueError("an identity is a pod's (namespace and service_account) or a Google service "
                                 "account's (google_service_account); missing %s" % " and ".join(missing))
            server = self.metadata_server(identity)
            pod_proxy = "http://127.0.0.1:%d" % server.port
            out.update({"HTTPS_PROXY": pod_proxy, "https_proxy": pod_proxy, "CLOUDSDK_PROXY_PORT": str(server.port)})
            out["GCE_METADATA_HOST"] = "127.0.0.1:%d" % server.port
            out["GCE_METADATA_IP"] = "127.0.0.1:%d" % server.port
            out["GCE_METADATA_ROOT"] = "127.0.0.1:%d" % server.port
            out.pop("CLOUDSDK_CORE_CHECK_GCE_METADATA")
        return out
