"""Cloudflare API v4 under /client/v4: zones, DNS records, Access apps/policies/service tokens, Gateway lists, /ips.

Every request is routed by, and its body validated against, Cloudflare's OpenAPI description (spec.py); every
response is validated too, so the sandbox cannot drift from the shapes the SDK and the modules will meet in the
real API. Errors use Cloudflare's envelope: {"success": false, "errors": [{"code", "message"}], "messages": [],
"result": null}.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import sys
import threading
import time
import uuid

from ..web import ApiError, App, Response
from . import spec as specmod

PREFIX = "/client/v4"

# The ranges https://www.cloudflare.com/ips publishes (GET /ips answers them; origins allow only these).
CLOUDFLARE_IPV4 = [
    "173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22", "141.101.64.0/18", "108.162.192.0/18",
    "190.93.240.0/20", "188.114.96.0/20", "197.234.240.0/22", "198.41.128.0/17", "162.158.0.0/15", "104.16.0.0/13",
    "104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22",
]
CLOUDFLARE_IPV6 = [
    "2400:cb00::/32", "2606:4700::/32", "2803:f800::/32", "2405:b500::/32", "2405:8100::/32", "2a06:98c0::/29",
    "2c0f:f248::/32",
]

# Token permissions, named as the dashboard names them (the module's 403 message names the missing one).
PERM_ZONE_READ = "Zone Read"
PERM_DNS = "DNS"
PERM_ACCESS_APPS = "Access: Apps and Policies"
PERM_SERVICE_TOKENS = "Access: Service Tokens"
PERM_ZT = "Zero Trust"
ALL_PERMISSIONS = frozenset(
    [PERM_ZONE_READ] + ["%s %s" % (p, m) for p in (PERM_DNS, PERM_ACCESS_APPS, PERM_SERVICE_TOKENS, PERM_ZT)
                        for m in ("Read", "Write")]
)

# Error codes the real API answers for these situations.
CODE_BAD_HEADERS = 6003
CODE_INVALID_TOKEN = 1000
CODE_AUTH = 10000
CODE_NO_ROUTE = 7000
CODE_BAD_ID = 7003
CODE_METHOD = 10405
# The API answers 429 with code 971, below the minimum (1000) its description sets; 1015 is the edge's code.
CODE_RATE = 1015
CODE_INTERNAL = 10001
VALIDATION_CODE = {"dns": 9207, "access": 12130, "gateway": 2001, "zones": 1001, "ips": 1001}
DNS_NOT_FOUND = 81044
DNS_IDENTICAL = 81058
DNS_CNAME_CONFLICT = 81053
DNS_NOT_PROXIABLE = 9004
DNS_BAD_CONTENT = 9005
ACCESS_NOT_FOUND = 12131
ACCESS_CONFLICT = 12132
GATEWAY_NOT_FOUND = 2016
GATEWAY_BAD_ITEM = 2044


def now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def cf_error(status, code, message, headers=None):
    return ApiError(status, message, headers=headers, cf_code=code)


class Page:
    """A collection result with its page info."""

    def __init__(self, items, page=1, per_page=None, total=None):
        self.items = items
        self.page = page
        self.per_page = per_page if per_page is not None else max(len(items), 1)
        self.total = len(items) if total is None else total


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
        self.access_apps = sandbox.store.table("cloudflare.access_apps")
        self.policies = sandbox.store.table("cloudflare.access_policies")
        self.lists = sandbox.store.table("cloudflare.gateway_lists")
        self.service_tokens = sandbox.store.table("cloudflare.service_tokens")
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
        self._register()
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
            "access apps": len(self.access_apps),
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
        return self.edge.urls().get(hostname.lower().rstrip("."))

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

    def _register(self):
        z = "/zones/{zone_id}/dns_records"
        a = "/accounts/{account_id}"
        dns_r, dns_w = (PERM_DNS + " Read",), (PERM_DNS + " Write",)
        app_r, app_w = (PERM_ACCESS_APPS + " Read",), (PERM_ACCESS_APPS + " Write",)
        st_r, st_w = (PERM_SERVICE_TOKENS + " Read",), (PERM_SERVICE_TOKENS + " Write",)
        zt_r, zt_w = (PERM_ZT + " Read",), (PERM_ZT + " Write",)
        routes = [
            ("GET", "/ips", self.ips, "ips", None),
            ("GET", "/zones", self.list_zones, "zones", (PERM_ZONE_READ, PERM_DNS + " Read")),
            ("GET", z, self.list_records, "dns", dns_r),
            ("POST", z, self.create_record, "dns", dns_w),
            ("GET", z + "/{dns_record_id}", self.get_record, "dns", dns_r),
            ("PUT", z + "/{dns_record_id}", self.put_record, "dns", dns_w),
            ("PATCH", z + "/{dns_record_id}", self.patch_record, "dns", dns_w),
            ("DELETE", z + "/{dns_record_id}", self.delete_record, "dns", dns_w),
            ("GET", a + "/access/apps", self.list_apps, "access", app_r),
            ("POST", a + "/access/apps", self.create_app, "access", app_w),
            ("GET", a + "/access/apps/{app_id}", self.get_app, "access", app_r),
            ("PUT", a + "/access/apps/{app_id}", self.put_app, "access", app_w),
            ("DELETE", a + "/access/apps/{app_id}", self.delete_app, "access", app_w),
            ("GET", a + "/access/policies", self.list_policies, "access", app_r),
            ("POST", a + "/access/policies", self.create_policy, "access", app_w),
            ("GET", a + "/access/policies/{policy_id}", self.get_policy, "access", app_r),
            ("PUT", a + "/access/policies/{policy_id}", self.put_policy, "access", app_w),
            ("DELETE", a + "/access/policies/{policy_id}", self.delete_policy, "access", app_w),
            ("GET", a + "/access/service_tokens", self.list_tokens, "access", st_r),
            ("POST", a + "/access/service_tokens", self.create_token, "access", st_w),
            ("GET", a + "/access/service_tokens/{service_token_id}", self.get_token, "access", st_r),
            ("PUT", a + "/access/service_tokens/{service_token_id}", self.put_token, "access", st_w),
            ("DELETE", a + "/access/service_tokens/{service_token_id}", self.delete_token, "access", st_w),
            ("POST", a + "/access/service_tokens/{service_token_id}/rotate", self.rotate_token, "access", st_w),
            ("GET", a + "/gateway/lists", self.list_lists, "gateway", zt_r),
            ("POST", a + "/gateway/lists", self.create_list, "gateway", zt_w),
            ("GET", a + "/gateway/lists/{list_id}", self.get_list, "gateway", zt_r),
            ("PUT", a + "/gateway/lists/{list_id}", self.put_list, "gateway", zt_w),
            ("PATCH", a + "/gateway/lists/{list_id}", self.patch_list, "gateway", zt_w),
            ("DELETE", a + "/gateway/lists/{list_id}", self.delete_list, "gateway", zt_w),
            ("GET", a + "/gateway/lists/{list_id}/items", self.list_items, "gateway", zt_r),
        ]
        for method, template, fn, area, perm in routes:
            self.handlers[(method, template)] = (fn, area, perm)

    # ---- lookups -----------------------------------------------------------------------
    def _zone(self, params):
        zone = self.zones.get(params["zone_id"])
        if zone is None:
            raise cf_error(400, CODE_BAD_ID, "Could not route to /zones/%s/dns_records, perhaps your object identifier "
                           "is invalid?" % params["zone_id"])
        return zone

    def _account(self, params):
        if params["account_id"] != self.account_id:
            raise cf_error(403, CODE_AUTH, "Authentication error")

    def _paging(self, req, default_per_page, items):
        try:
            page = int(float(req.query.get("page", 1)))
            per_page = int(float(req.query.get("per_page", default_per_page)))
        except ValueError:
            raise cf_error(400, 1001, "page and per_page must be numbers")
        if page < 1 or per_page < 1:
            raise cf_error(400, 1001, "page and per_page must be at least 1")
        start = (page - 1) * per_page
        return Page(items[start:start + per_page], page, per_page, len(items))

    # ---- /ips and /zones ---------------------------------------------------------------
    def ips(self, req, params):
        digest = uuid.uuid5(uuid.NAMESPACE_URL, ",".join(CLOUDFLARE_IPV4 + CLOUDFLARE_IPV6)).hex
        return {"etag": digest, "ipv4_cidrs": list(CLOUDFLARE_IPV4), "ipv6_cidrs": list(CLOUDFLARE_IPV6)}

    def list_zones(self, req, params):
        items = list(self.zones.values())
        name = req.query.get("name")
        if name:
            items = [z for z in items if _name_filter(name, z["name"])]
        if req.query.get("account.id"):
            items = [z for z in items if z["account"]["id"] == req.query["account.id"]]
        if req.query.get("status"):
            items = [z for z in items if z["status"] == req.query["status"]]
        items.sort(key=lambda z: z["name"])
        return self._paging(req, 20, [_zone_view(z) for z in items])

    # ---- DNS records -------------------------------------------------------------------
    def list_records(self, req, params):
        zone = self._zone(params)
        items = [r for r in self.records.values() if r["zone_id"] == zone["id"]]
        q = req.query
        if q.get("name"):
            items = [r for r in items if r["name"] == _fqdn(q["name"], zone["name"])]
        if q.get("type"):
            items = [r for r in items if r["type"] == q["type"]]
        if q.get("content"):
            items = [r for r in items if r["content"] == q["content"]]
        if "proxied" in q:
            items = [r for r in items if r["proxied"] == (q["proxied"].lower() == "true")]
        items.sort(key=lambda r: (r["type"], r["name"], r["content"]))
        return self._paging(req, 100, [_record_view(r) for r in items])

    def get_record(self, req, params):
        return _record_view(self._record(params))

    def _record(self, params):
        self._zone(params)
        rec = self.records.get(params["dns_record_id"])
        if rec is None or rec["zone_id"] != params["zone_id"]:
            raise cf_error(404, DNS_NOT_FOUND, "Record does not exist.")
        return rec

    def create_record(self, req, params):
        zone = self._zone(params)
        rec = {"id": uuid.uuid4().hex, "zone_id": zone["id"], "created_on": now()}
        self._apply_record(rec, req.json, zone, replace=True)
        self.records[rec["id"]] = rec
        self.edge.sync()
        return _record_view(rec)

    def put_record(self, req, params):
        rec = self._record(params)
        zone = self.zones[rec["zone_id"]]
        self._apply_record(rec, req.json, zone, replace=True)
        self.edge.sync()
        return _record_view(rec)

    def patch_record(self, req, params):
        rec = self._record(params)
        zone = self.zones[rec["zone_id"]]
        self._apply_record(rec, req.json, zone, replace=False)
        self.edge.sync()
        return _record_view(rec)

    def delete_record(self, req, params):
        rec = self._record(params)
        del self.records[rec["id"]]
        self.edge.sync()
        return {"id": rec["id"]}

    def _apply_record(self, rec, body, zone, replace):
        new = {} if replace else dict((k, rec[k]) for k in ("type", "name", "content", "proxied", "ttl", "comment", "tags")
                                      if k in rec)
        new.update(body)
        rtype = new.get("type")
        if rtype not in ("A", "AAAA", "CNAME", "TXT"):
            raise cf_error(400, VALIDATION_CODE["dns"], "the sandbox serves A, AAAA, CNAME and TXT records, not %s" % rtype)
        name = _fqdn(new["name"], zone["name"])
        if name != zone["name"] and not name.endswith("." + zone["name"]):
            raise cf_error(400, 1004, "DNS Validation Error: %s is not in zone %s" % (name, zone["name"]))
        content = new.get("content", "")
        if rtype == "A":
            _check_ip(content, 4)
        elif rtype == "AAAA":
            _check_ip(content, 6)
        elif rtype == "CNAME":
            content = content.lower().rstrip(".")
            if content == name:
                raise cf_error(400, DNS_BAD_CONTENT, "Content for CNAME record is invalid: it must not match the name.")
        proxiable = rtype in ("A", "AAAA", "CNAME")
        proxied = bool(new.get("proxied", False))
        if proxied and not proxiable:
            raise cf_error(400, DNS_NOT_PROXIABLE, "This record type cannot be proxied.")
        for other in self.records.values():
            if other["id"] == rec.get("id") or other["zone_id"] != zone["id"] or other["name"] != name:
                continue
            if other["type"] == rtype and other["content"] == content:
                raise cf_error(400, DNS_IDENTICAL, "An identical record already exists.")
            if "CNAME" in (rtype, other["type"]) and {rtype, other["type"]} & {"A", "AAAA", "CNAME"} and \
                    rtype != "TXT" and other["type"] != "TXT":
                raise cf_error(400, DNS_CNAME_CONFLICT, "An A, AAAA, or CNAME record with that host already exists.")
        ttl = new.get("ttl", 1)
        rec.update({
            "type": rtype, "name": name, "content": content, "proxiable": proxiable, "proxied": proxied,
            # Proxied records always have automatic TTL.
            "ttl": 1 if proxied else int(ttl), "comment": new.get("comment"), "tags": list(new.get("tags") or []),
            "modified_on": now(),
        })
        if rec["comment"] is None:
            rec.pop("comment")

    # ---- Access applications -----------------------------------------------------------
    def list_apps(self, req, params):
        self._account(params)
        items = sorted(self.access_apps.values(), key=lambda a: a["created_at"])
        return self._paging(req, 25, [self._app_view(a) for a in items])

    def _app(self, params):
        self._account(params)
        app = self.access_apps.get(params["app_id"])
        if app is None:
            raise cf_error(404, ACCESS_NOT_FOUND, "access.api.error.not_found: application not found")
        return app

    def get_app(self, req, params):
        return self._app_view(self._app(params))

    def create_app(self, req, params):
        self._account(params)
        t = now()
        app = {"id": str(uuid.uuid4()), "aud": secrets.token_hex(32), "created_at": t}
        self._apply_app(app, req.json)
        self.access_apps[app["id"]] = app
        return 201, self._app_view(app)

    def put_app(self, req, params):
        app = self._app(params)
        self._apply_app(app, req.json)
        return self._app_view(app)

    def delete_app(self, req, params):
        app = self._app(params)
        del self.access_apps[app["id"]]
        return 202, {"id": app["id"]}

    def _apply_app(self, app, body):
        if body.get("type") != "self_hosted":
            raise cf_error(400, VALIDATION_CODE["access"],
                           "access.api.error.invalid_request: the sandbox serves self_hosted applications only")
        domains = [body["domain"]] + [d for d in body.get("self_hosted_domains", []) if d != body["domain"]]
        for domain in domains:
            host = domain.split("/", 1)[0].lower()
            if not any(host == z["name"] or host.endswith("." + z["name"]) for z in self.zones.values()):
                raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: domain %s does not "
                               "belong to a zone of this account" % domain)
            for other in self.access_apps.values():
                if other["id"] != app["id"] and domain.lower() in [d.lower() for d in other["self_hosted_domains"]]:
                    raise cf_error(409, ACCESS_CONFLICT, "access.api.error.conflict: an application for %s already "
                                   "exists" % domain)
        links = []
        for idx, item in enumerate(body.get("policies", [])):
            if isinstance(item, str):
                pid, precedence = item, idx + 1
            elif "name" in item or "decision" in item:
                raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: the sandbox serves "
                               "reusable policies only; reference them by id")
            else:
                pid, precedence = item["id"], item.get("precedence", idx + 1)
            if pid not in self.policies:
                raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: policy %s not found"
                               % pid)
            links.append({"id": pid, "precedence": precedence})
        if len({l["precedence"] for l in links}) != len(links):
            raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: policy precedences must "
                           "be unique")
        kept = dict((k, app[k]) for k in ("id", "aud", "created_at"))
        app.clear()
        app.update(kept)
        # PUT replaces: every field not sent falls back to its default, as in the real API.
        app.update({
            "type": "self_hosted", "domain": body["domain"], "self_hosted_domains": domains,
            "name": body.get("name") or body["domain"], "session_duration": body.get("session_duration", "24h"),
            "app_launcher_visible": body.get("app_launcher_visible", True),
            "auto_redirect_to_identity": body.get("auto_redirect_to_identity", False),
            "enable_binding_cookie": body.get("enable_binding_cookie", False),
            "http_only_cookie_attribute": body.get("http_only_cookie_attribute", True),
            "options_preflight_bypass": body.get("options_preflight_bypass", False),
            "service_auth_401_redirect": body.get("service_auth_401_redirect", False),
            "allowed_idps": list(body.get("allowed_idps", [])), "tags": list(body.get("tags", [])),
            "policies": sorted(links, key=lambda l: l["precedence"]), "updated_at": now(),
        })
        for key in ("cors_headers", "custom_deny_message", "custom_deny_url", "custom_non_identity_deny_url",
                    "logo_url", "same_site_cookie_attribute", "skip_interstitial", "path_cookie_attribute"):
            if key in body:
                app[key] = body[key]

    def _app_view(self, app):
        out = dict(app)
        out["policies"] = []
        for link in app["policies"]:
            pol = self.policies.get(link["id"])
            if pol is not None:
                view = self._policy_view(pol)
                view.pop("reusable", None)
                view.pop("app_count", None)
                view["precedence"] = link["precedence"]
                out["policies"].append(view)
        return out

    # ---- Access reusable policies ------------------------------------------------------
    def list_policies(self, req, params):
        self._account(params)
        return self._paging(req, 25, [self._policy_view(p) for p in sorted(self.policies.values(),
                                                                          key=lambda p: p["created_at"])])

    def _policy(self, params):
        self._account(params)
        pol = self.policies.get(params["policy_id"])
        if pol is None:
            raise cf_error(404, ACCESS_NOT_FOUND, "access.api.error.not_found: policy not found")
        return pol

    def get_policy(self, req, params):
        return self._policy_view(self._policy(params))

    def create_policy(self, req, params):
        self._account(params)
        pol = {"id": str(uuid.uuid4()), "created_at": now()}
        self._apply_policy(pol, req.json)
        self.policies[pol["id"]] = pol
        return 201, self._policy_view(pol)

    def put_policy(self, req, params):
        pol = self._policy(params)
        self._apply_policy(pol, req.json)
        return self._policy_view(pol)

    def delete_policy(self, req, params):
        pol = self._policy(params)
        users = [a["name"] for a in self.access_apps.values() if any(l["id"] == pol["id"] for l in a["policies"])]
        if users:
            raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: policy is used by "
                           "applications %s; remove it from them first" % ", ".join(sorted(users)))
        del self.policies[pol["id"]]
        return 202, {"id": pol["id"]}

    def _apply_policy(self, pol, body):
        if not body.get("include"):
            raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: include must hold at "
                           "least one rule")
        for field in ("include", "exclude", "require"):
            for rule in body.get(field, []):
                self._check_rule(rule)
        kept = dict((k, pol[k]) for k in ("id", "created_at"))
        pol.clear()
        pol.update(kept)
        pol.update({
            "name": body["name"], "decision": body["decision"], "include": body["include"],
            "exclude": body.get("exclude", []), "require": body.get("require", []),
            "session_duration": body.get("session_duration", "24h"),
            "approval_required": body.get("approval_required", False),
            "isolation_required": body.get("isolation_required", False),
            "purpose_justification_required": body.get("purpose_justification_required", False),
            "updated_at": now(),
        })
        for key in ("approval_groups", "purpose_justification_prompt"):
            if key in body:
                pol[key] = body[key]

    def _check_rule(self, rule):
        bad = VALIDATION_CODE["access"]
        if "ip" in rule:
            try:
                ipaddress.ip_network(rule["ip"]["ip"], strict=False)
            except ValueError:
                raise cf_error(400, bad, "access.api.error.invalid_request: %s is not an IP range" % rule["ip"]["ip"])
        if "ip_list" in rule:
            lst = self.lists.get(rule["ip_list"]["id"])
            if lst is None or lst["type"] != "IP":
                raise cf_error(400, bad, "access.api.error.invalid_request: IP list %s not found" % rule["ip_list"]["id"])
        if "service_token" in rule and rule["service_token"]["token_id"] not in self.service_tokens:
            raise cf_error(400, bad, "access.api.error.invalid_request: service token %s not found"
                           % rule["service_token"]["token_id"])
        if "group" in rule:
            raise cf_error(400, bad, "access.api.error.invalid_request: Access group %s not found" % rule["group"]["id"])

    def _policy_view(self, pol):
        out = dict(pol)
        out["reusable"] = True
        out["app_count"] = sum(1 for a in self.access_apps.values() if any(l["id"] == pol["id"] for l in a["policies"]))
        return out

    # ---- Access service tokens ---------------------------------------------------------
    def list_tokens(self, req, params):
        self._account(params)
        return self._paging(req, 25, [dict(t) for t in sorted(self.service_tokens.values(),
                                                              key=lambda t: t["created_at"])])

    def _token(self, params):
        self._account(params)
        tok = self.service_tokens.get(params["service_token_id"])
        if tok is None:
            raise cf_error(404, ACCESS_NOT_FOUND, "access.api.error.not_found: service token not found")
        return tok

    def get_token(self, req, params):
        return dict(self._token(params))

    def create_token(self, req, params):
        self._account(params)
        body = req.json
        t = now()
        tok = {"id": str(uuid.uuid4()), "name": body["name"], "client_id": "%s.access" % secrets.token_hex(16),
               "duration": body.get("duration", "8760h"), "created_at": t, "updated_at": t}
        self.service_tokens[tok["id"]] = tok
        self.secrets[tok["id"]] = secrets.token_hex(32)
        return 201, dict(tok, client_secret=self.secrets[tok["id"]])

    def put_token(self, req, params):
        tok = self._token(params)
        for key in ("name", "duration"):
            if key in req.json:
                tok[key] = req.json[key]
        tok["updated_at"] = now()
        return dict(tok)

    def rotate_token(self, req, params):
        tok = self._token(params)
        self.secrets[tok["id"]] = secrets.token_hex(32)
        tok["updated_at"] = now()
        return dict(tok, client_secret=self.secrets[tok["id"]])

    def delete_token(self, req, params):
        tok = self._token(params)
        del self.service_tokens[tok["id"]]
        self.secrets.pop(tok["id"], None)
        return dict(tok)

    def token_matches(self, token_id, client_id, client_secret):
        tok = self.service_tokens.get(token_id)
        return bool(tok and client_id and client_secret and tok["client_id"] == client_id
                    and secrets.compare_digest(self.secrets.get(token_id, ""), client_secret))

    # ---- Gateway (Zero Trust) lists ----------------------------------------------------
    def list_lists(self, req, params):
        self._account(params)
        items = sorted(self.lists.values(), key=lambda l: l["created_at"])
        if req.query.get("type"):
            items = [l for l in items if l["type"] == req.query["type"]]
        return Page([_list_view(l) for l in items])

    def _list(self, params):
        self._account(params)
        lst = self.lists.get(params["list_id"])
        if lst is None:
            raise cf_error(404, GATEWAY_NOT_FOUND, "list not found")
        return lst

    def get_list(self, req, params):
        return _list_view(self._list(params))

    def create_list(self, req, params):
        self._account(params)
        body = req.json
        if any(l["name"] == body["name"] for l in self.lists.values()):
            raise cf_error(400, VALIDATION_CODE["gateway"], "a list named %s already exists" % body["name"])
        t = now()
        lst = {"id": str(uuid.uuid4()), "name": body["name"], "type": body["type"],
               "description": body.get("description", ""), "created_at": t, "updated_at": t, "items": []}
        self._append_items(lst, body.get("items", []))
        self.lists[lst["id"]] = lst
        out = _list_view(lst)
        out.pop("count")
        out["items"] = [dict(i) for i in lst["items"]]
        return out

    def put_list(self, req, params):
        lst = self._list(params)
        lst["name"] = req.json["name"]
        lst["description"] = req.json.get("description", "")
        lst["updated_at"] = now()
        return _list_view(lst)

    def patch_list(self, req, params):
        lst = self._list(params)
        body = req.json
        remove = set(body.get("remove", []))
        missing = remove - {i["value"] for i in lst["items"]}
        if missing:
            raise cf_error(400, GATEWAY_BAD_ITEM, "cannot remove %s: not in the list" % ", ".join(sorted(missing)))
        lst["items"] = [i for i in lst["items"] if i["value"] not in remove]
        self._append_items(lst, body.get("append", []))
        lst["updated_at"] = now()
        return _list_view(lst)

    def delete_list(self, req, params):
        lst = self._list(params)
        users = [p["name"] for p in self.policies.values()
                 if any(r.get("ip_list", {}).get("id") == lst["id"] for f in ("include", "exclude", "require")
                        for r in p[f])]
        if users:
            raise cf_error(400, VALIDATION_CODE["gateway"], "list is used by Access policies %s" % ", ".join(users))
        del self.lists[lst["id"]]
        return {}

    def list_items(self, req, params):
        lst = self._list(params)
        # The description nests the items in one more array: result is [[item, ...]].
        page = self._paging(req, 100, [dict(i) for i in lst["items"]])
        return Page([page.items] if page.items else [], page.page, page.per_page, page.total)

    def _append_items(self, lst, items):
        have = {i["value"] for i in lst["items"]}
        t = now()
        for item in items:
            value = item["value"]
            if lst["type"] == "IP":
                try:
                    ipaddress.ip_network(value, strict=True)
                except ValueError:
                    raise cf_error(400, GATEWAY_BAD_ITEM, "invalid IP item %r: use an address or a CIDR with no host "
                                   "bits set" % value)
            if value in have:
                raise cf_error(400, GATEWAY_BAD_ITEM, "duplicate item %s" % value)
            have.add(value)
            entry = {"value": value, "created_at": t}
            if "description" in item:
                entry["description"] = item["description"]
            lst["items"].append(entry)


# ---- helpers ---------------------------------------------------------------------------------
def _token40():
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def _fqdn(name, zone):
    name = name.lower().rstrip(".")
    if name in ("@", ""):
        return zone
    if name == zone or name.endswith("." + zone):
        return name
    return "%s.%s" % (name, zone)


def _name_filter(expr, value):
    op, _, arg = expr.partition(":") if ":" in expr else ("equal", "", expr)
    value, arg_l = value.lower(), arg.lower()
    return {
        "equal": value == arg_l, "not_equal": value != arg_l, "starts_with": value.startswith(arg_l),
        "ends_with": value.endswith(arg_l), "contains": arg_l in value,
    }.get(op, value == expr.lower())


def _check_ip(content, version):
    try:
        ok = ipaddress.ip_address(content).version == version
    except ValueError:
        ok = False
    if not ok:
        raise cf_error(400, DNS_BAD_CONTENT, "Content for %s record must be a valid IPv%d address."
                       % ("A" if version == 4 else "AAAA", version))


def _record_view(rec):
    out = dict((k, v) for k, v in rec.items() if k not in ("zone_id",))
    if not rec["proxiable"]:
        out.pop("proxied")  # the description has no `proxied` on TXT records
    out["meta"] = {"auto_added": False}
    return out


def _zone_view(zone):
    return dict((k, v) for k, v in zone.items() if k not in ("status", "paused", "type", "permissions", "plan"))


def _list_view(lst):
    out = dict((k, v) for k, v in lst.items() if k != "items")
    out["count"] = len(lst["items"])
    return out
