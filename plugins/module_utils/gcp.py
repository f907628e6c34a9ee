# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base for every GCP module: auth, endpoints, retries, operation waits, check mode and diff.

A module declares one resource kind as a `GcpResource` subclass (how to read, create, update and
delete it, and what the user asked for) and hands it to `GcpModule.ensure()`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import http.client
import json
import os
import re
import socket
import time
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import (
    die_with_parent,
    EnsureMixin,
    Member,
    Resource,
    RETRYABLE_STATUS,
    RetryPolicy,
    wait_for,
    WaitTimeout,
)

GOOGLE_IMP_ERR = None
try:
    import google.auth
    import google.auth.exceptions
    import google.oauth2.credentials
    import google.oauth2.service_account
    import google_auth_httplib2
    import httplib2
    from googleapiclient import discovery, discovery_cache
    from googleapiclient.errors import HttpError

    HAS_GOOGLE = True
except ImportError:
    HAS_GOOGLE = False
    GOOGLE_IMP_ERR = traceback.format_exc()

    class HttpError(Exception):  # noqa: N818 - stands in for googleapiclient's class
        pass

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

# The services whose "not enabled" errors we can name precisely.
API_SERVICE = {
    "compute": "compute.googleapis.com",
    "container": "container.googleapis.com",
    "sqladmin": "sqladmin.googleapis.com",
    "secretmanager": "secretmanager.googleapis.com",
    "iam": "iam.googleapis.com",
    "cloudresourcemanager": "cloudresourcemanager.googleapis.com",
    "serviceusage": "serviceusage.googleapis.com",
    "servicenetworking": "servicenetworking.googleapis.com",
    "run": "run.googleapis.com",
    "redis": "redis.googleapis.com",
    "cloudkms": "cloudkms.googleapis.com",
    "storage": "storage.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
}

