"""secretmanager v1: secrets, versions (add/access/get/list/disable/enable/destroy). Payloads never reach the log."""

from __future__ import annotations

import base64
import binascii
import uuid

from ..web import ApiError
from .app import now_rfc3339


def _crc32c(data):
    """CRC32C (Castagnoli), as Secret Manager checks it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


SECRET_ACCESSOR = ("roles/secretmanager.secretAccessor", "roles/owner", "roles/editor")


def may_read_secret(sandbox, project, secret_id, email):
    """As IAM decides it: a binding of an accessor role on the project or the secret, for other sandbox families."""
    if not email:
        return False
    member = "serviceAccount:%s" % email
    policies = sandbox.store.table("iam.policies")
    for key in ("projects/%s" % project, "projects/%s/secrets/%s" % (project, secret_id)):
        for binding in (policies.get(key) or {}).get("bindings", []):
            if binding.get("role") in SECRET_ACCESSOR and member in binding.get("members", []):
                return True
    return False


def latest_payload(sandbox, project, secret_id):
    """The newest ENABLED version's payload (bytes), or None: for other sandbox families."""
    app = sandbox.gcp
    prefix = "projects/%s/secrets/%s/versions/" % (app.project_number, secret_id)
    versions = sandbox.store.table("secretmanager.versions")
    enabled = [(int(k.rsplit("/", 1)[-1]), v) for k, v in versions.items() if k.startswith(prefix) and v["state"] == "ENABLED"]
    if not enabled:
        return None
    return base64.b64decode(max(enabled, key=lambda kv: kv[0])[1]["_payload"])


