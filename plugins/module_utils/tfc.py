# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base for every HCP Terraform module: the pytfe client, retries, errors, check mode and diff.

The SDK's own retry loop is switched off (max_retries=0) so that RetryPolicy applies: full-jitter
backoff on 5xx and connection errors, and the wait HCP Terraform asks for on 429 (X-RateLimit-Reset,
which pytfe does not read). Where pytfe lacks a call, or drops a field we need (for example agent
states other than idle/busy), `jsonapi()` sends a thin JSON:API request through the same client.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.process import die_with_parent
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import (
    EnsureMixin,
    Resource,
    RETRYABLE_STATUS,
    RetryPolicy,
    differs,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import (
    ApiError,
    ExpectedError,
    InputError,
    fix_for,
)

PYTFE_IMP_ERR = None
try:
    import httpx
    import pytfe
    from pytfe import TFEClient, TFEConfig
    from pytfe.errors import TFEError

    HAS_PYTFE = True
except ImportError:
    HAS_PYTFE = False
    PYTFE_IMP_ERR = traceback.format_exc()

    class TFEError(Exception):  # noqa: N818 - stands in for pytfe's class
        status = None

DEFAULT_ADDRESS = "https://app.terraform.io"

TFC_COMMON_ARGS = dict(
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["TFE_TOKEN"])),
    address=dict(type="str", fallback=(env_fallback, ["TFE_ADDRESS"])),
    organization=dict(type="str", fallback=(env_fallback, ["TFE_ORGANIZATION"])),
    validate_certs=dict(type="bool", default=True),
    request_timeout=dict(type="int", default=30),
    retries=dict(type="int", default=6),
)


# The error a caller catches for a status it allowed (the one error type; the family's old name).
TfcApiError = ExpectedError


def error_status(exc):
    return getattr(exc, "status", None)


def error_detail(exc):
    errors = getattr(exc, "errors", None) or []
    parts = []
    for err in errors:
        if isinstance(err, dict):
            text = err.get("detail") or err.get("title") or ""
            pointer = (err.get("source") or {}).get("pointer")
            parts.append("%s%s" % (text, " (%s)" % pointer if pointer else ""))
        elif err:
            parts.append(str(err))
    return "; ".join(p for p in parts if p) or str(exc)


def classify(exc):
    """(retryable, seconds to wait) for an exception from pytfe or httpx."""
    if isinstance(exc, ApiError):
        status = exc.status
        headers = {}
    elif isinstance(exc, TFEError):
        status = error_status(exc)
        headers = getattr(exc, "headers", None) or {}
    elif HAS_PYTFE and isinstance(exc, httpx.HTTPError):
        return True, None
    elif isinstance(exc, (ConnectionError, TimeoutError)):
        return True, None
    else:
        return False, None
    if status is None and isinstance(exc, TFEError) and exc.__class__.__name__ == "ServerError":
        return True, None  # pytfe turns transport errors into a status-less ServerError
    if status == 429:
        reset = headers.get("x-ratelimit-reset") or headers.get("X-RateLimit-Reset")
        retry_after = getattr(exc, "retry_after", None)
        return True, reset if reset is not None else retry_after
    return status in RETRYABLE_STATUS, None


def api_error(action, resource, status, detail, expected=False):
    """The ApiError of a failed call, with the fix from the table (an ExpectedError when the caller handles it)."""
    detail = (detail or "").rstrip(".")
    kind = ExpectedError if expected else ApiError
    return kind("HCP Terraform: %s %s failed: HTTP %s: %s" % (action, resource, status if status is not None
                                                              else "(no response)", detail),
                fix_for("tfc", status), family="tfc", status=status, action=action, resource=resource, detail=detail)


class TfcResource(Resource):
    """One HCP Terraform resource kind: subclasses implement get/create/update/delete, desired() and view()."""

    compare_on_view = True