GCP_COMMON_ARGS = dict(
    project=dict(type="str", fallback=(env_fallback, ["GCP_PROJECT", "GOOGLE_CLOUD_PROJECT"])),
    auth_kind=dict(
        type="str",
        choices=["application", "serviceaccount", "accesstoken"],
        default="application",
        fallback=(env_fallback, ["GCP_AUTH_KIND"]),
    ),
    service_account_file=dict(type="path", fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_FILE"])),
    service_account_contents=dict(
        type="jsonarg", no_log=True, fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_CONTENTS"])
    ),
    access_token=dict(type="str", no_log=True, fallback=(env_fallback, ["GCP_ACCESS_TOKEN"])),
    scopes=dict(type="list", elements="str", default=[CLOUD_PLATFORM_SCOPE]),
    api_endpoints=dict(type="dict", default={}),
    api_endpoint_template=dict(type="str", fallback=(env_fallback, ["GCP_API_ENDPOINT_TEMPLATE"])),
    request_timeout=dict(type="int", default=60),
    retries=dict(type="int", default=6),
    wait_timeout=dict(type="int", default=1800),
    # The sandbox's scaled-down operations are polled faster through the environment.
    poll_interval=dict(type="float", default=0.5, fallback=(env_fallback, ["SKYFORGE_POLL_FIRST"])),
    poll_max_interval=dict(type="float", default=10.0, fallback=(env_fallback, ["SKYFORGE_POLL_MAX"])),
)


class GcpApiError(Exception):
    """A status the caller asked to handle; str() is the one-line error to fail with when it does not."""

    def __init__(self, message, status=None, reason=None, attempts=1):
        super(GcpApiError, self).__init__(message)
        self.status = status
        self.reason = reason
        # How many times the request was sent: more than once, an earlier attempt may have got through.
        self.attempts = attempts


class GcpOperationFailed(Exception):
    """An operation ended in error while ensure() may still try again."""

    def __init__(self, message, operation):
        super(GcpOperationFailed, self).__init__(message)
        self.operation = operation


# A create or update whose operation ended in error is sent again this many times more, when the resource shows that
# it did not take effect (a failed operation changes nothing; the next attempt usually succeeds).
OPERATION_ATTEMPTS = 3


def _error_payload(err):
    try:
        content = err.content.decode("utf-8") if isinstance(err.content, bytes) else err.content
        return json.loads(content).get("error", {})
    except Exception:  # pylint: disable=broad-except
        return {}


def http_status(err):
    resp = getattr(err, "resp", None)
    try:
        return int(resp.status) if resp is not None else None
    except (TypeError, ValueError):
        return None


# The role of docs/permissions.md that grants a permission; the first matching prefix wins.
PERMISSION_ROLES = (
    ("iam.serviceAccounts.actAs", "roles/iam.serviceAccountUser"),
    ("iam.serviceAccounts.", "roles/iam.serviceAccountAdmin"),
    ("compute.firewalls.", "roles/compute.securityAdmin"),
    ("compute.securityPolicies.", "roles/compute.securityAdmin"),
    ("compute.instances.", "roles/compute.instanceAdmin.v1"),
    ("compute.disks.", "roles/compute.instanceAdmin.v1"),
    ("compute.", "roles/compute.networkAdmin"),
    ("container.", "roles/container.admin"),
    ("cloudsql.", "roles/cloudsql.admin"),
    ("secretmanager.", "roles/secretmanager.admin"),
    ("resourcemanager.projects.", "roles/resourcemanager.projectIamAdmin"),
    ("serviceusage.", "roles/serviceusage.serviceUsageAdmin"),
    ("servicenetworking.", "roles/servicenetworking.networksAdmin"),
    ("run.", "roles/run.developer"),
    ("redis.", "roles/redis.admin"),
    ("cloudkms.", "roles/cloudkms.admin"),
    ("storage.", "roles/storage.admin"),
    ("artifactregistry.", "roles/artifactregistry.admin"),
)
_PERMISSION_PATTERNS = (
    re.compile(r"Permission '([a-zA-Z0-9.]+)' denied"),
    re.compile(r"Required '([a-zA-Z0-9.]+)' permission"),
    re.compile(r'Required "([a-zA-Z0-9.]+)" permission'),
)
_SQL_VERBS = {"insert": "create", "patch": "update"}


def role_for_permission(permission):
    for prefix, role in PERMISSION_ROLES:
        if permission.startswith(prefix):
            return role
    return None


def denied_permission(payload, method_id=None):
    """The permission a 403 was about: named by the API, or (Cloud SQL, Resource Manager) inferred from the method."""
    for detail in payload.get("details", []) or []:
        if isinstance(detail, dict) and (detail.get("metadata") or {}).get("permission"):
            return detail["metadata"]["permission"], True
    message = payload.get("message") or ""
    for pattern in _PERMISSION_PATTERNS:
        m = pattern.search(message)
        if m:
            return m.group(1), True
    parts = (method_id or "").split(".")
    if len(parts) == 3 and parts[0] == "sql":
        if parts[1] == "operations":
            return "cloudsql.instances.get", False
        return "cloudsql.%s.%s" % (parts[1], _SQL_VERBS.get(parts[2], parts[2])), False
    if len(parts) == 3 and parts[:2] == ["cloudresourcemanager", "projects"]:
        return "resourcemanager.projects.%s" % parts[2], False
    return None, False


def explain_http_error(api, action, resource, err, project=None, method_id=None):
    """One line: which API, which resource, what went wrong, what to do."""
    status = http_status(err)
    payload = _error_payload(err)
    message = payload.get("message") or str(err)
    reasons = [e.get("reason") for e in payload.get("errors", []) if isinstance(e, dict)]
    for detail in payload.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("reason"):
            reasons.append(detail.get("reason"))
    service = API_SERVICE.get(api, "%s.googleapis.com" % api)
    where = " on project %s" % project if project else ""
    if status == 403 and (
        "SERVICE_DISABLED" in reasons or "accessNotConfigured" in reasons or "has not been used" in message
    ):
        fix = "enable %s%s (skyforge.prefect_platform.gcp_project_services), then retry" % (service, where)
    elif status == 403:
        permission, named = denied_permission(payload, method_id)
        role = role_for_permission(permission) if permission else None
        if permission and role:
            fix = "grant the deploying identity %s%s, which holds %s%s (docs/permissions.md lists the roles)" % (
                role, where, permission, "" if named else ", the permission this call needs")
        elif permission:
            fix = "grant the deploying identity a role with %s%s (docs/permissions.md lists the roles)" % (
                permission, where)
        else:
            fix = "grant the deploying identity the missing permission%s (docs/permissions.md lists the roles)" % where
    elif status == 401:
        fix = "the credentials were rejected: check auth_kind, service_account_file or access_token"
    elif status == 404:
        fix = "check the name, project and location; create what it depends on first"
    elif status == 409:
        # What the operator sees after a race with another run of the same site: not a naming mistake.
        fix = ("it already exists or an operation on it is still running, most likely because a concurrent run "
               "created it a moment ago: wait for the other run to finish, then run again (the re-run adopts it)")
    elif status == 412:
        fix = "the resource changed while we updated it (stale fingerprint/etag); run again"
    elif status == 400:
        fix = "the request was refused as invalid: fix the module arguments named in the message"
    elif status == 429:
        fix = "quota or rate limit exhausted after retries; raise the quota or run with fewer forks"
    else:
        fix = "retry later; if it persists, check the GCP status page"
    return "GCP %s: %s %s failed: HTTP %s %s: %s. Fix: %s." % (
        service,
        action,
        resource,
        status,
        payload.get("status", ""),
        message.rstrip("."),
        fix,
    )


def operation_fix(op, error):
    """What to do about an operation that ended in error: the next step, not just the error."""
    codes = [e.get("code") for e in ((op.get("error") or {}).get("errors") or []) if isinstance(e, dict)]
    if "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE" in codes or "already being used by" in error:
        return ("remove what still uses it (the resource named after 'being used by') first; teardown.yml removes "
                "the platform's own users before the network, so anything else there was created outside it. "
                "Then run again")
    return ("an operation that fails is usually transient: run the playbook again, it resumes where it stopped "
            "(if the same operation keeps failing, check the GCP status page and the project's quotas)")


def _classify(exc):
    if isinstance(exc, HttpError):
        status = http_status(exc)
        if status in RETRYABLE_STATUS:
            resp = getattr(exc, "resp", {}) or {}
            retry_after = resp.get("retry-after") if hasattr(resp, "get") else None
            return True, retry_after
        return False, None
    if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError, http.client.HTTPException)):
        return True, None
    if HAS_GOOGLE and isinstance(exc, google.auth.exceptions.TransportError):
        return True, None
    if HAS_GOOGLE and isinstance(exc, google.auth.exceptions.RefreshError) and getattr(exc, "retryable", False):
        # The token endpoint itself was throttled or unavailable, not a rejected credential.
        return True, None
    return False, None


