"""Cloudflare Access: self-hosted applications, reusable policies and service tokens.

The edge (sandbox/edge/proxy.py) enforces what is stored here; `Access.token_matches` is how it checks a
service token's credentials (the client secret is never in a GET).
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid

from .common import PERM_ACCESS_APPS, PERM_SERVICE_TOKENS, VALIDATION_CODE, cf_error, now

ACCESS_NOT_FOUND = 12131
ACCESS_CONFLICT = 12132
# Group rules that name their identity provider (connection_id), and the provider type each needs.
IDP_GROUP_RULES = {"okta": "okta", "azureAD": "azureAD", "gsuite": "google-apps", "github-organization": "github"}


class Access:
    def __init__(self, app):
        self.app = app

    def list_apps(self, req, params):
        self.app.check_account(params)
        items = sorted(self.app.apps.values(), key=lambda a: a["created_at"])
        return self.app.paging(req, 25, [self._app_view(a) for a in items])

    def _app(self, params):
        self.app.check_account(params)
        app = self.app.apps.get(params["app_id"])
        if app is None:
            raise cf_error(404, ACCESS_NOT_FOUND, "access.api.error.not_found: application not found")
        return app

    def get_app(self, req, params):
        return self._app_view(self._app(params))

    def create_app(self, req, params):
        self.app.check_account(params)
        t = now()
        app = {"id": str(uuid.uuid4()), "aud": secrets.token_hex(32), "created_at": t}
        self._apply_app(app, req.json)
        self.app.apps[app["id"]] = app
        return 201, self._app_view(app)

    def put_app(self, req, params):
        app = self._app(params)
        self._apply_app(app, req.json)
        return self._app_view(app)

    def delete_app(self, req, params):
        app = self._app(params)
        del self.app.apps[app["id"]]
        return 202, {"id": app["id"]}

    def _apply_app(self, app, body):
        if body.get("type") != "self_hosted":
            raise cf_error(400, VALIDATION_CODE["access"],
                           "access.api.error.invalid_request: the sandbox serves self_hosted applications only")
        domains = [body["domain"]] + [d for d in body.get("self_hosted_domains", []) if d != body["domain"]]
        for domain in domains:
            host = domain.split("/", 1)[0].lower()
            if not any(host == z["name"] or host.endswith("." + z["name"]) for z in self.app.zones.values()):
                raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: domain %s does not "
                               "belong to a zone of this account" % domain)
            for other in self.app.apps.values():
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
            if pid not in self.app.policies:
                raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: policy %s not found"
                               % pid)
            links.append({"id": pid, "precedence": precedence})
        for idp_id in body.get("allowed_idps", []):
            if idp_id not in self.app.idps:
                raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: allowed_idps: "
                               "identity provider %s not found" % idp_id)
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
            pol = self.app.policies.get(link["id"])
            if pol is not None:
                view = self._policy_view(pol)
                view.pop("reusable", None)
                view.pop("app_count", None)
                view["precedence"] = link["precedence"]
                out["policies"].append(view)
        return out

    # ---- Access reusable policies ------------------------------------------------------
    def list_policies(self, req, params):
        self.app.check_account(params)
        policies = sorted(self.app.policies.values(), key=lambda p: p["created_at"])
        return self.app.paging(req, 25, [self._policy_view(p) for p in policies])

    def _policy(self, params):
        self.app.check_account(params)
        pol = self.app.policies.get(params["policy_id"])
        if pol is None:
            raise cf_error(404, ACCESS_NOT_FOUND, "access.api.error.not_found: policy not found")
        return pol

    def get_policy(self, req, params):
        return self._policy_view(self._policy(params))

    def create_policy(self, req, params):
        self.app.check_account(params)
        pol = {"id": str(uuid.uuid4()), "created_at": now()}
        self._apply_policy(pol, req.json)
        self.app.policies[pol["id"]] = pol
        return 201, self._policy_view(pol)

    def put_policy(self, req, params):
        pol = self._policy(params)
        self._apply_policy(pol, req.json)
        return self._policy_view(pol)

    def delete_policy(self, req, params):
        pol = self._policy(params)
        users = [a["name"] for a in self.app.apps.values() if any(l["id"] == pol["id"] for l in a["policies"])]
        if users:
            raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: policy is used by "
                           "applications %s; remove it from them first" % ", ".join(sorted(users)))
        del self.app.policies[pol["id"]]
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
            lst = self.app.lists.get(rule["ip_list"]["id"])
            if lst is None or lst["type"] != "IP":
                raise cf_error(400, bad, "access.api.error.invalid_request: IP list %s not found" % rule["ip_list"]["id"])
        if "service_token" in rule and rule["service_token"]["token_id"] not in self.app.service_tokens:
            raise cf_error(400, bad, "access.api.error.invalid_request: service token %s not found"
                           % rule["service_token"]["token_id"])
        if "group" in rule:
            raise cf_error(400, bad, "access.api.error.invalid_request: Access group %s not found" % rule["group"]["id"])
        for key, kind in IDP_GROUP_RULES.items():
            if key in rule:
                idp = self.app.idps.get(rule[key]["connection_id"])
                if idp is None or idp["type"] != kind:
                    raise cf_error(400, bad, "access.api.error.invalid_request: %s rule: identity provider %s is not "
                                   "a %s identity provider of this account" % (key, rule[key]["connection_id"], kind))
        if "saml" in rule and not any(i["type"] == "saml" for i in self.app.idps.values()):
            raise cf_error(400, bad, "access.api.error.invalid_request: saml rule: the account has no SAML identity "
                           "provider")

    def _policy_view(self, pol):
        out = dict(pol)
        out["reusable"] = True
        out["app_count"] = sum(1 for a in self.app.apps.values() if any(l["id"] == pol["id"] for l in a["policies"]))
        return out

    # ---- Access service tokens ---------------------------------------------------------
    def list_tokens(self, req, params):
        self.app.check_account(params)
        tokens = sorted(self.app.service_tokens.values(), key=lambda t: t["created_at"])
        return self.app.paging(req, 25, [dict(t) for t in tokens])

    def _token(self, params):
        self.app.check_account(params)
        tok = self.app.service_tokens.get(params["service_token_id"])
        if tok is None:
            raise cf_error(404, ACCESS_NOT_FOUND, "access.api.error.not_found: service token not found")
        return tok

    def get_token(self, req, params):
        return dict(self._token(params))

    def create_token(self, req, params):
        self.app.check_account(params)
        body = req.json
        t = now()
        tok = {"id": str(uuid.uuid4()), "name": body["name"], "client_id": "%s.access" % secrets.token_hex(16),
               "duration": body.get("duration", "8760h"), "created_at": t, "updated_at": t}
        self.app.service_tokens[tok["id"]] = tok
        self.app.secrets[tok["id"]] = secrets.token_hex(32)
        return 201, dict(tok, client_secret=self.app.secrets[tok["id"]])

    def put_token(self, req, params):
        tok = self._token(params)
        for key in ("name", "duration"):
            if key in req.json:
                tok[key] = req.json[key]
        tok["updated_at"] = now()
        return dict(tok)

    def rotate_token(self, req, params):
        tok = self._token(params)
        self.app.secrets[tok["id"]] = secrets.token_hex(32)
        tok["updated_at"] = now()
        return dict(tok, client_secret=self.app.secrets[tok["id"]])

    def delete_token(self, req, params):
        tok = self._token(params)
        del self.app.service_tokens[tok["id"]]
        self.app.secrets.pop(tok["id"], None)
        return dict(tok)

    def token_matches(self, token_id, client_id, client_secret):
        tok = self.app.service_tokens.get(token_id)
        return bool(tok and client_id and client_secret and tok["client_id"] == client_id
                    and secrets.compare_digest(self.app.secrets.get(token_id, ""), client_secret))


def register(app):
    access = Access(app)
    app.access = access
    a = "/accounts/{account_id}/access"
    app_r, app_w = (PERM_ACCESS_APPS + " Read",), (PERM_ACCESS_APPS + " Write",)
    st_r, st_w = (PERM_SERVICE_TOKENS + " Read",), (PERM_SERVICE_TOKENS + " Write",)
    app.handle("GET", a + "/apps", access.list_apps, "access", app_r)
    app.handle("POST", a + "/apps", access.create_app, "access", app_w)
    app.handle("GET", a + "/apps/{app_id}", access.get_app, "access", app_r)
    app.handle("PUT", a + "/apps/{app_id}", access.put_app, "access", app_w)
    app.handle("DELETE", a + "/apps/{app_id}", access.delete_app, "access", app_w)
    app.handle("GET", a + "/policies", access.list_policies, "access", app_r)
    app.handle("POST", a + "/policies", access.create_policy, "access", app_w)
    app.handle("GET", a + "/policies/{policy_id}", access.get_policy, "access", app_r)
    app.handle("PUT", a + "/policies/{policy_id}", access.put_policy, "access", app_w)
    app.handle("DELETE", a + "/policies/{policy_id}", access.delete_policy, "access", app_w)
    app.handle("GET", a + "/service_tokens", access.list_tokens, "access", st_r)
    app.handle("POST", a + "/service_tokens", access.create_token, "access", st_w)
    app.handle("GET", a + "/service_tokens/{service_token_id}", access.get_token, "access", st_r)
    app.handle("PUT", a + "/service_tokens/{service_token_id}", access.put_token, "access", st_w)
    app.handle("DELETE", a + "/service_tokens/{service_token_id}", access.delete_token, "access", st_w)
    app.handle("POST", a + "/service_tokens/{service_token_id}/rotate", access.rotate_token, "access", st_w)
