"""cloudkms v1: key rings, symmetric crypto keys and their versions, with automatic rotation.

What GCP does and the sandbox does too: a key ring or key is deleted only when it is empty (its keys deleted, its
versions deleted), and a version is deleted only once DESTROYED; destroying a version schedules it
(DESTROY_SCHEDULED) for the key's destroyScheduledDuration (30 days unless set at creation, 24 hours at least), after
which it is DESTROYED. A key with a rotationPeriod gets a new primary version whenever nextRotationTime passes (applied
when the key is next read). The purpose and destroyScheduledDuration cannot change.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
import uuid

from ..web import ApiError
from .app import now_rfc3339

ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
DURATION_RE = re.compile(r"^(\d+)(\.\d{1,9})?s$")
PURPOSES = ("ENCRYPT_DECRYPT", "ASYMMETRIC_SIGN", "ASYMMETRIC_DECRYPT", "RAW_ENCRYPT_DECRYPT", "MAC",
            "KEY_ENCAPSULATION")
DAY = 86400
# What an update mask may name on a key.
UPDATABLE = {"labels", "rotationPeriod", "nextRotationTime", "versionTemplate.algorithm",
             "keyAccessJustificationsPolicy"}
LIVE = ("ENABLED", "DISABLED")


def bad(message, status="INVALID_ARGUMENT"):
    return ApiError(400, message, reason="badRequest", status=status)


def not_found(name):
    return ApiError(404, "%s not found." % name, reason="notFound", status="NOT_FOUND")


def seconds(value, field):
    m = DURATION_RE.match(value or "")
    if not m:
        raise bad("Invalid value at '%s' (type.googleapis.com/google.protobuf.Duration), \"%s\"" % (field, value))
    return int(m.group(1))


def parse_time(value, field):
    try:
        return calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S"))
    except (TypeError, ValueError):
        raise bad("Invalid value at '%s' (type.googleapis.com/google.protobuf.Timestamp), \"%s\"" % (field, value))


def rfc3339(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Kms:
    def __init__(self, app):
        self.app = app
        self.rings = app.sandbox.store.table("cloudkms.keyRings")
        self.keys = app.sandbox.store.table("cloudkms.cryptoKeys")
        self.versions = app.sandbox.store.table("cloudkms.cryptoKeyVersions")
        self.ops = {}
        self.lock = threading.RLock()

    def _location(self, p):
        return self.app.location_name(p)

    def _ring_name(self, p):
        return "%s/keyRings/%s" % (self._location(p), p["keyRingsId"])

    def _key_name(self, p):
        return "%s/cryptoKeys/%s" % (self._ring_name(p), p["cryptoKeysId"])

    def _done_op(self, location):
        name = "%s/operations/%s" % (location, uuid.uuid4().hex)
        op = {"name": name, "done": True, "response": {"@type": "type.googleapis.com/google.protobuf.Empty"}}
        self.ops[name] = op
        return op

    # ---- key rings ---------------------------------------------------------------------
    def ring(self, p):
        name = self._ring_name(p)
        if name not in self.rings:
            raise not_found("KeyRing %s" % name)
        return self.rings[name]

    def ring_create(self, req, p):
        ring_id = req.query.get("keyRingId") or ""
        if not ID_RE.match(ring_id):
            raise bad("Invalid key_ring_id '%s': 1-63 letters, digits, '_' and '-'." % ring_id)
        name = "%s/keyRings/%s" % (self._location(p), ring_id)
        with self.lock:
            if name in self.rings:
                raise ApiError(409, "KeyRing %s already exists." % name, reason="alreadyExists",
                               status="ALREADY_EXISTS")
            self.rings[name] = {"name": name, "createTime": now_rfc3339()}
        return self.rings[name]

    def ring_get(self, req, p):
        return self.ring(p)

    def ring_list(self, req, p):
        prefix = self._location(p) + "/keyRings/"
        rows = [r for k, r in sorted(self.rings.items()) if k.startswith(prefix)]
        return {"keyRings": rows, "totalSize": len(rows)} if rows else {}

    def ring_delete(self, req, p):
        with self.lock:
            ring = self.ring(p)
            keys = [k for k in self.keys if k.startswith(ring["name"] + "/cryptoKeys/")]
            if keys:
                raise bad("KeyRing %s is not empty: delete its CryptoKeys first (%s)."
                          % (ring["name"], ", ".join(k.rsplit("/", 1)[-1] for k in sorted(keys))),
                          status="FAILED_PRECONDITION")
            self.rings.pop(ring["name"])
        return self._done_op(self._location(p))

    # ---- crypto keys ---------------------------------------------------------------------
    def _new_version(self, key):
        prefix = key["name"] + "/cryptoKeyVersions/"
        existing = [int(k.rsplit("/", 1)[-1]) for k in self.versions if k.startswith(prefix)]
        name = "%s/cryptoKeyVersions/%d" % (key["name"], max(existing or [0]) + 1)
        template = key.get("versionTemplate") or {}
        stamp = now_rfc3339()
        self.versions[name] = {"name": name, "state": "ENABLED", "createTime": stamp, "generateTime": stamp,
                               "protectionLevel": template.get("protectionLevel", "SOFTWARE"),
                               "algorithm": template.get("algorithm", "GOOGLE_SYMMETRIC_ENCRYPTION")}
        return name

    def _settle(self, key):
        """Rotation and scheduled destruction that fell due since the key was last read."""
        now = time.time()
        for vname, version in self.versions.items():
            if vname.startswith(key["name"] + "/") and version["state"] == "DESTROY_SCHEDULED" \
                    and parse_time(version["destroyTime"], "destroyTime") <= now:
                version["state"] = "DESTROYED"
                version["destroyEventTime"] = rfc3339(now)
        if key.get("rotationPeriod") and key.get("nextRotationTime"):
            period = seconds(key["rotationPeriod"], "rotationPeriod")
            due = parse_time(key["nextRotationTime"], "nextRotationTime")
            if due <= now:
                key["_primary"] = self._new_version(key)
                while due <= now:
                    due += period
                key["nextRotationTime"] = rfc3339(due)

    def _render(self, key):
        self._settle(key)
        out = {k: v for k, v in key.items() if not k.startswith("_")}
        if key.get("_primary") and key["_primary"] in self.versions:
            out["primary"] = dict(self.versions[key["_primary"]])
        return out

    def key(self, p):
        name = self._key_name(p)
        if name not in self.keys:
            raise not_found("CryptoKey %s" % name)
        return self.keys[name]

    def _check_rotation(self, purpose, body):
        period, nxt = body.get("rotationPeriod"), body.get("nextRotationTime")
        if period and purpose != "ENCRYPT_DECRYPT":
            raise bad("Only keys with purpose ENCRYPT_DECRYPT support automatic rotation: omit rotationPeriod.")
        if period:
            secs = seconds(period, "rotation_period")
            if not DAY <= secs <= 876000 * 3600:
                raise bad("rotation_period must be at least 24 hours and at most 876,000 hours (got %s)." % period)
            if not nxt:
                raise bad("next_rotation_time must be set when rotation_period is set.")
        if nxt:
            parse_time(nxt, "next_rotation_time")

    def key_create(self, req, p):
        ring = self.ring(p)
        key_id = req.query.get("cryptoKeyId") or ""
        if not ID_RE.match(key_id):
            raise bad("Invalid crypto_key_id '%s': 1-63 letters, digits, '_' and '-'." % key_id)
        body = dict(req.json or {})
        purpose = body.get("purpose")
        if purpose in (None, "CRYPTO_KEY_PURPOSE_UNSPECIFIED"):
            raise bad("The purpose of the CryptoKey must be specified.")
        self._check_rotation(purpose, body)
        destroy = body.get("destroyScheduledDuration") or "%ds" % (30 * DAY)
        if not DAY <= seconds(destroy, "destroy_scheduled_duration") <= 120 * DAY:
            raise bad("destroy_scheduled_duration must be between 24 hours and 120 days (got %s)." % destroy)
        template = dict(body.get("versionTemplate") or {})
        template.setdefault("protectionLevel", "SOFTWARE")
        template.setdefault("algorithm", "GOOGLE_SYMMETRIC_ENCRYPTION" if purpose == "ENCRYPT_DECRYPT" else None)
        if template["algorithm"] is None:
            raise bad("versionTemplate.algorithm must be specified for purpose %s." % purpose)
        if purpose == "ENCRYPT_DECRYPT" and template["algorithm"] != "GOOGLE_SYMMETRIC_ENCRYPTION":
            raise bad("Algorithm %s is not valid for purpose ENCRYPT_DECRYPT." % template["algorithm"])
        name = "%s/cryptoKeys/%s" % (ring["name"], key_id)
        with self.lock:
            if name in self.keys:
                raise ApiError(409, "CryptoKey %s already exists." % name, reason="alreadyExists",
                               status="ALREADY_EXISTS")
            key = {"name": name, "purpose": purpose, "createTime": now_rfc3339(), "versionTemplate": template,
                   "destroyScheduledDuration": destroy}
            for field in ("labels", "rotationPeriod", "nextRotationTime", "importOnly"):
                if body.get(field) not in (None, {}, ""):
                    key[field] = body[field]
            self.keys[name] = key
            if str(req.query.get("skipInitialVersionCreation", "false")).lower() != "true":
                key["_primary"] = self._new_version(key)
            return self._render(key)

    def key_get(self, req, p):
        with self.lock:
            return self._render(self.key(p))

    def key_list(self, req, p):
        ring = self.ring(p)
        with self.lock:
            prefix = ring["name"] + "/cryptoKeys/"
            rows = [self._render(k) for n, k in sorted(self.keys.items()) if n.startswith(prefix)]
        return {"cryptoKeys": rows, "totalSize": len(rows)} if rows else {}

    def key_patch(self, req, p):
        body = req.json or {}
        mask = [m.strip() for m in (req.query.get("updateMask") or "").split(",") if m.strip()]
        if not mask:
            raise bad("The update_mask must be specified.")
        mask = [re.sub(r"_([a-z])", lambda m: m.group(1).upper(), m) for m in mask]
        with self.lock:
            key = self.key(p)
            for field in mask:
                if field not in UPDATABLE:
                    raise bad("Field '%s' cannot be updated (update_mask may name %s)." % (field, ", ".join(
                        sorted(UPDATABLE))))
            merged = dict(key)
            for field in mask:
                if field == "versionTemplate.algorithm":
                    algorithm = (body.get("versionTemplate") or {}).get("algorithm")
                    if algorithm != key["versionTemplate"]["algorithm"]:
                        raise bad("Algorithm %s is not valid for purpose %s." % (algorithm, key["purpose"]))
                elif body.get(field) in (None, "", {}):
                    merged.pop(field, None)
                else:
                    merged[field] = body[field]
            if merged.get("rotationPeriod") and not merged.get("nextRotationTime"):
                raise bad("next_rotation_time must be set when rotation_period is set.")
            self._check_rotation(key["purpose"], merged)
            key.clear()
            key.update(merged)
            return self._render(key)

    def key_delete(self, req, p):
        with self.lock:
            key = self.key(p)
            versions = [v for v in self.versions if v.startswith(key["name"] + "/cryptoKeyVersions/")]
            if versions:
                raise bad("CryptoKey %s still has %d CryptoKeyVersion(s): destroy them, wait for DESTROYED and delete "
                          "them first." % (key["name"], len(versions)), status="FAILED_PRECONDITION")
            self.keys.pop(key["name"])
        return self._done_op(self._location(p))

    def update_primary(self, req, p):
        with self.lock:
            key = self.key(p)
            vid = (req.json or {}).get("cryptoKeyVersionId") or ""
            vname = "%s/cryptoKeyVersions/%s" % (key["name"], vid)
            if vname not in self.versions:
                raise not_found("CryptoKeyVersion %s" % vname)
            if self.versions[vname]["state"] != "ENABLED":
                raise bad("CryptoKeyVersion %s is not ENABLED." % vname, status="FAILED_PRECONDITION")
            key["_primary"] = vname
            return self._render(key)

    # ---- versions ---------------------------------------------------------------------
    def version(self, p):
        name = "%s/cryptoKeyVersions/%s" % (self._key_name(p), p["cryptoKeyVersionsId"])
        self.key(p)
        if name not in self.versions:
            raise not_found("CryptoKeyVersion %s" % name)
        return self.versions[name]

    def version_create(self, req, p):
        with self.lock:
            key = self.key(p)
            if req.json:
                raise bad("The sandbox creates versions from the key's versionTemplate only: send an empty body.",
                          status="UNIMPLEMENTED")
            return dict(self.versions[self._new_version(key)])

    def version_get(self, req, p):
        with self.lock:
            self._settle(self.key(p))
            return dict(self.version(p))

    def version_list(self, req, p):
        with self.lock:
            key = self.key(p)
            self._settle(key)
            prefix = key["name"] + "/cryptoKeyVersions/"
            rows = [dict(v) for n, v in sorted(self.versions.items(), key=lambda kv: int(kv[0].rsplit("/", 1)[-1]))
                    if n.startswith(prefix)]
        flt = req.query.get("filter") or ""
        m = re.match(r"^state\s*[:=]\s*([A-Z_]+)$", flt.strip())
        if flt and not m:
            raise bad("Invalid filter '%s': the sandbox supports state=<STATE>." % flt, status="UNIMPLEMENTED")
        if m:
            rows = [r for r in rows if r["state"] == m.group(1)]
        return {"cryptoKeyVersions": rows, "totalSize": len(rows)} if rows else {}

    def version_destroy(self, req, p):
        with self.lock:
            key = self.key(p)
            version = self.version(p)
            if version["state"] not in LIVE:
                raise bad("CryptoKeyVersion %s is in state %s and cannot be destroyed." % (version["name"],
                                                                                         version["state"]),
                          status="FAILED_PRECONDITION")
            version["state"] = "DESTROY_SCHEDULED"
            version["destroyTime"] = rfc3339(time.time() + seconds(key["destroyScheduledDuration"],
                                                                   "destroyScheduledDuration"))
            return dict(version)

    def version_restore(self, req, p):
        with self.lock:
            version = self.version(p)
            if version["state"] != "DESTROY_SCHEDULED":
                raise bad("CryptoKeyVersion %s is not scheduled for destruction." % version["name"],
                          status="FAILED_PRECONDITION")
            version["state"] = "DISABLED"
            version.pop("destroyTime", None)
            return dict(version)

    def version_patch(self, req, p):
        mask = [m.strip() for m in (req.query.get("updateMask") or "").split(",") if m.strip()]
        if mask != ["state"]:
            raise bad("The update_mask must be 'state'.")
        state = (req.json or {}).get("state")
        if state not in LIVE:
            raise bad("A CryptoKeyVersion's state can only be set to ENABLED or DISABLED.")
        with self.lock:
            version = self.version(p)
            if version["state"] not in LIVE:
                raise bad("CryptoKeyVersion %s is in state %s." % (version["name"], version["state"]),
                          status="FAILED_PRECONDITION")
            version["state"] = state
            return dict(version)

    def version_delete(self, req, p):
        with self.lock:
            version = self.version(p)
            if version["state"] not in ("DESTROYED", "IMPORT_FAILED", "GENERATION_FAILED"):
                raise bad("CryptoKeyVersion %s is in state %s: only DESTROYED versions can be deleted."
                          % (version["name"], version["state"]), status="FAILED_PRECONDITION")
            self.versions.pop(version["name"])
            key = self.key(p)
            if key.get("_primary") == version["name"]:
                key.pop("_primary")
        return self._done_op(self._location(p))

    def op_get(self, req, p):
        if p["name"] not in self.ops:
            raise not_found("Operation %s" % p["name"])
        return self.ops[p["name"]]


def key_exists(sandbox, name):
    """Whether a CMEK key name (projects/.../cryptoKeys/k) exists and has an ENABLED primary version."""
    keys = sandbox.store.table("cloudkms.cryptoKeys")
    versions = sandbox.store.table("cloudkms.cryptoKeyVersions")
    key = keys.get(name)
    return key is not None and versions.get(key.get("_primary"), {}).get("state") == "ENABLED"


KEY_RE = re.compile(r"^projects/([^/]+)/locations/([^/]+)/keyRings/[^/]+/cryptoKeys/[^/]+$")


def cmek_problem(app, key, location, field, what):
    """Why a CMEK key cannot protect a resource in `location` (None when it can): GCP wants the key's name in full,
    the key in the resource's own region, and an enabled primary version."""
    m = KEY_RE.match(key or "")
    if not m:
        return "Invalid value for %s: %s. It must be projects/*/locations/*/keyRings/*/cryptoKeys/*." % (field, key)
    if m.group(2) != location:
        return ("The Cloud KMS key %s is in location %s, but the %s is in %s: a CMEK key must be in the same "
                "region as the resource it protects." % (key, m.group(2), what, location))
    project = app.project_id(m.group(1))
    if not key_exists(app.sandbox, "projects/%s/%s" % (project, key.split("/", 2)[2])):
        return "The Cloud KMS key %s does not exist or has no enabled primary version." % key
    return None