class GcpResource(Resource):
    """One GCP resource kind. Subclasses implement get/create/update/delete and desired().

    get() never waits. A kind whose reads show it still being created or changed (a cluster PROVISIONING, an
    instance PENDING_CREATE) names the field and those values in `settle_field`/`settling`; ensure() then settles
    it before comparing, and settle_only() is the same wait for a role's finish step.
    """

    api = None
    version = "v1"
    settle_field = "status"
    settling = ()
    # Fields a read leaves out while they hold their default (proto3 JSON): what a missing one means, so a
    # compare with what was asked sees the default rather than a difference.
    read_defaults = {}

    def client(self):
        return self.module.client(self.api, self.version)

    def fill_defaults(self, current):
        """The read with each missing read_defaults field filled in (a copy of its default); None stays None."""
        if current is not None:
            for field, default in self.read_defaults.items():
                current.setdefault(field, copy.deepcopy(default))
        return current

    def label(self):
        return "%s %s" % (self.kind, self.name)

    def is_settling(self, current):
        return bool(current) and current.get(self.settle_field) in self.settling

    def settle(self, current):
        current = self.module.wait_while(self.get, self.is_settling)
        if self.is_settling(current):
            self.module.fail_json(msg="%s is still %s after %ds. Fix: raise wait_timeout and run again."
                                      % (self.label(), current.get(self.settle_field), self.params["wait_timeout"]))
        return current