class TfcClient:
    """pytfe with our retries (its own are off) and the rate-limit header it drops, thin JSON:API calls through the
    same transport, uploads; call() raises ApiError. The module mixes it in and sets address and retry (a
    RetryPolicy) from its parameters."""

    address = None
    retry = None
    _client = None

    @property
    def organization(self):
        return self.params["organization"]

    @property
    def client(self):
        if self._client is None:
            cfg = TFEConfig(address=self.address, token=self.params["token"],
                            timeout=float(self.params["request_timeout"]), verify_tls=self.params["validate_certs"],
                            max_retries=0, http2=False, user_agent_suffix="skyforge.prefect_platform")
            self._client = TFEClient(cfg)
            transport = self._client._transport
            original = transport._raise_if_error

            def raise_with_headers(resp):
                # pytfe keeps only Retry-After; HCP Terraform sends X-RateLimit-Reset.
                try:
                    original(resp)
                except TFEError as exc:
                    exc.headers = dict((k.lower(), v) for k, v in resp.headers.items())
                    raise

            transport._raise_if_error = raise_with_headers
        return self._client

    def call(self, fn, action="call", resource="", allow_404=False, allow=()):
        """Run fn() with retries; 404 -> None when allow_404; an error raises ApiError (ExpectedError for the
        statuses in `allow`)."""
        try:
            return self.retry.call(fn, classify)
        except (TFEError, ApiError) as exc:
            status = error_status(exc)
            detail = exc.detail if isinstance(exc, ApiError) else error_detail(exc)
            if allow_404 and status == 404:
                return None
            raise api_error(action, resource, status, detail, expected=status in allow)
        except Exception as exc:  # pylint: disable=broad-except
            retryable, _wait = classify(exc)
            if retryable:
                raise ApiError("HCP Terraform: %s %s failed after %d attempts: %s" % (
                    action, resource, self.retry.attempts, exc), fix_for("tfc", reason="UNREACHABLE",
                                                                         address=self.address), family="tfc")
            raise

    def jsonapi(self, method, path, body=None, params=None, action="call", resource="", allow_404=False, allow=()):
        """A JSON:API request through pytfe's transport (same auth, headers and session)."""
        transport = self.client._transport

        def send():
            resp = transport.request(method, path, params=params, json_body=body)
            if resp.status_code == 204 or not resp.content:
                return {}
            return resp.json()

        return self.call(send, action=action, resource=resource, allow_404=allow_404, allow=allow)

    def jsonapi_list(self, path, params=None, action="list", resource=""):
        """Every item of a paginated JSON:API collection."""
        out, page = [], 1
        while True:
            query = dict(params or {})
            query.update({"page[number]": page, "page[size]": 100})
            doc = self.jsonapi("GET", path, params=query, action=action, resource=resource)
            out.extend(doc.get("data") or [])
            nxt = ((doc.get("meta") or {}).get("pagination") or {}).get("next-page")
            if not nxt or nxt <= page:
                return out
            page = nxt

    def upload(self, url, blob, resource=""):
        """PUT a tar.gz to a configuration version's upload-url (the URL is the credential: no token sent)."""
        sync = self.client._transport._sync

        def put():
            resp = sync.put(url, content=blob, headers={"Content-Type": "application/octet-stream"})
            if resp.status_code in (200, 201, 204):
                return resp.status_code
            raise ApiError("upload failed", family="tfc", status=resp.status_code, detail=resp.text.strip()[:300])

        return self.call(put, action="upload configuration to", resource=resource, allow=(409,))


