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

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.process import die_with_parent
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import (
    EnsureMixin,
    Member,
    Resource,
    RETRYABLE_STATUS,
    RetryPolicy,
    Waiter,
    WaitTimeout,
    diff_dict,
    poll_after,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import (
    ApiError,
    ExpectedError,
    InputError,
    OperationFailed,
    fix_for,
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


# The error a caller catches for a status it allowed (the one error type; the family's old name).
GcpApiError = ExpectedError

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


def http_error(api, action, resource, err, project=None, method_id=None, attempts=1, expected=False):
    """The ApiError of a failed call: which API, which resource, what went wrong, and the fix from the table
    (an ExpectedError when the caller handles its status)."""
    status = http_status(err)
    payload = _error_payload(err)
    message = payload.get("message") or str(err)
    reasons = [e.get("reason") for e in payload.get("errors", []) if isinstance(e, dict)]
    for detail in payload.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("reason"):
            reasons.append(detail.get("reason"))
    service = API_SERVICE.get(api, "%s.googleapis.com" % api)
    context = dict(service=service, where=" on project %s" % project if project else "")
    reason = None
    if status == 403 and (
        "SERVICE_DISABLED" in reasons or "accessNotConfigured" in reasons or "has not been used" in message
    ):
        reason = "SERVICE_DISABLED"
    elif status == 403:
        permission, named = denied_permission(payload, method_id)
        role = role_for_permission(permission) if permission else None
        if permission:
            reason = "PERMISSION_ROLE" if role else "PERMISSION"
            context.update(permission=permission, role=role,
                           inferred="" if named else ", the permission this call needs")
    kind = ExpectedError if expected else ApiError
    what = "GCP %s: %s %s failed: HTTP %s %s: %s" % (
        service, action, resource, status, payload.get("status", ""), message.rstrip("."))
    return kind(what, fix_for("gcp", status, reason, **context), family="gcp", status=status, action=action,
                resource=resource, reason=reason, attempts=attempts)


def explain_http_error(api, action, resource, err, project=None, method_id=None):
    """The one line http_error() fails with."""
    return http_error(api, action, resource, err, project, method_id).msg


def operation_error(api, op, resource, error):
    """The OperationFailed of an operation that ended in error: the next step, not just the error."""
    codes = [e.get("code") for e in ((op.get("error") or {}).get("errors") or []) if isinstance(e, dict)]
    in_use = "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE" in codes or "already being used by" in error
    what = "GCP %s: operation %s on %s failed: %s" % (API_SERVICE.get(api, api), op.get("name"), resource,
                                                      error.rstrip("."))
    return OperationFailed(what, fix_for("gcp", reason="RESOURCE_IN_USE" if in_use else "OPERATION"), operation=op,
                           family="gcp", resource=resource)


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
            raise WaitTimeout("%s is still %s after %ds" % (self.label(), current.get(self.settle_field),
                                                            self.params["wait_timeout"]),
                              "raise wait_timeout and run again", last=current)
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
        return isinstance(exc, ExpectedError) and exc.status in CONFLICT


def unconditional(bindings, role):
    """The binding of `role` without a condition (conditional bindings are left as they are)."""
    return next((b for b in bindings if b["role"] == role and not b.get("condition")), None)


def listed(members_by_role):
    return [{"role": role, "members": members_by_role[role]} for role in sorted(members_by_role)]


class PolicyBindings(GcpMember):
    """The named roles' members (role -> sorted members) inside one IAM policy, written back with the etag read.

    `wanted` maps each role to the members this module adds or removes; a subclass reads the policy (read(), None
    when its resource is gone) and writes it whole (set_policy(policy)). Other members and roles stay as they are.
    """

    kind = "bindings"

    def __init__(self, module, wanted):
        super(PolicyBindings, self).__init__(module)
        self.wanted = wanted

    def set_policy(self, policy):
        raise NotImplementedError

    def find(self, parent):
        bindings = (parent or {}).get("bindings", [])
        return dict((role, sorted((unconditional(bindings, role) or {}).get("members", []))) for role in self.wanted)

    def target(self, current, state):
        if state == "present":
            return dict((role, sorted(set(current[role]) | members)) for role, members in self.wanted.items())
        return dict((role, [m for m in current[role] if m not in members]) for role, members in self.wanted.items())

    def changes(self, current, target):
        return [role for role in sorted(target) if target[role] != current[role]]

    def write(self, parent, current, target):
        bindings = parent.get("bindings", [])
        for role in self.wanted:
            binding = unconditional(bindings, role)
            if binding is None:
                bindings.append({"role": role, "members": target[role]})
            else:
                binding["members"] = target[role]
        self.set_policy({"bindings": [b for b in bindings if b.get("members")], "etag": parent.get("etag"),
                         "version": parent.get("version", 1)})
        return None

    def diff(self, before, after):
        role = self.params["role"]
        if role is not None:
            return diff_dict({"role": role, "members": before[role]}, {"role": role, "members": after[role]})
        return diff_dict({"bindings": listed(before)}, {"bindings": listed(after)})

    def result(self, parent, before, after, changes):
        result = dict(bindings=listed(after))
        if self.params["role"] is not None:
            result["members"] = after[self.params["role"]]
        return result


_DOCUMENTS = {}
# The APIs the modules call: parsed once in the controller before it forks the in-process module runs
# (plugin_utils/in_process.py), so a run of a compute module does not read and parse compute's 5 MB again.
PRELOADED_APIS = (("compute", "v1"), ("container", "v1"), ("sqladmin", "v1"), ("secretmanager", "v1"),
                  ("serviceusage", "v1"), ("servicenetworking", "v1"), ("iam", "v1"), ("cloudresourcemanager", "v3"),
                  ("run", "v2"))


def discovery_document(api, version):
    """The bundled discovery document of an API as a dict, parsed once per process; None when it is not bundled.
    build_from_document only adds the same derived keys to it each time, so one parse serves every client."""
    key = (api, version)
    if key not in _DOCUMENTS:
        doc = discovery_cache.get_static_doc(api, version)
        _DOCUMENTS[key] = json.loads(doc) if doc else None
    return _DOCUMENTS[key]


def preload():
    for api, version in PRELOADED_APIS:
        discovery_document(api, version)


class GcpClient:
    """Auth, endpoints and retries: one googleapiclient service per API, and execute() that raises ApiError."""

    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self._clients = {}
        self._http = None
        self.retry = RetryPolicy(retries=params["retries"])

    def credentials(self):
        p = self.params
        scopes = p["scopes"]
        try:
            if p["auth_kind"] == "accesstoken":
                if not p["access_token"]:
                    raise InputError("auth_kind=accesstoken needs access_token (or GCP_ACCESS_TOKEN)")
                return google.oauth2.credentials.Credentials(p["access_token"])
            if p["auth_kind"] == "serviceaccount":
                if p["service_account_contents"]:
                    info = p["service_account_contents"]
                    info = json.loads(info) if isinstance(info, str) else info
                elif p["service_account_file"]:
                    path = p["service_account_file"]
                    if not os.path.exists(path):
                        raise InputError("service_account_file %s does not exist: point it at a key JSON" % path)
                    with open(path) as fh:
                        info = json.load(fh)
                else:
                    raise InputError("auth_kind=serviceaccount needs service_account_file or service_account_contents")
                return google.oauth2.service_account.Credentials.from_service_account_info(info, scopes=scopes)
            creds, _project = google.auth.default(scopes=scopes)
            return creds
        except (ValueError, KeyError) as exc:
            raise InputError("GCP credentials are unusable (%s): check the key JSON" % exc)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise InputError("no application default credentials (%s): set auth_kind and service_account_file, "
                             "or run where ADC is configured" % str(exc).splitlines()[0])

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
            service = discovery_document(api, version)
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

    def execute(self, request, action="call", resource="", allow_404=False, allow_409=False, allow=()):
        """Execute a googleapiclient request with retries; an error is an ApiError with its one clear line.

        allow_404 turns a 404 into None. Statuses in `allow` (and 409 with allow_409) are the ones the caller
        handles: a retried create whose first attempt got through answers 409, a retried patch answers 412.
        """
        sent = self.retry.attempts
        try:
            return self.retry.call(lambda: request.execute(num_retries=0), _classify)
        except HttpError as err:
            status = http_status(err)
            if allow_404 and status == 404:
                return None
            raise http_error(self._api_of(request), action, resource or request.uri.split("?")[0], err,
                             self.params.get("project"), method_id=getattr(request, "methodId", None),
                             attempts=self.retry.attempts - sent,
                             expected=(allow_409 and status == 409) or status in allow)
        except (ConnectionError, socket.timeout, TimeoutError, http.client.HTTPException) as exc:
            raise ApiError("GCP %s: %s %s failed after %d attempts: %s" % (self._api_of(request), action, resource,
                                                                           self.retry.attempts, exc),
                           fix_for("gcp", reason="UNREACHABLE"), family="gcp", action=action, resource=resource)
        except google.auth.exceptions.RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise ApiError("GCP token endpoint kept failing after %d attempts (%s)"
                               % (self.retry.attempts, str(exc).splitlines()[0][:200]),
                               fix_for("gcp", reason="TOKEN_UNREACHABLE"), family="gcp")
            raise InputError("GCP credentials could not get a token (%s): check the service account key" % exc)

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

    def operation_request(self, api, op):
        """The request that reads an operation again, for every operation kind these APIs return."""
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


def _op_done(api, op):
    if "done" in op or api in ("servicenetworking", "serviceusage", "run", "secretmanager", "iam"):
        return bool(op.get("done"))
    return op.get("status") == "DONE"


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


class GcpModule(EnsureMixin, AnsibleModule):
    """The GCP family's module: a GcpClient (auth, endpoints, retries), a Waiter for operations and settling
    resources, and the runner (EnsureMixin) with GCP's retry of failed operations and duplicate rules."""

    common_args = GCP_COMMON_ARGS

    def __init__(self, argument_spec=None, **kwargs):
        super(GcpModule, self).__init__(argument_spec, **kwargs)
        # Operation waits can last their whole timeout: never let one outlive a killed ansible-playbook.
        die_with_parent()
        if not HAS_GOOGLE:
            self.fail_json(
                msg=missing_required_lib("google-api-python-client and google-auth"), exception=GOOGLE_IMP_ERR
            )
        self.gcp = GcpClient(self.params, self.check_mode)
        self.waiter = Waiter(self.params["wait_timeout"], "wait_timeout", self.params["poll_interval"],
                             self.params["poll_max_interval"])
        self.operations_waited = 0

    # ---- the client's calls, as every module and resource makes them ---------------------
    @property
    def retry(self):
        return self.gcp.retry

    def credentials(self):
        return self.gcp.credentials()

    def client(self, api, version="v1"):
        return self.gcp.client(api, version)

    def execute(self, request, action="call", resource="", allow_404=False, allow_409=False, allow=()):
        return self.gcp.execute(request, action, resource, allow_404=allow_404, allow_409=allow_409, allow=allow)

    def get(self, request, resource=""):
        return self.gcp.get(request, resource)

    # ---- long-running operations -----------------------------------------------------
    def wait_while(self, read, settling):
        """Read a resource until settling(resource) is false, it is gone (None) or wait_timeout passes; return the
        last read. For resources that settle without an operation to wait on (one started by an earlier run, or by a
        task with wait=false): a result that is still settling means the wait timed out."""
        return self.waiter.settle(read, settling)

    def wait(self, api, op, resource="", timeout=None):
        """Wait for any operation kind these APIs return; OperationFailed when it ends in error."""
        if not isinstance(op, dict):
            return op
        started = op
        try:
            op = self.waiter.until(lambda: self.execute(self.gcp.operation_request(api, started),
                                                        action="poll operation", resource=started.get("name", "")),
                                   lambda polled: _op_done(api, polled),
                                   "operation %s on %s" % (op.get("name"), resource or "?"),
                                   hint="the operation may still finish, and a re-run will pick it up", initial=op,
                                   timeout=timeout)
        except WaitTimeout as exc:
            raise WaitTimeout("GCP %s: %s" % (API_SERVICE.get(api, api), exc.what), exc.fix, last=exc.last,
                              timeout=exc.timeout, operation=exc.last)
        self.operations_waited += 1
        error = _op_error(api, op)
        if error:
            raise operation_error(api, op, resource, error)
        return op

    # ---- the declarative resource loop -----------------------------------------------

    def attempt(self, action, still_needed):
        """Run action(); when its operation fails and still_needed() says nothing took effect, run it again."""
        started = time.monotonic()
        for attempt in range(OPERATION_ATTEMPTS):
            try:
                return action()
            except OperationFailed as exc:
                if attempt + 1 >= OPERATION_ATTEMPTS:
                    raise OperationFailed("%s (after %d attempts)" % (exc.msg, OPERATION_ATTEMPTS),
                                          operation=exc.operation, family="gcp")
                if not still_needed():
                    return None
                time.sleep(poll_after(time.monotonic() - started, self.waiter.first, self.waiter.maximum))
        return None

    # A 409 does not say whose the object is: another run may have created it a moment ago.
    duplicate_must_match = True

    def is_own_duplicate(self, exc):
        # Compute refuses a rule priority that is taken with 400, everything else an existing name with 409.
        return isinstance(exc, ExpectedError) and exc.status in (400, 409) and exc.attempts > 1


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
