"""Cloudflare Access identity providers of the account: OIDC, Okta, Azure AD and SAML.

The paths and shapes come from the full description (the subset lacks them). Its request schema is an anyOf of every
provider type whose variants all fit any body, so the config is checked again against the variant of the body's
`type`: an Okta provider with an Azure `directory_id` is refused. The client secret is write-only: kept aside
(`app.idp_secrets`), never in a response; a PUT without it keeps the stored one, as the dashboard's edit does.

The edge's sandbox login (sandbox/edge/access_jwt.py) signs in users of these providers.
"""

from __future__ import annotations

import uuid

from .common import PERM_ACCESS_IDP, VALIDATION_CODE, Page, cf_error, now
from .spec import SpecError

IDP_NOT_FOUND = 12131
# What each served type needs in its config (the dashboard's required fields); the secret only at creation.
REQUIRED = {
    "oidc": ("client_id", "auth_url", "token_url", "certs_url"),
    "okta": ("client_id", "okta_account"),
    "azureAD": ("client_id", "directory_id"),
    "saml": ("issuer_url", "sso_target_url"),
}
WITH_SECRET = frozenset(["oidc", "okta", "azureAD"])
PATH = "/accounts/{account_id}/access/identity_providers"


class IdentityProviders:
    def __init__(self, app):
        self.app = app

    def list_idps(self, req, params):
        self.app.check_account(params)
        items = sorted(self.app.idps.values(), key=lambda i: i["_created"])
        return Page([_view(i) for i in items])

    def _idp(self, params):
        self.app.check_account(params)
        idp = self.app.idps.get(params["identity_provider_id"])
        if idp is None:
            raise cf_error(404, IDP_NOT_FOUND, "access.api.error.not_found: identity provider not found")
        return idp

    def get_idp(self, req, params):
        return _view(self._idp(params))

    def create_idp(self, req, params):
        self.app.check_account(params)
        idp = {"id": str(uuid.uuid4()), "_created": now()}
        self._apply(idp, req.json, creating=True)
        self.app.idps[idp["id"]] = idp
        return 201, _view(idp)

    def put_idp(self, req, params):
        idp = self._idp(params)
        self._apply(idp, req.json, creating=False)
        return _view(idp)

    def delete_idp(self, req, params):
        idp = self._idp(params)
        users = sorted(p["name"] for p in self.app.policies.values() if any(
            idp["id"] == _connection(r) for f in ("include", "exclude", "require") for r in p.get(f, [])))
        users += sorted("application " + a["name"] for a in self.app.apps.values()
                        if idp["id"] in a.get("allowed_idps", []))
        if users:
            raise cf_error(400, VALIDATION_CODE["access"], "access.api.error.invalid_request: identity provider is "
                           "used by %s; remove it from them first" % ", ".join(users))
        del self.app.idps[idp["id"]]
        self.app.idp_secrets.pop(idp["id"], None)
        return 202, {"id": idp["id"]}

    def _apply(self, idp, body, creating):
        bad = VALIDATION_CODE["access"]
        kind = body["type"]
        if kind not in REQUIRED:
            raise cf_error(400, bad, "access.api.error.invalid_request: the sandbox serves identity providers of type "
                           "%s only" % ", ".join(sorted(REQUIRED)))
        if not creating and kind != idp["type"]:
            raise cf_error(400, bad, "access.api.error.invalid_request: the type of identity provider %s cannot "
                           "change (%s to %s); create a new one" % (idp["name"], idp["type"], kind))
        try:
            self.app.spec.check(self.doc, {"$ref": "#/components/schemas/access_%s" % kind}, body, "request")
        except SpecError as exc:
            raise cf_error(400, bad, "Request body is invalid for type %s: %s" % (kind, exc.message))
        config = dict(body.get("config") or {})
        missing = [k for k in REQUIRED[kind] if not config.get(k)]
        secret = config.pop("client_secret", None)
        if kind in WITH_SECRET and not secret and (creating or idp["id"] not in self.app.idp_secrets):
            missing.append("client_secret")
        if missing:
            raise cf_error(400, bad, "access.api.error.invalid_request: config.%s is required for type %s"
                           % (", config.".join(missing), kind))
        scim = body.get("scim_config") or {}
        if scim.get("enabled"):
            raise cf_error(400, bad, "access.api.error.invalid_request: the sandbox does not serve SCIM provisioning")
        idp.update({"name": body["name"], "type": kind, "config": config,
                    "scim_config": {"enabled": False, "user_deprovision": bool(scim.get("user_deprovision")),
                                    "seat_deprovision": bool(scim.get("seat_deprovision")),
                                    "group_member_deprovision": bool(scim.get("group_member_deprovision"))}})
        if secret:
            self.app.idp_secrets[idp["id"]] = secret

    @property
    def doc(self):
        # The full description these operations come from.
        return self.app.spec.match("GET", PATH.replace("{account_id}", self.app.account_id))[0].doc


def _connection(rule):
    for key in ("okta", "azureAD", "gsuite", "github-organization"):
        if key in (rule or {}):
            return rule[key].get("connection_id")
    return None


def _view(idp):
    return dict((k, v) for k, v in idp.items() if not k.startswith("_"))


def register(app):
    idps = IdentityProviders(app)
    app.identity_providers = idps
    read, write = (PERM_ACCESS_IDP + " Read",), (PERM_ACCESS_IDP + " Write",)
    one = PATH + "/{identity_provider_id}"
    app.handle("GET", PATH, idps.list_idps, "access", read)
    app.handle("POST", PATH, idps.create_idp, "access", write)
    app.handle("GET", one, idps.get_idp, "access", read)
    app.handle("PUT", one, idps.put_idp, "access", write)
    app.handle("DELETE", one, idps.delete_idp, "access", write)