class TfcModule(TfcClient, EnsureMixin, AnsibleModule):
    """The HCP Terraform family's module: the client above, the look-ups every module needs and the runner
    (EnsureMixin)."""

    common_args = TFC_COMMON_ARGS

    def __init__(self, argument_spec=None, needs_organization=True, **kwargs):
        super(TfcModule, self).__init__(argument_spec, **kwargs)
        # A run's apply can take its whole timeout: never let it outlive a killed ansible-playbook.
        die_with_parent()
        if not HAS_PYTFE:
            self.fail_json(msg=missing_required_lib("pytfe"), exception=PYTFE_IMP_ERR)
        if not self.params["token"]:
            self.fail_json(msg="token is required: set token, or the TFE_TOKEN environment variable, to an HCP "
                               "Terraform user or team API token")
        if needs_organization and not self.params["organization"]:
            self.fail_json(msg="organization is required: set organization, or TFE_ORGANIZATION")
        self.address = (self.params["address"] or DEFAULT_ADDRESS).rstrip("/")
        self.retry = RetryPolicy(retries=self.params["retries"])
        self._client = None

    # ---- lookups every module needs ------------------------------------------------------------
    def workspace(self, name, allow_missing=True):
        path = "/api/v2/organizations/%s/workspaces/%s" % (self.organization, name)
        doc = self.jsonapi("GET", path, action="read workspace", resource=name, allow_404=allow_missing)
        return (doc or {}).get("data")

    def require_workspace(self, name):
        ws = self.workspace(name)
        if ws is None:
            if self.check_mode:
                return None
            self.missing_workspace(name)
        return ws

    def missing_workspace(self, label):
        raise InputError("HCP Terraform: workspace %s does not exist in organization %s" % (label, self.organization),
                         "create it first (skyforge.prefect_platform.tfc_workspace)")

    def workspace_by_id(self, ws_id, allow_missing=True):
        doc = self.jsonapi("GET", "/api/v2/workspaces/%s" % ws_id, action="read workspace", resource=ws_id,
                           allow_404=allow_missing)
        return (doc or {}).get("data")

    def target_workspace(self):
        """(workspace ID, label) from the workspace or workspace_id option.

        An ID is taken as given (no read); a name is looked up once. In check mode a workspace that does not
        exist yet gives (None, name): an earlier task would create it.
        """
        if self.params.get("workspace_id"):
            return self.params["workspace_id"], self.params["workspace_id"]
        name = self.params["workspace"]
        ws = self.require_workspace(name)
        return (ws["id"] if ws else None), name

    def workspace_variables(self, ws_id, label):
        """Every variable of the workspace as JSON:API documents, in one request (the endpoint is not paginated).

        Raw JSON:API rather than pytfe: pytfe's Variable drops `version-id`, which tfc_run's digest needs.
        """
        doc = self.jsonapi("GET", "/api/v2/workspaces/%s/vars" % ws_id, action="list variables of", resource=label,
                           allow_404=True)
        if doc is None:
            self.missing_workspace(label)
        return doc.get("data") or []

    def agent_pool_by_name(self, name):
        for pool in self.call(lambda: list(self.client.agent_pools.list(self.organization)),
                              action="list agent pools of", resource=self.organization):
            if pool.name == name:
                return pool
        return None

    # ---- the declarative loop ------------------------------------------------------------------

    def is_own_duplicate(self, exc):
        # A retried create whose first attempt got through: the name is taken by our own object.
        return isinstance(exc, TfcApiError) and exc.status == 422 and "taken" in (exc.detail or "")

    def create_failed(self, resource, exc):
        if isinstance(exc, ExpectedError):
            raise api_error("create %s" % resource.kind, resource.name, exc.status, exc.detail)


# ---- workspace variables: tfc_variable and tfc_workspace_variables share these ---------------------------------

PENDING = "(pending)"


def variable_problem(spec):
    """Why the API would refuse (or misread) a variable, as the message to fail with; None when it is fine."""
    key = spec["key"]
    if spec["category"] == "terraform" and not (key[:1].isalpha() or key[:1] == "_"):
        return "key=%r is not a valid Terraform variable name: start with a letter or _" % key
    if spec["hcl"] and spec["category"] == "env":
        return "hcl=true has no effect on environment variables: drop hcl or use category=terraform"
    return None


def find_variable(docs, key, category):
    for doc in docs or []:
        a = doc.get("attributes") or {}
        if a.get("key") == key and a.get("category") == category:
            return doc
    return None


def variable_view(doc):
    """The module's view of a JSON:API variable; a sensitive variable has no value in it."""
    if doc is None:
        return None
    a = doc.get("attributes") or {}
    out = {"id": doc.get("id"), "key": a.get("key"), "category": a.get("category"), "hcl": bool(a.get("hcl")),
           "sensitive": bool(a.get("sensitive")), "description": a.get("description")}
    if not a.get("sensitive"):
        out["value"] = a.get("value")
    return out


