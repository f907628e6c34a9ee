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

import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import (
    EnsureMixin,
    Resource,
    RetryPolicy,
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
RETRYABLE = frozenset([429, 500, 502, 503, 504])

TFC_COMMON_ARGS = dict(
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["TFE_TOKEN"])),
    address=dict(type="str", fallback=(env_fallback, ["TFE_ADDRESS"])),
    organization=dict(type="str", fallback=(env_fallback, ["TFE_ORGANIZATION"])),
    validate_certs=dict(type="bool", default=True),
    request_timeout=dict(type="int", default=30),
    retries=dict(type="int", default=6),
)


class TfcApiError(Exception):
    """An API error a caller asked to handle itself (see `call(..., allow=...)`)."""

    def __init__(self, message, status=None, detail=""):
        super(TfcApiError, self).__init__(message)
        self.status = status
        self.detail = detail


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
    if isinstance(exc, TfcApiError):
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
    return status in RETRYABLE, None


def fix_for(status, detail):
    if status == 401:
        return "the token was rejected: set token (or TFE_TOKEN) to a valid user or team API token"
    if status == 403:
        return "the token lacks permission for this; use a team or user token with access to the organization"
    if status == 404:
        return "check the organization, names and IDs (HCP Terraform answers 404 for things the token cannot see)"
    if status == 409:
        return "the resource is in a state that does not allow this (for example a run that is not awaiting " \
               "confirmation); re-run to pick up the current state"
    if status == 422:
        return "fix the module arguments the message names"
    if status == 429:
        return "rate limit still exceeded after retries; run with fewer forks or raise retries"
    return "retry later; if it persists check https://status.hashicorp.com"


class TfcResource(Resource):
    """One HCP Terraform resource kind: subclasses implement get/create/update/delete, desired() and view()."""

    compare_on_view = True


class TfcModule(EnsureMixin, AnsibleModule):
    def __init__(self, argument_spec=None, needs_organization=True, **kwargs):
        spec = dict(TFC_COMMON_ARGS)
        spec.update(argument_spec or {})
        kwargs.setdefault("supports_check_mode", True)
        super(TfcModule, self).__init__(argument_spec=spec, **kwargs)
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

    @property
    def organization(self):
        return self.params["organization"]

    # ---- the client ------------------------------------------------------------------------
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
        """Run fn() with retries; 404 -> None when allow_404; statuses in `allow` raise TfcApiError."""
        try:
            return self.retry.call(fn, classify)
        except (TFEError, TfcApiError) as exc:
            status = error_status(exc)
            detail = exc.detail if isinstance(exc, TfcApiError) else error_detail(exc)
            if allow_404 and status == 404:
                return None
            if status in allow:
                raise TfcApiError(str(exc), status=status, detail=detail)
            self.fail(action, resource, status, detail)
        except Exception as exc:  # pylint: disable=broad-except
            retryable, _wait = classify(exc)
            if retryable:
                self.fail_json(msg="HCP Terraform: %s %s failed after %d attempts: %s. Fix: check that %s is "
                                   "reachable." % (action, resource, self.retry.attempts, exc, self.address))
            raise

    def fail(self, action, resource, status, detail, **extra):
        detail = (detail or "").rstrip(".")
        self.fail_json(msg="HCP Terraform: %s %s failed: HTTP %s: %s. Fix: %s." % (
            action, resource, status if status is not None else "(no response)", detail, fix_for(status, detail)),
            status=status, **extra)

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
            raise TfcApiError("upload failed", status=resp.status_code, detail=resp.text.strip()[:300])

        return self.call(put, action="upload configuration to", resource=resource, allow=(409,))

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
            self.fail_json(msg="HCP Terraform: workspace %s does not exist in organization %s. Fix: create it first "
                               "(skyforge.prefect_platform.tfc_workspace)." % (name, self.organization))
        return ws

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
        if isinstance(exc, TfcApiError):
            self.fail("create %s" % resource.kind, resource.name, exc.status, exc.detail)


def rel_id(doc, name):
    data = ((doc or {}).get("relationships") or {}).get(name) or {}
    ref = data.get("data")
    return ref.get("id") if isinstance(ref, dict) else None


def rel_ids(doc, name):
    data = ((doc or {}).get("relationships") or {}).get(name) or {}
    return [r.get("id") for r in data.get("data") or [] if isinstance(r, dict)]


def sdk_version():
    return getattr(pytfe, "__version__", "?") if HAS_PYTFE else None
