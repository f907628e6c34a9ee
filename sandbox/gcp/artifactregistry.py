"""artifactregistry v1: standard repositories (created and deleted through long-running operations).

What the API refuses, the sandbox refuses: repository IDs by their rule, a missing format, a mode other than
STANDARD_REPOSITORY (remote and virtual repositories are not served), cleanup policies that are not one action with
either a condition or mostRecentVersions (the latter only with KEEP; at most 10 policies), a CMEK key that does not
exist or is not in the repository's location, and a change of format, mode or kmsKeyName. Cleanup policies are stored
and returned, not run (cleanupPolicyDryRun is honoured trivially).
"""

from __future__ import annotations

import re
import threading

from ..web import ApiError
from .app import lro, now_rfc3339
from .kms import DURATION_RE, key_exists

ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
UPDATABLE = {"description", "labels", "cleanupPolicies", "cleanupPolicyDryRun", "dockerConfig",
             "vulnerabilityScanningConfig", "disallowUnspecifiedMode"}
IMMUTABLE = ("format", "mode", "kmsKeyName")
UNSERVED = {"remoteRepositoryConfig", "virtualRepositoryConfig", "mavenConfig", "platformLogsConfig"}
SERVER_FIELDS = {"name", "createTime", "updateTime", "sizeBytes", "registryUri", "satisfiesPzs", "satisfiesPzi"}
HOSTS = {"DOCKER": "docker", "PYTHON": "python", "NPM": "npm", "MAVEN": "maven", "KFP": "kfp", "GENERIC": "generic",
         "GO": "go", "APT": "apt", "YUM": "yum"}
MAX_POLICIES = 10


def bad(message, status="INVALID_ARGUMENT"):
    return ApiError(400, message, reason="badRequest", status=status)