def variables_digest(docs):
    """Digest of the variables' versions: `version-id` changes whenever a value does, even a sensitive one.

    tfc_run records it in the run message; tfc_workspace_variables returns it so tfc_run need not list again.
    A variable about to change carries PENDING instead of a version, so a predicted digest never matches.
    """
    blob = json.dumps(sorted((d["attributes"]["key"], d["attributes"]["category"], d["attributes"].get("version-id"))
                             for d in docs or []))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class WorkspaceVariable(TfcResource):
    """One variable of a workspace, driven from a spec {key, value, category, hcl, sensitive, description}.

    `docs` is the workspace's variable list already read by the caller, so a module lists once however many
    variables it manages. The value of a sensitive variable cannot be read back: it is never compared, only
    written on create, on force_update_sensitive, or when the variable becomes sensitive.
    """

    kind = "variable"
    secret_keys = ("value",)
    returns_resource = True

    def __init__(self, module, ws_id, ws_label, spec, docs, force_update_sensitive=False):
        super(WorkspaceVariable, self).__init__(module)
        self.ws_id = ws_id
        self.ws_label = ws_label
        self.spec = spec
        self.force = force_update_sensitive
        self._docs = docs
        self.sensitive_note = None

    @property
    def name(self):
        return "%s/%s (%s)" % (self.ws_label, self.spec["key"], self.spec["category"])

    def find(self, docs):
        return find_variable(docs, self.spec["key"], self.spec["category"])

    def get(self):
        # The list the caller read serves the first lookup; a later one (a read-back) reads again.
        if self._docs is None:
            if self.ws_id is None:
                return None
            docs = self.module.workspace_variables(self.ws_id, self.ws_label)
        else:
            docs, self._docs = self._docs, None
        return self.find(docs)

    def unsensitive_problem(self, current, delete_with="state=absent"):
        if current is not None and (current.get("attributes") or {}).get("sensitive") and not self.spec["sensitive"]:
            return ("variable %s is sensitive and HCP Terraform cannot make it non-sensitive. Fix: delete it "
                    "(%s) and create it again, or keep sensitive=true." % (self.name, delete_with))
        return None

    def view(self, resource):
        if isinstance(resource, dict) and "attributes" not in resource:
            return resource  # already a view (a prediction)
        return variable_view(resource)

    def desired(self):
        s = self.spec
        out = {"key": s["key"], "category": s["category"], "hcl": bool(s["hcl"]), "sensitive": bool(s["sensitive"])}
        if s.get("description") is not None:
            out["description"] = s["description"]
        if not s["sensitive"]:
            out["value"] = s["value"]
        return out

    def changes(self, desired, current):
        found = differs(desired, current)
        if current and current.get("sensitive") and self.spec["sensitive"]:
            if self.force:
                found.append("value")
                self.sensitive_note = "written"
            elif self.sensitive_note is None:
                self.sensitive_note = "not_compared"
        return found

    def predict(self, current, desired):
        out = dict(current or {}, **desired)
        if out.get("sensitive"):
            out.pop("value", None)
        return out

    def _send(self, method, path, attributes, action, var_id=None, allow=()):
        data = {"type": "vars", "attributes": attributes}
        if var_id:
            data["id"] = var_id
        doc = self.module.jsonapi(method, path, body={"data": data}, action=action, resource=self.name, allow=allow)
        return doc.get("data")

    def create(self, desired):
        s = self.spec
        attrs = {"key": s["key"], "value": s["value"], "category": s["category"], "hcl": bool(s["hcl"]),
                 "sensitive": bool(s["sensitive"])}
        if s.get("description") is not None:
            attrs["description"] = s["description"]
        created = self._send("POST", "/api/v2/workspaces/%s/vars" % self.ws_id, attrs, "create variable",
                             allow=(422,))
        if s["sensitive"]:
            self.sensitive_note = "written"
        return created

    def update(self, current, desired, changes):
        s = self.spec
        attrs = {"hcl": bool(s["hcl"]), "sensitive": bool(s["sensitive"])}
        if s.get("description") is not None:
            attrs["description"] = s["description"]
        was_sensitive = bool((current.get("attributes") or {}).get("sensitive"))
        if "value" in changes or (s["sensitive"] and not was_sensitive):
            # Making a variable sensitive rewrites its value too, so the stored value is the one asked for.
            attrs["value"] = s["value"]
            if s["sensitive"]:
                self.sensitive_note = "written"
        return self._send("PATCH", "/api/v2/workspaces/%s/vars/%s" % (self.ws_id, current["id"]), attrs,
                          "update variable", var_id=current["id"])

    def delete(self, current):
        self.module.jsonapi("DELETE", "/api/v2/workspaces/%s/vars/%s" % (self.ws_id, current["id"]),
                            action="delete variable", resource=self.name, allow_404=True)


def variable_label(category, key):
    return "%s/%s" % (category, key)


def doc_label(doc):
    a = doc.get("attributes") or {}
    return variable_label(a.get("category"), a.get("key"))


