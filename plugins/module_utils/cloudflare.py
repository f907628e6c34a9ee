# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base for every Cloudflare module: the official SDK, our own retries, one-line errors, check mode and diff.

A module declares one resource kind as a `CloudflareResource` subclass (how to read, create, update and delete
it, and what the user asked for) and hands it to `CloudflareModule.ensure()`.

The SDK's own retries are off (max_retries=0): `RetryPolicy` retries 429 (honouring Retry-After), 5xx and
connection errors with full jitter, the same way for every family in this collection.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import (
    EnsureMixin,
    Resource,
    RETRYABLE_STATUS,
    RetryPolicy,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import (
    ApiError,
    ExpectedError,
    InputError,
    fix_for,
)

CLOUDFLARE_IMP_ERR = None
try:
    import cloudflare
    from cloudflare import Cloudflare

    HAS_CLOUDFLARE = True
except ImportError:
    HAS_CLOUDFLARE = False
    CLOUDFLARE_IMP_ERR = traceback.format_exc()

CLOUDFLARE_COMMON_ARGS = dict(
    api_token=dict(type="str", no_log=True, fallback=(env_fallback, ["CLOUDFLARE_API_TOKEN"])),
    base_url=dict(type="str", fallback=(env_fallback, ["CLOUDFLARE_BASE_URL"])),
    account_id=dict(type="str", fallback=(env_fallback, ["CLOUDFLARE_ACCOUNT_ID"])),
    request_timeout=dict(type="int", default=60),
    retries=dict(type="int", default=6),
)

# The token permission each kind of call needs, as the dashboard names it (Account or Zone > group > level).
PERMISSIONS = {
    "zone": "Zone > Zone > Read",
    "dns": "Zone > DNS > Edit",
    "access": "Account > Access: Apps and Policies > Edit",
    "service_token": "Account > Access: Service Tokens > Edit",
    "gateway": "Account > Zero Trust > Edit",
    "idp": "Account > Access: Organizations, Identity Providers, and Groups > Edit",
}


# The error a caller catches for a status it allowed (the one error type; the family's old name).
CloudflareApiError = ExpectedError


def error_detail(err):
    """(first Cloudflare error code, 'code message; ...') of an APIStatusError."""
    body = getattr(err, "body", None)
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], dict) else {}
        text = "; ".join("%s %s" % (e.get("code"), e.get("message")) for e in errors if isinstance(e, dict))
        return first.get("code"), text
    return None, str(getattr(err, "message", err)).splitlines()[0][:300]


def api_error(err, action, resource, area=None, expected=False):
    """The ApiError of a failed call: what failed, what Cloudflare said, and the fix from the table."""
    status = getattr(err, "status_code", None)
    code, detail = error_detail(err)
    perm = PERMISSIONS.get(area)
    reason = None
    if status == 403 and perm:
        reason = "PERMISSION"
    elif status == 400 and code in (6003, 6111, 9106, 9109):
        reason = 401  # a malformed token: the same fix as a rejected one
    kind = ExpectedError if expected else ApiError
    return kind("Cloudflare: %s %s failed: HTTP %s: %s" % (action, resource, status, detail.rstrip(".")),
                fix_for("cloudflare", status, reason, permission=perm), family="cloudflare", status=status,
                action=action, resource=resource, reason=code)


def _classify(exc):
    if HAS_CLOUDFLARE and isinstance(exc, cloudflare.APIStatusError):
        if exc.status_code in RETRYABLE_STATUS:
            headers = getattr(exc.response, "headers", {}) or {}
            retry_after = headers.get("retry-after")
            if retry_after is None and headers.get("x-ratelimit-reset") is not None:
                retry_after = headers.get("x-ratelimit-reset")
            return True, retry_after
        return False, None
    if HAS_CLOUDFLARE and isinstance(exc, (cloudflare.APIConnectionError, cloudflare.APITimeoutError)):
        return True, None
    return False, None


def to_data(value):
    """SDK models (and lists of them) as plain JSON data, holding only what the API sent."""
    if isinstance(value, list):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return dict((k, to_data(v)) for k, v in value.items())
    if hasattr(value, "to_dict"):
        return value.to_dict(mode="json")
    return value