class ArtifactRegistry:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.repos = app.sandbox.store.table("artifactregistry.repositories")
        self.ops = {}
        self.lock = threading.RLock()

    def _location(self, p):
        return self.app.location_name(p)

    def _name(self, p):
        return "%s/repositories/%s" % (self._location(p), p["repositoriesId"])

    def repo(self, p):
        name = self._name(p)
        if name not in self.repos:
            raise ApiError(404, "Requested entity was not found.", reason="notFound", status="NOT_FOUND")
        return self.repos[name]

    def _operation(self, location, name, verb, on_done):
        op = self.sandbox.ops.start("artifactregistry.repository.%s" % verb, on_done,
                                    resource="artifactregistry/%s" % name)
        op_name = "%s/operations/%s" % (location, op.id)
        meta = {"@type": "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata"}
        self.ops[op_name] = (op, meta)
        return self.render_op(op_name)

    def render_op(self, name):
        op, meta = self.ops[name]
        op.poll()
        return lro(op, name, metadata=dict(meta))

    def op_get(self, req, p):
        if p["name"] not in self.ops:
            raise ApiError(404, "Operation %s not found." % p["name"], reason="notFound", status="NOT_FOUND")
        return self.render_op(p["name"])

    # ---- validation ---------------------------------------------------------------------
    @staticmethod
    def _policies(policies):
        if len(policies) > MAX_POLICIES:
            raise bad("A repository can have at most %d cleanup policies." % MAX_POLICIES)
        for key, policy in policies.items():
            if not key or len(key) >= 128:
                raise bad("Cleanup policy ID '%s' must be 1 to 127 characters." % key)
            if policy.get("id") not in (None, key):
                raise bad("Cleanup policy '%s' has id '%s': the id must equal its key." % (key, policy["id"]))
            action = policy.get("action")
            if action not in ("DELETE", "KEEP"):
                raise bad("Cleanup policy '%s' needs an action, DELETE or KEEP." % key)
            condition, recent = policy.get("condition"), policy.get("mostRecentVersions")
            if (condition is None) == (recent is None):
                raise bad("Cleanup policy '%s' needs exactly one of condition and mostRecentVersions." % key)
            if recent is not None:
                if action != "KEEP":
                    raise bad("Cleanup policy '%s': mostRecentVersions may only be used with a KEEP action." % key)
                if int(recent.get("keepCount") or 0) < 1:
                    raise bad("Cleanup policy '%s': mostRecentVersions.keepCount must be at least 1." % key)
            for field in ("olderThan", "newerThan"):
                value = (condition or {}).get(field)
                if value is not None and not DURATION_RE.match(value):
                    raise bad("Invalid value at 'repository.cleanup_policies[%s].condition.%s' "
                              "(type.googleapis.com/google.protobuf.Duration), \"%s\"" % (key, field, value))
            if (condition or {}).get("tagState") == "TAGGED" and not condition.get("tagPrefixes"):
                raise bad("Cleanup policy '%s': tagState TAGGED needs tagPrefixes." % key)

    def _kms(self, key, location):
        m = re.match(r"^projects/([^/]+)/locations/([^/]+)/keyRings/[^/]+/cryptoKeys/[^/]+$", key)
        if not m:
            raise bad("Invalid kms_key_name '%s': expected projects/*/locations/*/keyRings/*/cryptoKeys/*." % key)
        if m.group(2) != location:
            raise bad("The KMS key %s must be in the repository's location %s." % (key, location))
        project = self.app.project_id(m.group(1))
        if not key_exists(self.sandbox, "projects/%s/%s" % (project, key.split("/", 2)[2])):
            raise bad("The KMS key %s does not exist or has no enabled primary version." % key,
                      status="FAILED_PRECONDITION")

    def _validate(self, body):
        unserved = sorted(set(body) & UNSERVED)
        if unserved:
            raise ApiError(501, "The sandbox does not serve %s." % ", ".join(unserved), reason="notImplemented",
                           status="UNIMPLEMENTED")
        if body.get("mode", "STANDARD_REPOSITORY") not in ("STANDARD_REPOSITORY", "MODE_UNSPECIFIED"):
            raise ApiError(501, "The sandbox serves STANDARD_REPOSITORY repositories only.", reason="notImplemented",
                           status="UNIMPLEMENTED")
        self._policies(body.get("cleanupPolicies") or {})
        if body.get("dockerConfig") and body.get("format") != "DOCKER":
            raise bad("dockerConfig is only for DOCKER repositories.")

    # ---- repositories ------------------------------------------------------------------
    def create(self, req, p):
        location = self._location(p)
        repo_id = req.query.get("repositoryId") or ""
        if not ID_RE.match(repo_id):
            raise bad("Invalid repository ID '%s': 1-63 lowercase letters, digits and hyphens, starting with a letter "
                      "and ending with a letter or digit." % repo_id)
        body = dict(req.json or {})
        if body.get("format") in (None, "FORMAT_UNSPECIFIED"):
            raise bad("Repository format must be specified.")
        extra = sorted(set(body) & SERVER_FIELDS - {"name"})
        if extra:
            raise bad("Field(s) %s are output only." % ", ".join(extra))
        self._validate(body)
        if body.get("kmsKeyName"):
            self._kms(body["kmsKeyName"], p["locationsId"])
        name = "%s/repositories/%s" % (location, repo_id)
        with self.lock:
            if name in self.repos:
                raise ApiError(409, "the repository already exists", reason="alreadyExists", status="ALREADY_EXISTS")
            stamp = now_rfc3339()
            row = dict(body, name=name, mode="STANDARD_REPOSITORY", createTime=stamp, updateTime=stamp,
                       registryUri="%s-%s.pkg.dev/%s/%s" % (p["locationsId"], HOSTS.get(body["format"], "generic"),
                                                            self.app.project_id(p["projectsId"]), repo_id),
                       sizeBytes="0", _pending=True)
            self.repos[name] = row

        def done():
            row.pop("_pending", None)
            return dict(self._public(row), **{"@type": "type.googleapis.com/google.devtools.artifactregistry.v1."
                                                        "Repository"})

        return self._operation(location, name, "create", done)

    @staticmethod
    def _public(row):
        # Proto3 JSON: fields at their default are left out of a read.
        return {k: v for k, v in row.items() if not k.startswith("_") and v not in (False, "", {}, [], None)}

    def get(self, req, p):
        row = self.repo(p)
        if row.get("_pending"):
            raise ApiError(404, "Requested entity was not found.", reason="notFound", status="NOT_FOUND")
        return self._public(row)

    def list(self, req, p):
        prefix = self._location(p) + "/repositories/"
        rows = [self._public(r) for n, r in sorted(self.repos.items()) if n.startswith(prefix)
                and not r.get("_pending")]
        size = int(req.query.get("pageSize") or 1000)
        start = int(req.query.get("pageToken") or 0)
        out = {"repositories": rows[start:start + size]} if rows[start:start + size] else {}
        if start + size < len(rows):
            out["nextPageToken"] = str(start + size)
        return out

    def patch(self, req, p):
        body = dict(req.json or {})
        with self.lock:
            row = self.repo(p)
            mask = [re.sub(r"_([a-z])", lambda m: m.group(1).upper(), m.strip())
                    for m in (req.query.get("updateMask") or "").split(",") if m.strip()]
            if not mask:
                mask = [k for k in body if k not in SERVER_FIELDS]
            for field in mask:
                if field in IMMUTABLE or field in ("format",):
                    if body.get(field, row.get(field)) != row.get(field):
                        raise bad("Field '%s' is immutable: it cannot be changed after the repository is created."
                                  % field)
                elif field not in UPDATABLE:
                    raise bad("Invalid update_mask path '%s'." % field)
            new = dict(row)
            for field in mask:
                if field in IMMUTABLE:
                    continue
                if body.get(field) in (None, {}, [], "", False):
                    new.pop(field, None)
                else:
                    new[field] = body[field]
            self._validate({k: v for k, v in new.items() if not k.startswith("_")})
            new["updateTime"] = now_rfc3339()
            row.clear()
            row.update(new)
            return self._public(row)

    def delete(self, req, p):
        location = self._location(p)
        with self.lock:
            row = self.repo(p)
            name = row["name"]

        def done():
            self.repos.pop(name, None)
            return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return self._operation(location, name, "delete", done)


def register(app):
    ar = ArtifactRegistry(app)
    app.artifactregistry = ar
    base = "artifactregistry.projects.locations."
    for method, fn in (("repositories.create", ar.create), ("repositories.get", ar.get),
                       ("repositories.list", ar.list), ("repositories.patch", ar.patch),
                       ("repositories.delete", ar.delete), ("operations.get", ar.op_get)):
        app.handle(base + method, fn)