def mask_only_sensitive(module, specs=None):
    """Keep only sensitive values (and the token) among the strings Ansible masks in the result.

    AnsibleModule masks every no_log value as a substring of the whole result; a short non-sensitive value
    such as "7" would garble IDs and the digest. The logged invocation was already written with all masked.
    """
    specs = module.params["variables"] if specs is None else specs
    keep = set(v["value"] for v in specs if v["sensitive"])
    keep.add(module.params["token"])
    for v in specs:
        if not v["sensitive"] and v["value"] not in keep:
            module.no_log_values.discard(v["value"])


def predicted(resource, desired, current_doc):
    """A stand-in JSON:API document for what a write would leave (check mode): its version is pending."""
    view = resource.predict(variable_view(current_doc), desired)
    attrs = dict((k, v) for k, v in view.items() if k != "id")
    attrs["version-id"] = PENDING
    return {"id": view.get("id"), "type": "vars", "attributes": attrs}


def create_variable(module, resource, desired):
    try:
        return resource.create(desired)
    except TfcApiError as exc:
        if not module.is_own_duplicate(exc):
            module.create_failed(resource, exc)
            raise
    # A retried create whose first attempt got through: read it back, and bring it to what was asked.
    doc = resource.get()
    changes = resource.changes(desired, variable_view(doc)) if doc is not None else []
    return resource.update(doc, desired, changes) if changes else doc


def set_variables(module, ws_id, ws_label, specs, docs, purge=False, force_update_sensitive=False):
    """Bring a workspace's variables to `specs` (tfc_workspace_variables' rules); the module result's fields.

    `docs` is the workspace's variable list, already read. Everything is decided before anything is written,
    so a refusal leaves the workspace as it was.
    """
    resources = [WorkspaceVariable(module, ws_id, ws_label, spec, None, force_update_sensitive) for spec in specs]
    plan = []
    for res in resources:
        current = res.find(docs)
        refused = res.unsensitive_problem(
            current, delete_with="leave it out with purge=true, or tfc_variable with state=absent")
        if refused:
            module.fail_json(msg=refused)
        desired = res.desired()
        if current is None:
            plan.append((res, desired, None, None))
        else:
            plan.append((res, desired, current, res.changes(desired, variable_view(current))))
    listed = set((s["category"], s["key"]) for s in specs)
    doomed = [d for d in docs if purge and ((d.get("attributes") or {}).get("category"),
                                            (d.get("attributes") or {}).get("key")) not in listed]

    after = dict((doc_label(d), d) for d in docs)
    created, updated, deleted, notes = [], {}, [], {}
    for res, desired, current, changes in plan:
        name = variable_label(res.spec["category"], res.spec["key"])
        if current is None:
            created.append(name)
            after[name] = predicted(res, desired, None) if module.check_mode else create_variable(module, res, desired)
            if res.spec["sensitive"]:
                res.sensitive_note = "written"
        elif changes:
            updated[name] = changes
            after[name] = predicted(res, desired, current) if module.check_mode else \
                res.update(current, desired, changes)
        if res.spec["sensitive"]:
            notes[name] = res.sensitive_note or "not_compared"
    for doc in doomed:
        deleted.append(doc_label(doc))
        if not module.check_mode:
            WorkspaceVariable(module, ws_id, ws_label, {"key": doc["attributes"]["key"],
                                                        "category": doc["attributes"]["category"]},
                              None).delete(doc)
        after.pop(doc_label(doc))

    before_view = dict((doc_label(d), variable_view(d)) for d in docs)
    after_view = dict((k, variable_view(d)) for k, d in after.items())
    return dict(
        changed=bool(created or updated or deleted),
        created=created, updated=updated, deleted=sorted(deleted), sensitive_values=notes,
        variables=[after_view[k] for k in sorted(after_view)],
        variables_digest=variables_digest(after.values()),
        diff={"before": before_view, "after": after_view},
    )


def rel_id(doc, name):
    data = ((doc or {}).get("relationships") or {}).get(name) or {}
    ref = data.get("data")
    return ref.get("id") if isinstance(ref, dict) else None


def rel_ids(doc, name):
    data = ((doc or {}).get("relationships") or {}).get(name) or {}
    return [r.get("id") for r in data.get("data") or [] if isinstance(r, dict)]


def sdk_version():
    return getattr(pytfe, "__version__", "?") if HAS_PYTFE else None
