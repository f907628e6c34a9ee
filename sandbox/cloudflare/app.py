"""Cloudflare API v4 under /client/v4: routing, token auth, validation and the envelope; the resources are served by
zones.py (/ips, /zones), dns.py (DNS records), access.py (Access apps, policies, service tokens),
identity_providers.py (Access identity providers) and lists.py (Gateway lists), each registering its handlers with
`app.handle(method, template, fn, area, permission)`.

Every request is routed by, and its body validated against, Cloudflare's OpenAPI description (spec.py); every
response is validated too, so the sandbox cannot drift from the shapes the SDK and the modules will meet in the
real API. Errors use Cloudflare's envelope: {"success": false, "errors": [{"code", "message"}], "messages": [],
"result": null}.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import uuid

from ..web import App, Response
from . import access, dns, identity_providers, lists, spec as specmod, zones
from .common import (
    CLOUDFLARE_IPV4, CLOUDFLARE_IPV6, PERM_ACCESS_APPS, PERM_ACCESS_IDP, PERM_DNS, PERM_SERVICE_TOKENS, PERM_ZONE_READ,
    PERM_ZT,
    VALIDATION_CODE, Page, cf_error, now,
)

PREFIX = "/client/v4"
RESOURCE_MODULES = (zones, dns, access, identity_providers, lists)

ALL_PERMISSIONS = frozenset(
    [PERM_ZONE_READ] + ["%s %s" % (p, m) for p in (PERM_DNS, PERM_ACCESS_APPS, PERM_SERVICE_TOKENS, PERM_ZT,
                                                   PERM_ACCESS_IDP)
                        for m in ("Read", "Write")]
)

# Error codes the real API answers for these situations.
CODE_BAD_HEADERS = 6003
CODE_INVALID_TOKEN = 1000
CODE_AUTH = 10000
CODE_NO_ROUTE = 7000
CODE_METHOD = 10405
# The API answers 429 with code 971, below the minimum (1000) its description sets; 1015 is the edge's code.
CODE_RATE = 1015
CODE_INTERNAL = 10001


_SPECS = {}
_SPECS_LOCK = threading.Lock()


def load_spec(specs_dir):
    """Parsed once per process: several sandboxes in one test session share it."""
    with _SPECS_LOCK:
        if specs_dir not in _SPECS:
            _SPECS[specs_dir] = specmod.Spec(specs_dir)
        return _SPECS[specs_dir]


class CloudflareApp(App):
    family = "cloudflare"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.lock = threading.RLock()
        self.spec, self.spec_error = None, None
        try:
            self.spec = load_spec(sandbox.config.specs_dir)
        except FileNotFoundError as exc:
            self.spec_error = str(exc)
        state = self._load_state()
        self.account_id = state["account_id"]
        self.zone_name = os.environ.get("SKYFORGE_SANDBOX_CF_ZONE", "skyforge.example").lower()
        self.api_token = state["api_token"]
        self.tokens = {self.api_token: ALL_PERMISSIONS}
        self.violations = []  # responses that broke the description; tests assert there are none
        self.zones = sandbox.store.table("cloudflare.zones")
        self.records = sandbox.store.table("cloudflare.dns_records")
        self.apps = sandbox.store.table("cloudflare.access_apps")
        self.policies = sandbox.store.table("cloudflare.access_policies")
        self.lists = sandbox.store.table("cloudflare.gateway_lists")
        self.service_tokens = sandbox.store.table("cloudflare.service_tokens")
        self.idps = sandbox.store.table("cloudflare.access_identity_providers")
        self.idp_secrets = {}  # identity provider id -> its client secret (never in a response)
        self.secrets = {}  # service token id -> current client secret (never in a GET)
        self.zone_id = state["zone_id"]
        created = now()
        self.zones[self.zone_id] = {
            "id": self.zone_id, "name": self.zone_name, "status": "active", "paused": False, "type": "full",
            "development_mode": 0, "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": None, "original_registrar": None, "original_dnshost": None,
            "created_on": created, "modified_on": created, "activated_on": created,
            "meta": {"step": 4, "custom_certificate_quota": 0, "page_rule_quota": 3, "phishing_detected": False},
            "owner": {"id": self.account_id, "type": "organization", "name": "Skyforge sandbox account"},
            "account": {"id": self.account_id, "name": "Skyforge sandbox account"},
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
            "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "price": 0, "currency": "USD",
                     "frequency": "", "is_subscribed": False, "can_subscribe": False, "legacy_id": "free",
                     "legacy_discount": False, "externally_managed": False},
        }
        self.handlers = {}
        for module in RESOURCE_MODULES:
            module.register(self)
        from ..edge.proxy import Edge

        self.edge = Edge(self)

    # ---- state that survives a restart (the inventory keeps the ids) --------------------
    def _load_state(self):
        path = os.path.join(self.sandbox.config.state_dir, "cloudflare.json")
        if os.path.exists(path):
            with open(path) as fh:
                state = json.load(fh)
            if {"account_id", "zone_id", "api_token"} <= set(state):
                return state
        state = {"account_id": uuid.uuid4().hex, "zone_id": uuid.uuid4().hex, "api_token": _token40()}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh)
        return state

    def endpoint_info(self):
        return {
            "cloudflare_base_url": self.sandbox.url("cloudflare") + PREFIX,
            "cloudflare_api_token": self.api_token,
            "cloudflare_account_id": self.account_id,
            "cloudflare_zone": self.zone_name,
        }

    def summary(self):
        return {
            "dns records": len(self.records),
            "access apps": len(self.apps),
            "cloudflare edge": ", ".join("%s -> %s" % kv for kv in sorted(self.edge.urls().items())) or "(none)",
        }

    def admin(self, req, path):
        if path == "edge":
            return self.edge.urls()
        if path == "cloudflare/tokens" and req.method == "POST":
            # Mint a token with chosen permissions, for tests of the 403 path.
            token = _token40()
            self.tokens[token] = frozenset(req.json.get("permissions", []))
            return {"token": token}
        return None

    def edge_url(self, hostname):
        return self.edge.url_for(hostname)

    def stopping(self):
        self.edge.stop()

    # ---- envelope and errors -----------------------------------------------------------
    def error_response(self, err):
        code = err.extra.get("cf_code")
        if code is None:
            code = {429: CODE_RATE, 404: CODE_NO_ROUTE, 405: CODE_METHOD}.get(err.status, CODE_INTERNAL)
        body = {"success": False, "errors": [{"code": code, "message": err.message}], "messages": [], "result": None}
        if self.spec is not None:
            try:
                failure = self.spec.subset.raw["components"]["schemas"]["dns-records_api-response-common-failure"]
                self.spec.check(self.spec.subset, failure, body, "response")
            except specmod.SpecError as exc:
                self.violations.append(("error", err.status, exc.message))
        return Response(err.status, body, err.headers)

    def dispatch(self, req):
        if not req.path.startswith(PREFIX + "/"):
            raise cf_error(404, CODE_NO_ROUTE, "No route for that URI")
        if self.spec is None:
            raise cf_error(501, CODE_INTERNAL, "the sandbox cannot serve Cloudflare: %s" % self.spec_error)
        path = req.path[len(PREFIX):]
        try:
            op, params = self.spec.match(req.method, path)
        except LookupError as exc:
            if str(exc) == "405":
                raise cf_error(405, CODE_METHOD, "Method %s not allowed for this endpoint" % req.method)
            raise cf_error(404, CODE_NO_ROUTE, "No route for that URI")
        handler = self.handlers.get((op.method, op.template))
        if handler is None:
            raise cf_error(501, CODE_INTERNAL, "the sandbox does not serve %s %s" % (op.method, op.template))
        fn, area, perm = handler
        self.authorize(req, perm)
        self.validate_request(op, req, area)
        with self.lock:
            out = fn(req, params)
        status = op.status
        if isinstance(out, tuple):
            status, out = out
        body = {"success": True, "errors": [], "messages": []}
        if isinstance(out, Page):
            body["result"] = out.items
            body["result_info"] = {"page": out.page, "per_page": out.per_page, "count": len(out.items),
                                   "total_count": out.total}
        else:
            body["result"] = out
        schema = op.success.get(status)
        try:
            self.spec.check(op.doc, schema, body, "response")
        except specmod.SpecError as exc:
            self.violations.append((op.id, status, exc.message))
            print("sandbox cloudflare: response of %s violates the description: %s" % (op.id, exc.message),
                  file=sys.stderr)
            raise cf_error(500, CODE_INTERNAL, "sandbox response violates the API description: %s" % exc.message)
        return Response(status, body)

    def authorize(self, req, perm):
        if perm is None:
            return
        auth = req.header("Authorization")
        if not auth:
            raise cf_error(400, CODE_BAD_HEADERS, "Invalid request headers")
        token = req.bearer
        if not token or len(token) != 40 or not all(c.isalnum() or c in "-_" for c in token):
            raise cf_error(400, CODE_BAD_HEADERS, "Invalid request headers: Invalid format for Authorization header")
        granted = self.tokens.get(token)
        if granted is None:
            raise cf_error(401, CODE_INVALID_TOKEN, "Invalid API Token")
        needed = perm if isinstance(perm, tuple) else (perm,)
        for p in needed:
            base = p[: -len(" Read")] if p.endswith(" Read") else None
            if p in granted or (base and base + " Write" in granted):
                return
        raise cf_error(403, CODE_AUTH, "Authentication error")

    def validate_request(self, op, req, area):
        code = VALIDATION_CODE[area]
        for (where, name), param in op.params.items():
            if where != "query" or name not in req.query:
                continue
            schema = param.get("schema") or {}
            value = specmod.coerce_query(req.query[name], op.doc.deref(schema))
            try:
                self.spec.check(op.doc, schema, value, "request")
            except specmod.SpecError as exc:
                raise cf_error(400, code, "Invalid query parameter %s: %s" % (name, exc.message.split(": ", 1)[-1]))
        if req.method in ("POST", "PUT", "PATCH"):
            if req.body:
                try:
                    body = req.json
                except ValueError:
                    raise cf_error(400, code, "Request body is not valid JSON")
            else:
                body = None
            if op.body_schema is None:
                if body not in (None, {}):
                    raise cf_error(400, code, "This endpoint takes no request body")
                return
            if body is None:
                raise cf_error(400, code, "Request body is required")
            try:
                self.spec.check(op.doc, op.body_schema, body, "partial" if req.method == "PATCH" else "request")
            except specmod.SpecError as exc:
                raise cf_error(400, code, "Request body is invalid: %s" % exc.message)

    def handle(self, method, template, fn, area, perm):
        """Serve (method, template) of the description with fn(req, params); `area` picks the validation error
        code, `perm` the token permission(s) needed (None: no token)."""
        self.handlers[(method, template)] = (fn, area, perm)

    # ---- lookups the resource modules share ----------------------------------------------
    def check_account(self, params):
        if params["account_id"] != self.account_id:
            raise cf_error(403, CODE_AUTH, "Authentication error")

    def paging(self, req, default_per_page, items):
        try:
            page = int(float(req.query.get("page", 1)))
            per_page = int(float(req.query.get("per_page", default_per_page)))
        except ValueError:
            raise cf_error(400, 1001, "page and per_page must be numbers")
        if page < 1 or per_page < 1:
            raise cf_error(400, 1001, "page and per_page must be at least 1")
        start = (page - 1) * per_page
        return Page(items[start:start + per_page], page, per_page, len(items))


# ---- helpers ---------------------------------------------------------------------------------
def _token40():
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return "".join(secrets.choice(alphabet) for _ in range(40))


# Tests and roles read the published ranges from here.
__all__ = ["CloudflareApp", "CLOUDFLARE_IPV4", "CLOUDFLARE_IPV6", "load_spec"]