def register(app):
    kms = Kms(app)
    app.kms = kms
    base = "cloudkms.projects.locations."
    for method, fn in (("keyRings.create", kms.ring_create), ("keyRings.get", kms.ring_get),
                       ("keyRings.list", kms.ring_list), ("keyRings.delete", kms.ring_delete),
                       ("keyRings.cryptoKeys.create", kms.key_create), ("keyRings.cryptoKeys.get", kms.key_get),
                       ("keyRings.cryptoKeys.list", kms.key_list), ("keyRings.cryptoKeys.patch", kms.key_patch),
                       ("keyRings.cryptoKeys.delete", kms.key_delete),
                       ("keyRings.cryptoKeys.updatePrimaryVersion", kms.update_primary),
                       ("keyRings.cryptoKeys.cryptoKeyVersions.create", kms.version_create),
                       ("keyRings.cryptoKeys.cryptoKeyVersions.get", kms.version_get),
                       ("keyRings.cryptoKeys.cryptoKeyVersions.list", kms.version_list),
                       ("keyRings.cryptoKeys.cryptoKeyVersions.destroy", kms.version_destroy),
                       ("keyRings.cryptoKeys.cryptoKeyVersions.restore", kms.version_restore),
                       ("keyRings.cryptoKeys.cryptoKeyVersions.patch", kms.version_patch),
                       ("keyRings.cryptoKeys.cryptoKeyVersions.delete", kms.version_delete),
                       ("operations.get", kms.op_get)):
        app.handle(base + method, fn)