# What GCP answers a write whose etag or fingerprint is stale (another writer changed the object since our read).
CONFLICT = (409, 412)


class GcpMember(Member):
    """An entry inside a GCP object, written with the whole object: writes pass allow=CONFLICT to execute()."""

    api = None
    version = "v1"

    def client(self):
        return self.module.client(self.api, self.version)

    def is_conflict(self, exc):
        return isinstance(exc, GcpApiError) and exc.status in CONFLICT


class GcpModule(EnsureMixin, AnsibleModule):
    def __init__(self, argument_spec=None, **kwargs):
        spec = dict(GCP_COMMON_ARGS)
        spec.update(argument_spec or {})
        kwargs.setdefault("supports_check_mode", True)
        super(GcpModule, self).__init__(argument_spec=spec, **kwargs)
        # Operation waits can last their whole timeout: never let one outlive a killed ansible-playbook.
        die_with_parent()
        if not HAS_GOOGLE:
            self.fail_json(
                msg=missing_required_lib("google-api-python-client and google-auth"), exception=GOOGLE_IMP_ERR
            )
        self._clients = {}
        self._http = None
        self.retry = RetryPolicy(retries=self.params["retries"])
        self.operations_waited = 0
        self._raise_operation_errors = False

    # ---- auth and clients -------------------------------------------------------------
    def credentials(self):
        p = self.params
        scopes = p["scopes"]
        try:
            if p["auth_kind"] == "accesstoken":
                if not p["access_token"]:
                    self.fail_json(msg="auth_kind=accesstoken needs access_token (or GCP_ACCESS_TOKEN)")
                return google.oauth2.credentials.Credentials(p["access_token"])
            if p["auth_kind"] == "serviceaccount":
                if p["service_account_contents"]:
                    info = p["service_account_contents"]
                    info = json.loads(info) if isinstance(info, str) else info
                elif p["service_account_file"]:
                    path = p["service_account_file"]
                    if not os.path.exists(path):
                        self.fail_json(msg="service_account_file %s does not exist: point it at a key JSON" % path)
                    with open(path) as fh:
                        info = json.load(fh)
                else:
                    self.fail_json(
                        msg="auth_kind=serviceaccount needs service_account_file or service_account_contents"
                    )
                return google.oauth2.service_account.Credentials.from_service_account_info(info, scopes=scopes)
            creds, _project = google.auth.default(scopes=scopes)
            return creds
        except (ValueError, KeyError) as exc:
            self.fail_json(msg="GCP credentials are unusable (%s): check the key JSON" % exc)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            self.fail_json(
                msg="no application default credentials (%s): set auth_kind and service_account_file, "
                "or run where ADC is configured" % str(exc).splitlines()[0]
            )

    def http(self):
        if self._http is None:
            self._http = google_auth_httplib2.AuthorizedHttp(
                self.credentials(), http=httplib2.Http(timeout=self.params["request_timeout"])
            )
        return self._http

    def endpoint(self, api):
        """Root URL for an API: explicit per-API override, then the template, else Google's default."""
        if api in (self.params.get("api_endpoints") or {}):
            return self.params["api_endpoints"][api]
        template = self.params.get("api_endpoint_template")
        if template:
            return template.format(api=api)
        return None

    def client(self, api, version="v1"):
        key = (api, version)
        if key not in self._clients:
            options = None
            root = self.endpoint(api)
            # Parse the bundled discovery document once (compute's is 5 MB): build() would read and parse it again.
            doc = discovery_cache.get_static_doc(api, version)
            service = json.loads(doc) if doc else None
            if root:
                options = {"api_endpoint": root.rstrip("/") + "/" + (service or {}).get("servicePath", "")}
            if service is None:
                # Not bundled: build() raises UnknownApiNameOrVersion, as before.
                self._clients[key] = discovery.build(
                    api,
                    version,
                    http=self.http(),
                    static_discovery=True,
                    cache_discovery=False,
                    client_options=options,
                )
            else:
                self._clients[key] = discovery.build_from_document(
                    service, base=discovery.DISCOVERY_URI, http=self.http(), client_options=options
                )
        return self._clients[key]

    # ---- calls ----------------------------------------------------------------------
    def execute(self, request, action="call", resource="", allow_404=False, allow_409=False, allow=()):
        """Execute a googleapiclient request with retries; map errors to one clear line.

        Statuses in `allow` (and 409 with allow_409) raise GcpApiError for the caller to handle: a retried
        create whose first attempt got through answers 409, a retried patch answers 412.
        """
        sent = self.retry.attempts
        try:
            return self.retry.call(lambda: request.execute(num_retries=0), _classify)
        except HttpError as err:
            status = http_status(err)
            if allow_404 and status == 404:
                return None
            msg = explain_http_error(self._api_of(request), action, resource or request.uri.split("?")[0], err,
                                     self.params.get("project"), method_id=getattr(request, "methodId", None))
            if (allow_409 and status == 409) or status in allow:
                raise GcpApiError(msg, status=status, attempts=self.retry.attempts - sent)
            self.fail_json(msg=msg, status=status)
        except (ConnectionError, socket.timeout, TimeoutError, http.client.HTTPException) as exc:
            self.fail_json(
                msg="GCP %s: %s %s failed after %d attempts: %s. Fix: check network access to the API endpoint."
                % (self._api_of(request), action, resource, self.retry.attempts, exc)
            )
        except google.auth.exceptions.RefreshError as exc:
            if getattr(exc, "retryable", False):
                self.fail_json(
                    msg="GCP token endpoint kept failing after %d attempts (%s). Fix: retry later; check the "
                    "OAuth2 endpoint is reachable." % (self.retry.attempts, str(exc).splitlines()[0][:200])
                )
            self.fail_json(msg="GCP credentials could not get a token (%s): check the service account key" % exc)

    @staticmethod
    def _api_of(request):
        uri = getattr(request, "uri", "") or ""
        for api in API_SERVICE:
            if "/%s." % api in uri or "//%s." % api in uri or "/%s/" % api in uri:
                return api
        return "api"

    def get(self, request, resource=""):
        if self.check_mode:
            try:
                return self.retry.call(lambda: request.execute(num_retries=0), _classify)
            except HttpError as err:
                status = http_status(err)
                if status == 404:
                    return None
                payload = _error_payload(err)
                reasons = [d.get("reason") for d in payload.get("details", []) or [] if isinstance(d, dict)]
                if status == 403 and "SERVICE_DISABLED" in reasons:
                    # The API is off (an earlier task would enable it): nothing of it can exist yet.
                    return None
        return self.execute(request, action="get", resource=resource, allow_404=True)

    # ---- long-running operations -----------------------------------------------------
    def wait_while(self, read, settling, first=0.5, maximum=10.0):
        """Read a resource until settling(resource) is false, it is gone (None) or wait_timeout passes; return the
        last read. For resources that settle without an operation to wait on (one started by an earlier run, or by a
        task with wait=false): a result that is still settling means the wait timed out."""
        try:
            return wait_for(read, lambda current: current is None or not settling(current),
                            self.params["wait_timeout"], "a settling resource", first=first, maximum=maximum)
        except WaitTimeout as exc:
            return exc.last

    def wait(self, api, op, resource="", timeout=None):
        """Wait for any operation kind these APIs return; fail with the operation's error."""
        if not isinstance(op, dict):
            return op
        timeout = timeout or self.params["wait_timeout"]
        started = op
        try:
            op = wait_for(lambda: self.execute(self._op_request(api, started), action="poll operation",
                                               resource=started.get("name", "")),
                          lambda polled: self._op_done(api, polled), timeout,
                          "operation %s on %s" % (op.get("name"), resource or "?"), option="wait_timeout",
                          hint="the operation may still finish, and a re-run will pick it up",
                          first=self.params["poll_interval"], maximum=self.params["poll_max_interval"], initial=op)
        except WaitTimeout as exc:
            self.fail_json(msg="GCP %s: %s" % (API_SERVICE.get(api, api), exc.msg), operation=exc.last)
        self.operations_waited += 1
        error = self._op_error(api, op)
        if error:
            msg = "GCP %s: operation %s on %s failed: %s. Fix: %s." % (
                API_SERVICE.get(api, api), op.get("name"), resource, error.rstrip("."), operation_fix(op, error))
            if self._raise_operation_errors:
                raise GcpOperationFailed(msg, op)
            self.fail_json(msg=msg, operation=op)
        return op

    def _again(self, action, still_needed):
        """Run action(); when its operation fails and still_needed() says nothing took effect, run it again."""
        for attempt in range(OPERATION_ATTEMPTS):
            self._raise_operation_errors = True
            try:
                return action()
            except GcpOperationFailed as exc:
                self._raise_operation_errors = False
                if attempt + 1 >= OPERATION_ATTEMPTS or not still_needed():
                    if attempt + 1 >= OPERATION_ATTEMPTS:
                        self.fail_json(msg="%s (after %d attempts)" % (exc, OPERATION_ATTEMPTS), operation=exc.operation)
                    return None
                time.sleep(min(self.params["poll_max_interval"], self.params["poll_interval"] * 1.5 ** attempt))
            finally:
                self._raise_operation_errors = False

    @staticmethod
    def _op_done(api, op):
        if "done" in op or api in ("servicenetworking", "serviceusage", "run", "secretmanager", "iam"):
            return bool(op.get("done"))
        return op.get("status") == "DONE"

    def _op_request(self, api, op):
        name = op.get("name")
        if api == "compute":
            project = self.params["project"]
            if op.get("zone"):
                return self.client("compute").zoneOperations().get(
                    project=project, zone=op["zone"].rsplit("/", 1)[-1], operation=name
                )
            if op.get("region"):
                return self.client("compute").regionOperations().get(
                    project=project, region=op["region"].rsplit("/", 1)[-1], operation=name
                )
            return self.client("compute").globalOperations().get(project=project, operation=name)
        if api == "container":
            if not name.startswith("projects/"):
                location = op.get("location") or op.get("zone") or op.get("selfLink", "").split("/locations/")[-1].split("/")[0]
                name = "projects/%s/locations/%s/operations/%s" % (self.params["project"], location, name)
            return self.client("container").projects().locations().operations().get(name=name)
        if api == "sqladmin":
            return self.client("sqladmin").operations().get(project=self.params["project"], operation=name)
        if api in ("servicenetworking", "serviceusage"):
            return self.client(api).operations().get(name=name)
        if api in ("run", "redis", "artifactregistry", "cloudkms"):
            version = "v2" if api == "run" else "v1"
            return self.client(api, version).projects().locations().operations().get(name=name)
        raise ValueError("no operation poller for %s" % api)

    @staticmethod
    def _op_error(api, op):
        err = op.get("error")
        if isinstance(err, dict):
            if err.get("errors"):
                return "; ".join("%s: %s" % (e.get("code", ""), e.get("message", "")) for e in err["errors"])
            if err.get("message"):
                return err["message"]
        if api == "container" and op.get("statusMessage") and op.get("status") == "DONE" and op.get("error"):
            return op["statusMessage"]
        return None

    # ---- the declarative resource loop -----------------------------------------------

    def attempt(self, action, still_needed):
        return self._again(action, still_needed)

    # A 409 does not say whose the object is: another run may have created it a moment ago.
    duplicate_must_match = True

    def is_own_duplicate(self, exc):
        # Compute refuses a rule priority that is taken with 400, everything else an existing name with 409.
        return isinstance(exc, GcpApiError) and exc.status in (400, 409) and exc.attempts > 1

    def create_failed(self, resource, exc):
        if isinstance(exc, GcpApiError):
            self.fail_json(msg=str(exc), status=exc.status)


def crc32c(data):
    """Secret Manager's payload checksum (CRC32C, Castagnoli), for the dataCrc32c it verifies on addVersion."""
    crc = 0xFFFFFFFF
    for byte in bytearray(data):
        crc ^= byte
        for _i in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def basename(link):
    return link.rstrip("/").rsplit("/", 1)[-1] if link else link


def compute_link(project, *parts):
    """A compute resource's full URL, the form the API echoes back in references."""
    return "https://www.googleapis.com/compute/v1/projects/%s/%s" % (project, "/".join(parts))