def register(app):
    secrets = app.sandbox.store.table("secretmanager.secrets")
    versions = app.sandbox.store.table("secretmanager.versions")
    number = app.project_number

    def secret_name(p):
        return "projects/%s/secrets/%s" % (number, p["secretsId"])

    def get_secret(p):
        name = secret_name(p)
        if name not in secrets:
            raise ApiError(404, "Secret [%s] not found or has no versions." % name, reason="notFound")
        return secrets[name]

    def create(req, p):
        secret_id = req.query.get("secretId", "")
        if not secret_id or len(secret_id) > 255 or not all(c.isalnum() or c in "-_" for c in secret_id):
            raise ApiError(400, "The secret ID must be 1-255 characters of letters, digits, '-' and '_'.",
                           reason="badRequest")
        name = "projects/%s/secrets/%s" % (number, secret_id)
        if name in secrets:
            raise ApiError(409, "Secret [%s] already exists." % name, reason="alreadyExists")
        body = req.json
        if not body.get("replication"):
            raise ApiError(400, "Secret.replication is required.", reason="badRequest")
        row = dict(body, name=name, createTime=now_rfc3339(), etag='"%s"' % uuid.uuid4().hex[:13])
        secrets[name] = row
        return row

    def get(req, p):
        return get_secret(p)

    def list_(req, p):
        prefix = "projects/%s/secrets/" % number
        rows = [v for k, v in sorted(secrets.items()) if k.startswith(prefix)]
        return {"secrets": rows, "totalSize": len(rows)} if rows else {}

    def patch(req, p):
        row = get_secret(p)
        mask = [m.strip() for m in (req.query.get("updateMask") or "").split(",") if m.strip()]
        if not mask:
            raise ApiError(400, "update_mask is required.", reason="badRequest")
        for field in mask:
            if field not in ("labels", "annotations", "topics", "rotation", "expireTime", "ttl", "versionAliases"):
                raise ApiError(400, "Invalid update_mask field: %s" % field, reason="badRequest")
            if field in req.json:
                row[field] = req.json[field]
            else:
                row.pop(field, None)
        row["etag"] = '"%s"' % uuid.uuid4().hex[:13]
        return row

    def delete(req, p):
        row = get_secret(p)
        if req.query.get("etag") and req.query["etag"] != row["etag"]:
            raise ApiError(409, "The etag provided does not match the current etag.", reason="aborted", status="ABORTED")
        secrets.pop(row["name"])
        for key in [k for k in versions if k.startswith(row["name"] + "/versions/")]:
            versions.pop(key)
        return {}

    def add_version(req, p):
        row = get_secret(p)
        payload = (req.json.get("payload") or {})
        try:
            data = base64.b64decode(payload.get("data") or "", validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "Invalid payload: data must be base64.", reason="badRequest")
        if len(data) > 65536:
            raise ApiError(400, "Secret payload exceeds 64 KiB.", reason="badRequest")
        if payload.get("dataCrc32c") is not None and int(payload["dataCrc32c"]) != _crc32c(data):
            raise ApiError(400, "Checksum mismatch: the payload's dataCrc32c does not match its data.", reason="badRequest")
        existing = [int(k.rsplit("/", 1)[-1]) for k in versions if k.startswith(row["name"] + "/versions/")]
        version = "%s/versions/%d" % (row["name"], max(existing or [0]) + 1)
        versions[version] = {"name": version, "createTime": now_rfc3339(), "state": "ENABLED",
                             "etag": '"%s"' % uuid.uuid4().hex[:13], "replicationStatus": {"automatic": {}},
                             "clientSpecifiedPayloadChecksum": payload.get("dataCrc32c") is not None,
                             "_payload": base64.b64encode(data).decode()}
        return public(versions[version])

    def public(v):
        return {k: val for k, val in v.items() if not k.startswith("_")}

    def resolve_version(p):
        secret = get_secret(p)
        vid = p["versionsId"]
        if vid == "latest":
            live = [int(k.rsplit("/", 1)[-1]) for k, v in versions.items()
                    if k.startswith(secret["name"] + "/versions/") and v["state"] != "DESTROYED"]
            if not live:
                raise ApiError(404, "Secret Version [%s/versions/latest] not found." % secret["name"], reason="notFound")
            vid = str(max(live))
        name = "%s/versions/%s" % (secret["name"], vid)
        if name not in versions:
            raise ApiError(404, "Secret Version [%s] not found." % name, reason="notFound")
        return versions[name]

    def access(req, p):
        v = resolve_version(p)
        if v["state"] != "ENABLED":
            raise ApiError(400, "Secret Version [%s] is in %s state." % (v["name"], v["state"]),
                           reason="failedPrecondition", status="FAILED_PRECONDITION")
        data = base64.b64decode(v["_payload"])
        return {"name": v["name"], "payload": {"data": v["_payload"], "dataCrc32c": str(_crc32c(data))}}

    def version_get(req, p):
        return public(resolve_version(p))

    def version_list(req, p):
        secret = get_secret(p)
        rows = [public(v) for k, v in sorted(versions.items(), key=lambda kv: -int(kv[0].rsplit("/", 1)[-1]))
                if k.startswith(secret["name"] + "/versions/")]
        return {"versions": rows, "totalSize": len(rows)} if rows else {}

    def set_state(state):
        def handler(req, p):
            v = resolve_version(p)
            if v["state"] == "DESTROYED":
                raise ApiError(400, "Secret Version [%s] is destroyed." % v["name"], reason="failedPrecondition")
            v["state"] = state
            if state == "DESTROYED":
                v.pop("_payload", None)
                v["destroyTime"] = now_rfc3339()
            return public(v)
        return handler

    base = "secretmanager.projects.secrets."
    app.handle(base + "create", create)
    app.handle(base + "get", get)
    app.handle(base + "list", list_)
    app.handle(base + "patch", patch)
    app.handle(base + "delete", delete)
    app.handle(base + "addVersion", add_version)
    app.handle(base + "versions.access", access)
    app.handle(base + "versions.get", version_get)
    app.handle(base + "versions.list", version_list)
    app.handle(base + "versions.disable", set_state("DISABLED"))
    app.handle(base + "versions.enable", set_state("ENABLED"))
    app.handle(base + "versions.destroy", set_state("DESTROYED"))

