"""iam v1 service accounts, and the IAM policies (with etags) that crm.py and service accounts share."""

from __future__ import annotations

import base64
import itertools
import re

from ..web import ApiError

ACCOUNT_RE = re.compile(r"^[a-z]([-a-z0-9]{4,28}[a-z0-9])$")
_versions = itertools.count(1)


def _etag():
    return base64.b64encode(("etag-%d" % next(_versions)).encode()).decode()


def get_policy(sandbox, resource, initial=None):
    policies = sandbox.store.table("iam.policies")
    if resource not in policies:
        policies[resource] = {"version": 1, "bindings": initial or [], "etag": _etag()}
    return policies[resource]


def set_policy(sandbox, resource, policy):
    """Read-modify-write guard: a stale etag is refused as the real APIs refuse it."""
    current = get_policy(sandbox, resource)
    if policy.get("etag") and policy["etag"] != current["etag"]:
        raise ApiError(409, "There were concurrent policy changes. Please retry the whole read-modify-write with "
                            "exponential backoff.", reason="aborted", status="ABORTED")
    for binding in policy.get("bindings", []):
        if not str(binding.get("role", "")).startswith(("roles/", "projects/", "organizations/")):
            raise ApiError(400, "Role %s is not supported for this resource." % binding.get("role"), reason="badRequest")
        for member in binding.get("members", []):
            if not re.match(r"^(user|serviceAccount|group|domain|principal|principalSet):.+", member) and \
                    member not in ("allUsers", "allAuthenticatedUsers"):
                raise ApiError(400, "Invalid member %s: use type:value, for example serviceAccount:x@p.iam.gserviceaccount.com."
                               % member, reason="badRequest")
    new = {"version": policy.get("version", 1), "bindings": [b for b in policy.get("bindings", []) if b.get("members")],
           "etag": _etag()}
    sandbox.store.table("iam.policies")[resource] = new
    return new


def register(app):
    accounts = app.sandbox.store.table("iam.serviceAccounts")

    def key(p):
        email = p["serviceAccountsId"]
        if "@" not in email:
            raise ApiError(400, "Invalid service account email %s." % email, reason="badRequest")
        return "projects/%s/serviceAccounts/%s" % (app.project, email)

    def create(req, p):
        body = req.json
        account_id = body.get("accountId") or ""
        if not ACCOUNT_RE.match(account_id):
            raise ApiError(400, "Invalid accountId %r: 6-30 characters, lowercase letters, digits and hyphens, starting "
                                "with a letter." % account_id, reason="badRequest")
        email = "%s@%s.iam.gserviceaccount.com" % (account_id, app.project)
        k = "projects/%s/serviceAccounts/%s" % (app.project, email)
        if k in accounts:
            raise ApiError(409, "Service account %s already exists within project projects/%s." % (account_id, app.project),
                           reason="alreadyExists")
        sa = body.get("serviceAccount") or {}
        uid = app.sandbox.store.next_id()[:21]
        accounts[k] = {"name": k, "projectId": app.project, "uniqueId": uid, "email": email,
                       "displayName": sa.get("displayName", ""), "description": sa.get("description", ""),
                       "etag": _etag(), "oauth2ClientId": uid}
        return accounts[k]

    def get(req, p):
        k = key(p)
        if k not in accounts:
            raise ApiError(404, "Unknown service account", reason="notFound")
        return accounts[k]

    def list_(req, p):
        rows = [v for _k, v in sorted(accounts.items())]
        return {"accounts": rows} if rows else {}

    def patch(req, p):
        row = get(req, p)
        mask = [m.strip() for m in (req.json.get("updateMask") or "").split(",") if m.strip()]
        sa = req.json.get("serviceAccount") or {}
        for field in mask:
            if field not in ("displayName", "description"):
                raise ApiError(400, "Invalid update mask field %s." % field, reason="badRequest")
            row[field] = sa.get(field, "")
        row["etag"] = _etag()
        return row

    def delete(req, p):
        row = get(req, p)
        accounts.pop(row["name"])
        app.sandbox.store.table("iam.policies").pop(row["name"], None)
        return {}

    def get_iam(req, p):
        row = get(req, p)
        return get_policy(app.sandbox, row["name"])

    def set_iam(req, p):
        row = get(req, p)
        return set_policy(app.sandbox, row["name"], req.json.get("policy") or {})

    base = "iam.projects.serviceAccounts."
    app.handle(base + "create", create)
    app.handle(base + "get", get)
    app.handle(base + "list", list_)
    app.handle(base + "patch", patch)
    app.handle(base + "delete", delete)
    app.handle(base + "getIamPolicy", get_iam)
    app.handle(base + "setIamPolicy", set_iam)