class CloudflareResource(Resource):
    """One Cloudflare resource kind. Subclasses implement get/create/update/delete and desired()."""

    area = None
    returns_resource = True

    @property
    def client(self):
        return self.module.client

    def call(self, action, fn, *args, **kwargs):
        """A module call for this resource; a retried delete whose first attempt got through answers 404."""
        if action == "delete":
            kwargs.setdefault("allow", (404,))
            try:
                return self.module.call(fn, *args, action=action, resource="%s %s" % (self.kind, self.name),
                                        area=self.area, **kwargs)
            except CloudflareApiError as err:
                if err.status == 404:
                    return None
                raise
        return self.module.call(fn, *args, action=action, resource="%s %s" % (self.kind, self.name), area=self.area,
                                **kwargs)


class CloudflareClient:
    """The official SDK with our retries (its own are off), one-line errors and the zone look-up; call() raises
    ApiError. The module mixes it in and sets retry (a RetryPolicy) from its parameters."""

    retry = None
    _client = None

    @property
    def client(self):
        if self._client is None:
            kwargs = dict(max_retries=0, timeout=float(self.params["request_timeout"]))
            if self.params["api_token"]:
                kwargs["api_token"] = self.params["api_token"]
            if self.params["base_url"]:
                kwargs["base_url"] = self.params["base_url"].rstrip("/")
            self._client = Cloudflare(**kwargs)
        return self._client

    def public_headers(self):
        """Per-call headers for a public endpoint: without a token the SDK wants Authorization omitted explicitly."""
        return {} if self.params["api_token"] else {"Authorization": cloudflare.Omit()}

    @property
    def account_id(self):
        return self.params["account_id"]

    # ---- calls ------------------------------------------------------------------------
    def call(self, fn, *args, **kwargs):
        """fn(*args, **kwargs) with retries; an error raises ApiError (ExpectedError for the statuses in `allow`)."""
        action = kwargs.pop("action", "call")
        resource = kwargs.pop("resource", "")
        area = kwargs.pop("area", None)
        allow = kwargs.pop("allow", ())
        try:
            return self.retry.call(lambda: fn(*args, **kwargs), _classify)
        except cloudflare.APIStatusError as err:
            raise api_error(err, action, resource, area, expected=err.status_code in allow)
        except (cloudflare.APIConnectionError, cloudflare.APITimeoutError) as err:
            raise ApiError("Cloudflare: %s %s failed after %d attempts: %s" % (
                action, resource, self.retry.attempts, str(err).splitlines()[0]),
                fix_for("cloudflare", reason="UNREACHABLE", base_url=self.client.base_url), family="cloudflare",
                action=action, resource=resource)

    def raw(self, method, path, body=None, params=None, **kwargs):
        """A call the SDK has no method for (or types differently from the API), through the same client."""
        options = {}
        if params:
            options["params"] = params
        fn = getattr(self.client, method.lower())
        if method.upper() in ("POST", "PUT", "PATCH"):
            out = self.call(fn, path, cast_to=object, body=body, options=options, **kwargs)
        else:
            out = self.call(fn, path, cast_to=object, options=options, **kwargs)
        return out

    def paginate(self, fn, per_page=50, action="list", resource="", area=None, **kwargs):
        """Every item of a page-numbered list, one page per request (stops on total_count, short or empty page)."""
        items, page = [], 1
        while True:
            resp = self.call(fn, page=page, per_page=per_page, action=action, resource=resource, area=area, **kwargs)
            batch = to_data(list(resp.result or []))
            items.extend(batch)
            info = getattr(resp, "result_info", None)
            total = getattr(info, "total_count", None) if info is not None else None
            if not batch or len(batch) < per_page or (total is not None and len(items) >= total):
                return items
            page += 1

    def read_list(self, path, per_page=None, action="list", resource="", area=None):
        """The items of a list endpoint as the API sent them, through the same client; one page per request when
        `per_page` is given (same stops as paginate()). The look-ups by name go this way: the SDK's `zero_trust`
        attribute imports every Zero Trust resource and type (2.5-4 s per module process on a loaded machine) for the
        same requests."""
        items, page = [], 1
        while True:
            params = dict(page=page, per_page=per_page) if per_page else None
            resp = self.raw("GET", path, params=params, action=action, resource=resource, area=area) or {}
            batch = list(resp.get("result") or [])
            if not per_page:
                return batch
            items.extend(batch)
            total = (resp.get("result_info") or {}).get("total_count")
            if not batch or len(batch) < per_page or (total is not None and len(items) >= total):
                return items
            page += 1

    def zone_id(self, name):
        """The id of the zone called `name` (looked up once per run)."""
        name = name.lower().rstrip(".")
        if name not in self._zones:
            params = dict(name=name)
            if self.account_id:
                params["account"] = {"id": self.account_id}
            zones = self.paginate(self.client.zones.list, per_page=50, action="look up", resource="zone %s" % name,
                                  area="zone", **params)
            matches = [z for z in zones if z.get("name", "").lower() == name]
            if not matches:
                raise InputError("Cloudflare zone %s was not found: check the zone name, and that the API token has "
                                 "'%s' on it%s" % (name, PERMISSIONS["zone"],
                                                   " in account %s" % self.account_id if self.account_id else ""))
            self._zones[name] = matches[0]["id"]
        return self._zones[name]


