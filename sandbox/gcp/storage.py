"""storage v1 (the Cloud Storage JSON API): buckets, and objects whose data lives on disk under the state dir.

Buckets take what the JSON API takes and refuse what it refuses: names by GCS's naming rules (one global namespace),
uniform bucket-level access (bucketPolicyOnly mirrors it, lockedTime 90 days after it was turned on), public access
prevention (`inherited` or `enforced`), versioning, lifecycle rules (their action types and conditions), labels, a
CMEK default key that must exist in Cloud KMS in the bucket's location. PATCH has patch semantics (a null removes a
field or label); the location cannot change. Deleting a bucket that still holds objects (live or noncurrent) answers
409 as GCS does. Lifecycle rules are stored and returned, not run.

Objects come in through the media paths (`/upload/storage/v1/b/{bucket}/o`, uploadType media or multipart; the
resumable protocol is not served) and go out with `alt=media` (also under `/download/storage/v1/...`). A versioned
bucket keeps an overwritten or deleted object as a noncurrent generation.

A bucket's IAM policy (`b/{bucket}/iam`) starts with the legacy bindings GCS gives a new bucket, takes only Cloud
Storage roles, and refuses a write with a stale etag (412). A workload's token (a pod through Workload Identity, a
Cloud Run task, a VM: a token the sandbox minted for its metadata server) reaches objects only with a role granting
the object permission, bound to it on the bucket or on the project, as IAM decides it; the deployer is checked by
iam_enforce.py.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import os
import re
import threading
import time
import urllib.parse
import zlib

from ..web import ApiError, Response
from .iam import _etag
from .kms import key_exists

COMPONENT_RE = re.compile(r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
MULTI_REGIONS = ("US", "EU", "ASIA")
DUAL_REGIONS = ("NAM4", "EUR4", "ASIA1", "EUR5", "EUR7", "EUR8")
REGION_RE = re.compile(r"^[A-Z]+-[A-Z]+\d+$")
CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE", "MULTI_REGIONAL", "REGIONAL",
           "DURABLE_REDUCED_AVAILABILITY")
ACTIONS = ("Delete", "SetStorageClass", "AbortIncompleteMultipartUpload")
UBLA_LOCK_DAYS = 90
# The bucket fields a request may set; the rest are the server's.
SERVER_FIELDS = {"id", "kind", "etag", "metageneration", "projectNumber", "selfLink", "timeCreated", "updated",
                 "locationType", "generation", "hardDeleteTime", "softDeleteTime", "owner", "satisfiesPZS",
                 "satisfiesPZI"}
UNSERVED = {"autoclass", "customPlacementConfig", "retentionPolicy", "objectRetention", "hierarchicalNamespace",
            "ipFilter", "website", "logging", "cors", "acl", "defaultObjectAcl", "billing", "rpo", "softDeletePolicy",
            "defaultEventBasedHold"}
# Object permissions of the roles a bucket or project binding can grant (a subset of each documented role).
_OBJECT_RW = frozenset({"storage.objects.create", "storage.objects.delete", "storage.objects.get",
                        "storage.objects.list", "storage.objects.update"})
OBJECT_ROLES = {
    "roles/storage.admin": _OBJECT_RW,
    "roles/storage.objectAdmin": _OBJECT_RW,
    "roles/storage.objectUser": _OBJECT_RW,
    "roles/storage.objectCreator": frozenset({"storage.objects.create"}),
    "roles/storage.objectViewer": frozenset({"storage.objects.get", "storage.objects.list"}),
    "roles/storage.legacyBucketOwner": frozenset({"storage.objects.create", "storage.objects.delete",
                                                  "storage.objects.list"}),
    "roles/storage.legacyBucketWriter": frozenset({"storage.objects.create", "storage.objects.delete",
                                                   "storage.objects.list"}),
    "roles/storage.legacyBucketReader": frozenset({"storage.objects.list"}),
    "roles/storage.legacyObjectOwner": frozenset({"storage.objects.get", "storage.objects.update"}),
    "roles/storage.legacyObjectReader": frozenset({"storage.objects.get"}),
    "roles/owner": _OBJECT_RW,
    "roles/editor": _OBJECT_RW,
}
OBJECT_PERMISSION = {"objects.insert": "storage.objects.create", "objects.get": "storage.objects.get",
                     "objects.list": "storage.objects.list", "objects.delete": "storage.objects.delete"}
BUCKET_MEMBER_RE = re.compile(r"^((user|serviceAccount|group|domain|principal|principalSet):.+|allUsers|"
                              r"allAuthenticatedUsers|(projectOwner|projectEditor|projectViewer):[a-z0-9-]+)$")


def bad(message, reason="invalid"):
    return ApiError(400, message, reason=reason)


def rfc3339(epoch=None):
    t = time.time() if epoch is None else epoch
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def name_problem(name):
    if not isinstance(name, str) or not name:
        return "Bucket name is required."
    limit = 222 if "." in name else 63
    if not 3 <= len(name) <= limit or any(not COMPONENT_RE.match(p) or len(p) > 63 for p in name.split(".")):
        return "Invalid bucket name: '%s'" % name
    if re.match(r"^\d+\.\d+\.\d+\.\d+$", name) or name.startswith("goog") or "google" in name:
        return "Invalid bucket name: '%s'" % name
    return None


def location_type(location):
    if location in MULTI_REGIONS:
        return "multi-region"
    if location in DUAL_REGIONS:
        return "dual-region"
    return "region"


def merge_patch(base, patch):
    """JSON API patch semantics: objects merge, a null removes, everything else replaces."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def crc32c_b64(data):
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return base64.b64encode((crc ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()


def _crc_table():
    out = []
    for n in range(256):
        c = n
        for _i in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        out.append(c)
    return out


_CRC_TABLE = _crc_table()


class Storage:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.buckets = app.sandbox.store.table("storage.buckets")
        # "<bucket>/<object>" -> the live generation's metadata; noncurrent ones under "<bucket>/<object>#<gen>".
        self.objects = app.sandbox.store.table("storage.objects")
        self.noncurrent = app.sandbox.store.table("storage.noncurrent")
        self.root = os.path.join(app.sandbox.config.state_dir, "storage")
        self.lock = threading.RLock()

    # ---- buckets -----------------------------------------------------------------------
    def bucket(self, name):
        row = self.buckets.get(name)
        if row is None:
            raise ApiError(404, "The specified bucket does not exist.", reason="notFound")
        return row

    def _validate(self, body, location):
        unserved = sorted(set(body) & UNSERVED)
        if unserved:
            raise ApiError(501, "The sandbox does not serve bucket field(s) %s." % ", ".join(unserved),
                           reason="notImplemented", status="UNIMPLEMENTED")
        storage_class = body.get("storageClass", "STANDARD")
        if storage_class not in CLASSES:
            raise bad("Invalid storage class: %s" % storage_class)
        iam = body.get("iamConfiguration") or {}
        ubla = iam.get("uniformBucketLevelAccess") or {}
        bpo = iam.get("bucketPolicyOnly") or {}
        if "enabled" in ubla and "enabled" in bpo and ubla["enabled"] != bpo["enabled"]:
            raise bad("uniformBucketLevelAccess and bucketPolicyOnly disagree; set only uniformBucketLevelAccess.")
        pap = iam.get("publicAccessPrevention", "inherited")
        if pap not in ("inherited", "enforced", "unspecified"):
            raise bad("Invalid value for publicAccessPrevention: %s. Use 'enforced' or 'inherited'." % pap)
        for key, value in (body.get("labels") or {}).items():
            if not LABEL_KEY_RE.match(key) or not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
                raise bad("Invalid label: %s=%r (keys start with a lowercase letter; keys and values are up to 63 "
                          "lowercase letters, digits, '_' and '-')." % (key, value))
        rules = (body.get("lifecycle") or {}).get("rule") or []
        if len(rules) > 100:
            raise bad("A bucket can have at most 100 lifecycle rules.")
        for idx, rule in enumerate(rules):
            action = rule.get("action") or {}
            condition = rule.get("condition") or {}
            if action.get("type") not in ACTIONS:
                raise bad("Invalid lifecycle rule %d: action.type must be one of %s (got %r)."
                          % (idx, ", ".join(ACTIONS), action.get("type")))
            if action["type"] == "SetStorageClass" and action.get("storageClass") not in CLASSES:
                raise bad("Invalid lifecycle rule %d: SetStorageClass needs a valid action.storageClass." % idx)
            if action["type"] != "SetStorageClass" and "storageClass" in action:
                raise bad("Invalid lifecycle rule %d: action.storageClass is only for SetStorageClass." % idx)
            if not condition:
                raise bad("Invalid lifecycle rule %d: a rule needs at least one condition." % idx)
            for field in ("age", "numNewerVersions", "daysSinceNoncurrentTime", "daysSinceCustomTime"):
                if field in condition and int(condition[field]) < 0:
                    raise bad("Invalid lifecycle rule %d: condition.%s must not be negative." % (idx, field))
            if action["type"] == "AbortIncompleteMultipartUpload" and set(condition) - {"age", "matchesPrefix",
                                                                                        "matchesSuffix"}:
                raise bad("Invalid lifecycle rule %d: AbortIncompleteMultipartUpload takes only age, matchesPrefix "
                          "and matchesSuffix conditions." % idx)
        key = (body.get("encryption") or {}).get("defaultKmsKeyName")
        if key:
            m = re.match(r"^projects/[^/]+/locations/([^/]+)/keyRings/[^/]+/cryptoKeys/[^/]+$", key)
            if not m:
                raise bad("Invalid argument: defaultKmsKeyName must be projects/*/locations/*/keyRings/*/cryptoKeys/*.")
            if m.group(1).upper() != location:
                raise bad("Cloud KMS key location %s is not compatible with bucket location %s: the key must be in "
                          "the bucket's location." % (m.group(1), location))
            project = key.split("/")[1]
            project = self.app.project_id(project)
            if not key_exists(self.sandbox, "projects/%s/%s" % (project, key.split("/", 2)[2])):
                raise bad("Cloud KMS key %s does not exist or has no enabled primary version." % key)

    def _finish(self, row, created):
        iam = row.setdefault("iamConfiguration", {})
        ubla = dict(iam.get("uniformBucketLevelAccess") or iam.get("bucketPolicyOnly") or {"enabled": False})
        if ubla.get("enabled") and "lockedTime" not in ubla:
            ubla["lockedTime"] = rfc3339(time.time() + UBLA_LOCK_DAYS * 86400)
        if not ubla.get("enabled"):
            ubla.pop("lockedTime", None)
        iam["uniformBucketLevelAccess"] = ubla
        iam["bucketPolicyOnly"] = dict(ubla)
        if iam.get("publicAccessPrevention") in (None, "unspecified"):
            iam["publicAccessPrevention"] = "inherited"
        row["storageClass"] = row.get("storageClass", "STANDARD")
        for field in ("labels", "lifecycle", "encryption", "versioning"):
            if row.get(field) in ({}, {"rule": []}):
                row.pop(field)
        row["updated"] = rfc3339()
        row["etag"] = base64.b64encode(("%s/%s" % (row["name"], row["metageneration"])).encode()).decode()[:14]
        if created:
            row["timeCreated"] = row["updated"]
        return row

    def bucket_insert(self, req, p):
        project = req.query.get("project")
        if not project:
            raise bad("Required parameter: project", reason="required")
        body = dict(req.json or {})
        problem = name_problem(body.get("name"))
        if problem:
            raise bad(problem)
        extra = sorted(set(body) & SERVER_FIELDS)
        if extra:
            raise bad("Field(s) %s are set by the server and cannot be sent." % ", ".join(extra))
        location = (body.get("location") or "US").upper()
        if location not in MULTI_REGIONS + DUAL_REGIONS and not REGION_RE.match(location):
            raise bad("The specified location constraint is not valid: %s" % body.get("location"))
        self._validate(body, location)
        with self.lock:
            if body["name"] in self.buckets:
                mine = self.buckets[body["name"]]["projectNumber"] == self.app.project_number
                raise ApiError(409, "Your previous request to create the named bucket succeeded and you already own "
                                    "it." if mine else "The requested bucket name is not available. The bucket "
                                    "namespace is shared by all users of the system. Please select a different name "
                                    "and try again.", reason="conflict")
            row = dict(body, kind="storage#bucket", id=body["name"], location=location,
                       locationType=location_type(location), projectNumber=self.app.project_number,
                       metageneration="1", generation=str(int(time.time() * 1e6)),
                       selfLink="https://www.googleapis.com/storage/v1/b/%s" % body["name"])
            self.buckets[body["name"]] = self._finish(row, created=True)
            return dict(row)

    def bucket_get(self, req, p):
        row = self.bucket(p["bucket"])
        self._precondition(req, row)
        return dict(row)

    def bucket_list(self, req, p):
        if not req.query.get("project"):
            raise bad("Required parameter: project", reason="required")
        prefix = req.query.get("prefix") or ""
        rows = [dict(r) for n, r in sorted(self.buckets.items()) if n.startswith(prefix)]
        return self._page(req, rows, "storage#buckets")

    @staticmethod
    def _page(req, rows, kind, prefixes=None):
        size = int(req.query.get("maxResults") or 1000)
        start = int(req.query.get("pageToken") or 0)
        out = {"kind": kind}
        if rows[start:start + size]:
            out["items"] = rows[start:start + size]
        if start + size < len(rows):
            out["nextPageToken"] = str(start + size)
        if prefixes:
            out["prefixes"] = prefixes
        return out

    @staticmethod
    def _precondition(req, row):
        match = req.query.get("ifMetagenerationMatch")
        if match is not None and str(match) != row["metageneration"]:
            raise ApiError(412, "Precondition Failed", reason="conditionNotMet")
        not_match = req.query.get("ifMetagenerationNotMatch")
        if not_match is not None and str(not_match) == row["metageneration"]:
            raise ApiError(304, "Not Modified", reason="notModified")

    def _change(self, req, p, replace):
        body = dict(req.json or {})
        with self.lock:
            row = self.bucket(p["bucket"])
            self._precondition(req, row)
            if body.get("name") not in (None, row["name"]):
                raise bad("The bucket name cannot be changed.")
            if "location" in body and (body["location"] or "").upper() != row["location"]:
                raise bad("The bucket's location cannot be changed (it is %s); create a new bucket to move the data."
                          % row["location"], reason="invalid")
            extra = [k for k in sorted(set(body) & SERVER_FIELDS) if body[k] != row.get(k)]
            if extra:
                raise bad("Field(s) %s are set by the server and cannot be changed." % ", ".join(extra))
            if replace:
                kept = {k: v for k, v in row.items() if k in SERVER_FIELDS or k in ("name", "location")}
                new = dict(body, **kept)
            else:
                new = merge_patch(row, body)
            iam = new.get("iamConfiguration") or {}
            sent = body.get("iamConfiguration") or {}
            before = (row.get("iamConfiguration") or {}).get("uniformBucketLevelAccess") or {}
            if "uniformBucketLevelAccess" in sent or "bucketPolicyOnly" in sent:
                # The two names are one setting: the one sent wins, the other mirrors it.
                after = dict(iam.get("uniformBucketLevelAccess" if "uniformBucketLevelAccess" in sent
                                     else "bucketPolicyOnly") or {})
                if before.get("enabled") and not after.get("enabled") and before.get("lockedTime", "") < rfc3339():
                    raise bad("Uniform bucket-level access was enabled more than %d days ago and can no longer be "
                              "disabled." % UBLA_LOCK_DAYS)
                iam["uniformBucketLevelAccess"] = after
                iam["bucketPolicyOnly"] = dict(after)
            self._validate({k: v for k, v in new.items() if k not in SERVER_FIELDS}, row["location"])
            new["metageneration"] = str(int(row["metageneration"]) + 1)
            row.clear()
            row.update(self._finish(new, created=False))
            return dict(row)

    def bucket_patch(self, req, p):
        return self._change(req, p, replace=False)

    def bucket_update(self, req, p):
        return self._change(req, p, replace=True)

    def bucket_delete(self, req, p):
        with self.lock:
            row = self.bucket(p["bucket"])
            self._precondition(req, row)
            prefix = row["name"] + "/"
            if any(k.startswith(prefix) for k in self.objects) or any(k.startswith(prefix) for k in self.noncurrent):
                raise ApiError(409, "The bucket you tried to delete is not empty.", reason="conflict")
            self.buckets.pop(row["name"])
            self.sandbox.store.table("iam.policies").pop(self.policy_key(row["name"]), None)
        return Response(204, None)

    # ---- bucket IAM ----------------------------------------------------------------------
    @staticmethod
    def policy_key(bucket):
        return "projects/_/buckets/%s" % bucket

    def policy(self, bucket):
        """The bucket's stored policy, created with the legacy bindings GCS gives every new bucket."""
        policies = self.sandbox.store.table("iam.policies")
        key = self.policy_key(bucket)
        if key not in policies:
            project = self.app.project
            policies[key] = {"version": 1, "etag": _etag(), "bindings": [
                {"role": "roles/storage.legacyBucketOwner",
                 "members": ["projectEditor:%s" % project, "projectOwner:%s" % project]},
                {"role": "roles/storage.legacyBucketReader", "members": ["projectViewer:%s" % project]}]}
        return policies[key]

    def _render_policy(self, bucket, policy):
        return dict(kind="storage#policy", resourceId=self.policy_key(bucket), version=policy["version"],
                    etag=policy["etag"], bindings=[dict(b) for b in policy["bindings"]])

    def bucket_get_iam(self, req, p):
        with self.lock:
            name = self.bucket(p["bucket"])["name"]
            return self._render_policy(name, self.policy(name))

    def bucket_set_iam(self, req, p):
        body = req.json or {}
        with self.lock:
            name = self.bucket(p["bucket"])["name"]
            current = self.policy(name)
            if body.get("etag") and body["etag"] != current["etag"]:
                raise ApiError(412, "Precondition Failed", reason="conditionNotMet")
            for binding in body.get("bindings") or []:
                role = str(binding.get("role") or "")
                if not (role.startswith("roles/storage.") or re.match(r"^(projects|organizations)/[^/]+/roles/", role)):
                    raise bad("Role %s is not supported for this resource." % role)
                for member in binding.get("members") or []:
                    if not BUCKET_MEMBER_RE.match(member):
                        raise bad("Invalid argument: member %s (use type:value, for example "
                                  "serviceAccount:x@p.iam.gserviceaccount.com)." % member)
            new = {"version": body.get("version") or 1, "etag": _etag(),
                   "bindings": [dict(b) for b in body.get("bindings") or [] if b.get("members")]}
            self.sandbox.store.table("iam.policies")[self.policy_key(name)] = new
            return self._render_policy(name, new)

    def authorize(self, req, bucket, method):
        """A workload's token needs the object permission from a bucket or project binding; others pass here."""
        if not getattr(req, "origin", None):
            return
        permission = OBJECT_PERMISSION[method]
        member = "serviceAccount:%s" % req.principal
        policies = self.sandbox.store.table("iam.policies")
        with self.lock:
            bucket_bindings = self.policy(bucket)["bindings"] if bucket in self.buckets else []
        project_bindings = (policies.get("projects/%s" % self.app.project) or {}).get("bindings") or []
        for binding in list(bucket_bindings) + list(project_bindings):
            if binding.get("condition") or member not in (binding.get("members") or []):
                continue
            if permission in OBJECT_ROLES.get(binding.get("role"), ()):
                return
        raise ApiError(403, "%s does not have %s access to the Google Cloud Storage %s. Permission '%s' denied on "
                            "resource (or it may not exist)." % (req.principal, permission,
                                                                 "bucket" if method == "objects.list" else "object",
                                                                 permission), reason="forbidden")

    # ---- objects -----------------------------------------------------------------------
    def _path(self, bucket, name, generation):
        digest = hashlib.sha256(("%s/%s" % (bucket, name)).encode()).hexdigest()[:24]
        return os.path.join(self.root, bucket, "%s-%s" % (digest, generation))

    def _object(self, req, p, method="objects.get"):
        bucket = self.bucket(p["bucket"])["name"]
        self.authorize(req, bucket, method)
        key = "%s/%s" % (bucket, p["object"])
        generation = req.query.get("generation")
        row = self.objects.get(key)
        if generation is not None and (row is None or row["generation"] != str(generation)):
            row = self.noncurrent.get("%s#%s" % (key, generation))
        if row is None:
            raise ApiError(404, "No such object: %s/%s" % (bucket, p["object"]), reason="notFound")
        return key, row

    def _upload(self, req):
        kind = req.query.get("uploadType")
        if kind == "media":
            return {}, req.body or b""
        if kind == "multipart":
            ctype = req.header("Content-Type", "") or ""
            if not ctype.startswith("multipart/related"):
                raise bad("A multipart upload needs Content-Type multipart/related.")
            msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + (req.body or b""),
                                           policy=email.policy.HTTP)
            parts = list(msg.iter_parts()) if msg.is_multipart() else []
            if len(parts) != 2:
                raise bad("A multipart upload has exactly two parts: the metadata and the media.")
            import json

            try:
                meta = json.loads(parts[0].get_payload(decode=True) or b"{}")
            except ValueError:
                raise bad("The metadata part of the upload is not JSON.", reason="parseError")
            return meta, parts[1].get_payload(decode=True) or b""
        if kind == "resumable":
            raise ApiError(501, "The sandbox does not serve resumable uploads: upload with uploadType media or "
                                "multipart.", reason="notImplemented", status="UNIMPLEMENTED")
        raise bad("Upload requests must include an uploadType URL parameter and a URL path beginning with "
                  "/upload/ (uploadType media or multipart).", reason="wrongUrlForUpload")

    def object_insert(self, req, p):
        if getattr(req, "media", None) != "upload":
            raise bad("Upload requests must include an uploadType URL parameter and a URL path beginning with "
                      "/upload/.", reason="wrongUrlForUpload")
        meta, data = req.upload
        name = meta.get("name") or req.query.get("name")
        if not name:
            raise bad("Required parameter: name", reason="required")
        if meta.get("name") and req.query.get("name") and meta["name"] != req.query["name"]:
            raise bad("The object name in the URL and in the metadata differ.")
        if len(name.encode()) > 1024 or "\n" in name or "\r" in name or name in (".", ".."):
            raise bad("Invalid object name: %r" % name)
        with self.lock:
            bucket = self.bucket(p["bucket"])
            self.authorize(req, bucket["name"], "objects.insert")
            key = "%s/%s" % (bucket["name"], name)
            current = self.objects.get(key)
            match = req.query.get("ifGenerationMatch")
            if match is not None and str(match) != (current["generation"] if current else "0"):
                raise ApiError(412, "At least one of the pre-conditions you specified did not hold.",
                               reason="conditionNotMet")
            generation = str(int(time.time() * 1e6))
            if current is not None and current["generation"] >= generation:
                generation = str(int(current["generation"]) + 1)
            path = self._path(bucket["name"], name, generation)
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
            stamp = rfc3339()
            row = {"kind": "storage#object", "id": "%s/%s" % (key, generation), "name": name,
                   "bucket": bucket["name"], "generation": generation, "metageneration": "1",
                   "contentType": meta.get("contentType") or req.header("X-Upload-Content-Type") or
                   "application/octet-stream",
                   "storageClass": bucket["storageClass"], "size": str(len(data)),
                   "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324 - GCS's checksum
                   "crc32c": crc32c_b64(data), "etag": base64.b64encode(generation.encode()).decode(),
                   "timeCreated": stamp, "updated": stamp, "timeStorageClassUpdated": stamp, "timeFinalized": stamp,
                   "selfLink": "https://www.googleapis.com/storage/v1/b/%s/o/%s" % (
                       bucket["name"], urllib.parse.quote(name, safe="")),
                   "mediaLink": "https://storage.googleapis.com/download/storage/v1/b/%s/o/%s?generation=%s&alt=media"
                                % (bucket["name"], urllib.parse.quote(name, safe=""), generation)}
            for field in ("metadata", "cacheControl", "contentDisposition", "contentEncoding", "contentLanguage"):
                if meta.get(field):
                    row[field] = meta[field]
            kms = req.query.get("kmsKeyName") or meta.get("kmsKeyName") or \
                (bucket.get("encryption") or {}).get("defaultKmsKeyName")
            if kms:
                row["kmsKeyName"] = kms + "/cryptoKeyVersions/1"
            if current is not None:
                self._retire(bucket, key, current)
            self.objects[key] = row
            return dict(row)

    def _retire(self, bucket, key, row):
        """The live generation stops being live: kept as noncurrent in a versioned bucket, else gone."""
        if (bucket.get("versioning") or {}).get("enabled"):
            self.noncurrent["%s#%s" % (key, row["generation"])] = dict(row, timeDeleted=rfc3339())
        else:
            self._unlink(row)

    def _unlink(self, row):
        try:
            os.unlink(self._path(row["bucket"], row["name"], row["generation"]))
        except FileNotFoundError:
            pass

    def object_get(self, req, p):
        key, row = self._object(req, p)
        if req.query.get("alt") == "media" or getattr(req, "media", None) == "download":
            with open(self._path(row["bucket"], row["name"], row["generation"]), "rb") as fh:
                data = fh.read()
            return Response(200, data, {"X-Goog-Generation": row["generation"], "X-Goog-Hash": "crc32c=%s,md5=%s" % (
                row["crc32c"], row["md5Hash"])}, content_type=row.get("contentType", "application/octet-stream"))
        return dict(row)

    def object_list(self, req, p):
        bucket = self.bucket(p["bucket"])["name"]
        self.authorize(req, bucket, "objects.list")
        prefix = req.query.get("prefix") or ""
        delimiter = req.query.get("delimiter") or ""
        versions = str(req.query.get("versions", "false")).lower() == "true"
        rows = [r for k, r in self.objects.items() if k.startswith(bucket + "/")]
        if versions:
            rows += [r for k, r in self.noncurrent.items() if k.startswith(bucket + "/")]
        rows = sorted((r for r in rows if r["name"].startswith(prefix)), key=lambda r: (r["name"], r["generation"]))
        prefixes = []
        if delimiter:
            kept = []
            for r in rows:
                rest = r["name"][len(prefix):]
                if delimiter in rest:
                    sub = prefix + rest.split(delimiter, 1)[0] + delimiter
                    if sub not in prefixes:
                        prefixes.append(sub)
                else:
                    kept.append(r)
            rows = kept
        return self._page(req, [dict(r) for r in rows], "storage#objects", prefixes)

    def object_delete(self, req, p):
        with self.lock:
            key, row = self._object(req, p, "objects.delete")
            bucket = self.bucket(p["bucket"])
            if self.objects.get(key) is row:
                self.objects.pop(key)
                self._retire(bucket, key, row)
            else:
                self.noncurrent.pop("%s#%s" % (key, row["generation"]))
                self._unlink(row)
        return Response(204, None)


def register(app):
    storage = Storage(app)
    app.storage = storage
    for method, fn in (("buckets.insert", storage.bucket_insert), ("buckets.get", storage.bucket_get),
                       ("buckets.list", storage.bucket_list), ("buckets.patch", storage.bucket_patch),
                       ("buckets.update", storage.bucket_update), ("buckets.delete", storage.bucket_delete),
                       ("buckets.getIamPolicy", storage.bucket_get_iam),
                       ("buckets.setIamPolicy", storage.bucket_set_iam),
                       ("objects.insert", storage.object_insert), ("objects.get", storage.object_get),
                       ("objects.list", storage.object_list), ("objects.delete", storage.object_delete)):
        app.handle("storage." + method, fn)