class CloudflareModule(CloudflareClient, EnsureMixin, AnsibleModule):
    """The Cloudflare family's module: the client above and the runner (EnsureMixin)."""

    common_args = CLOUDFLARE_COMMON_ARGS

    def __init__(self, argument_spec=None, needs_token=True, needs_account=False, **kwargs):
        super(CloudflareModule, self).__init__(argument_spec, **kwargs)
        if not HAS_CLOUDFLARE:
            self.fail_json(msg=missing_required_lib("cloudflare"), exception=CLOUDFLARE_IMP_ERR)
        if needs_token and not self.params["api_token"]:
            self.fail_json(msg="api_token is required: set it, or CLOUDFLARE_API_TOKEN, to an API token with the "
                           "permissions in docs/permissions.md")
        if needs_account and not self.params["account_id"]:
            self.fail_json(msg="account_id is required: set it, or CLOUDFLARE_ACCOUNT_ID, to the 32-character id of "
                           "the account (dashboard > Overview > Account ID)")
        self.retry = RetryPolicy(retries=self.params["retries"])
        self._client = None
        self._zones = {}


# ---- look-ups several modules share ----------------------------------------------------------
def find_list(module, name_or_id, list_type=None):
    """A Zero Trust list by name or id, or None."""
    lists = module.read_list("/accounts/%s/gateway/lists" % module.account_id, action="list",
                             resource="Zero Trust lists", area="gateway")
    for data in lists:
        if name_or_id in (data.get("id"), data.get("name")) and (list_type is None or data.get("type") == list_type):
            return data
    return None


def list_items(module, list_id, name):
    """The entries of a Zero Trust list, as [{value, description}], every page."""
    out, page = [], 1
    while True:
        resp = module.raw("GET", "/accounts/%s/gateway/lists/%s/items" % (module.account_id, list_id),
                          params={"page": page, "per_page": 100}, action="list items of", resource="list %s" % name,
                          area="gateway")
        batch = []
        # The API nests the items one array deeper than the SDK types say: accept both.
        for entry in resp.get("result") or []:
            batch.extend(entry if isinstance(entry, list) else [entry])
        out.extend(batch)
        total = (resp.get("result_info") or {}).get("total_count")
        if not batch or len(batch) < 100 or (total is not None and len(out) >= total):
            return [dict((k, v) for k, v in i.items() if k in ("value", "description")) for i in out]
        page += 1


def _find_paged(module, path, name_or_id, resource, area):
    for item in module.read_list("/accounts/%s/%s" % (module.account_id, path), per_page=50, action="list",
                                 resource=resource, area=area):
        if name_or_id in (item.get("id"), item.get("name")):
            return item
    return None


def find_policy(module, name_or_id):
    """A reusable Access policy by name or id, or None."""
    return _find_paged(module, "access/policies", name_or_id, "Access policies", "access")


def find_identity_provider(module, name_or_id):
    """An Access identity provider by name or id (never with its client secret), or None."""
    return _find_paged(module, "access/identity_providers", name_or_id, "Access identity providers", "idp")


def find_service_token(module, name_or_id):
    """An Access service token by name or id (never with its secret), or None."""
    return _find_paged(module, "access/service_tokens", name_or_id, "Access service tokens", "service_token")
