"""HCP Terraform API v2 (JSON:API) stand-in: workspaces, variables, agent pools, agent tokens, agents,
configuration versions, runs that walk the real state machine, and current state-version outputs.

Requests are validated against ../shared/specs/tfc (see spec.py); uploaded configurations are read by
a minimal HCL reader (hcl.py) so a run plans what the configuration says: it errors when the
configuration does not parse or a variable has no value, plans no changes when nothing changed, and
its outputs are the configuration's literal and `var.x` outputs.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import re
import secrets
import tarfile
import threading
import time

from ..web import ApiError, App, Response
from . import hcl, spec as specmod
from .common import API, JSONAPI, ORGANIZATION, TITLES, atlas_token, invalid, not_found, now_iso, rid
from .runs import RunEngine

RATE_LIMIT = 30  # requests per second per token, as HCP Terraform documents
DEFAULT_TF_VERSION = "1.9.8"
WS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,90}$")
TAG_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9:_-]{0,253}[a-z0-9])?$")
TF_VERSION = re.compile(r"^(latest|(~>|>=|<=|>|<|=)?\s*\d+\.\d+(\.\d+)?(-[0-9A-Za-z.]+)?)$")


class TfcApp(App):
    family = "tfc"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.spec = specmod.load(sandbox.config.specs_dir)
        self.lock = threading.RLock()
        store = sandbox.store
        self.orgs = store.table("tfc.organizations")
        self.workspaces = store.table("tfc.workspaces")
        self.vars = store.table("tfc.vars")
        self.pools = store.table("tfc.agent_pools")
        self.tokens = store.table("tfc.agent_tokens")
        self.agents = store.table("tfc.agents")
        self.cvs = store.table("tfc.configuration_versions")
        self.runs = store.table("tfc.runs")
        self.outputs = store.table("tfc.state_version_outputs")
        self.uploads = {}  # upload object id -> configuration version id
        self.logs = {}  # log object id -> (run id, phase)
        self.user_id = rid("user")
        self.token = self._load_token()
        self.org_created = now_iso()
        self.orgs[ORGANIZATION] = {"name": ORGANIZATION, "created": self.org_created, "external_id": rid("org")}
        self.hits = collections.defaultdict(collections.deque)
        self.engine = RunEngine(self)
        self._register()

    # ---- lifecycle and sandbox plumbing ----------------------------------------------------
    def _load_token(self):
        path = os.path.join(self.sandbox.config.state_dir, "tfc-token")
        if os.path.exists(path):
            with open(path) as fh:
                token = fh.read().strip()
            if token:
                return token
        token = atlas_token()
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
        os.replace(path + ".tmp", path)
        return token

    def base_url(self):
        return self.sandbox.url("tfc")

    def endpoint_info(self):
        return {"tfc_address": self.base_url(), "tfc_token": self.token, "tfc_organization": ORGANIZATION}

    def summary(self):
        with self.lock:
            idle = sum(1 for a in self.agents.values() if a["status"] == "idle")
            applied = sum(1 for r in self.runs.values() if r["status"] == "applied")
            return {"tfc workspaces": ", ".join(sorted(w["name"] for w in self.workspaces.values())) or "(none)",
                    "tfc agents (idle)": "%d (%d)" % (len(self.agents), idle), "tfc runs applied": str(applied)}

    def admin(self, req, path):
        if path == "tfc/agent" and req.method == "POST":
            body = req.json
            agent = self.register_agent(body.get("token") or "", name=body.get("name"),
                                        ip_address=body.get("ip_address"), return_agent=True)
            if agent is None:
                raise ApiError(403, "the token is not a valid agent token", reason="forbidden")
            return {"registered": True, "agent_id": agent["id"], "agent_pool_id": agent["pool_id"]}
        if path == "tfc/agent/stop" and req.method == "POST":
            return {"stopped": self.stop_agent(req.json.get("name") or "")}
        return None

    # ---- agents, for the host stand-ins ------------------------------------------------------
    def register_agent(self, token, name=None, ip_address=None, return_agent=False):
        """An agent process started with `token` connects: True (an idle agent appears) when the token is valid."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.lock:
            tok = next((t for t in self.tokens.values() if t["digest"] == digest), None)
            if tok is None:
                return None if return_agent else False
            tok["last_used"] = now_iso()
            name = name or "agent-%s" % secrets.token_hex(4)
            for agent in self.agents.values():
                if agent["name"] == name and agent["pool_id"] == tok["pool_id"] and agent["status"] != "exited":
                    agent["status"] = "idle"
                    agent["token_id"] = tok["id"]
                    return agent if return_agent else True
            agent = {"id": rid("agent"), "pool_id": tok["pool_id"], "token_id": tok["id"], "name": name,
                     "status": "idle", "ip": ip_address or "203.0.113.%d" % (len(self.agents) % 250 + 2),
                     "created": now_iso(), "last_ping": now_iso(), "busy_with": None}
            self.agents[agent["id"]] = agent
        self.engine.agents_changed()
        return agent if return_agent else True

    def stop_agent(self, name):
        """The host running agent `name` stopped: it exits (its current job, if any, errors)."""
        stopped = 0
        with self.lock:
            for agent in self.agents.values():
                if agent["name"] == name and agent["status"] != "exited":
                    agent["status"] = "exited"
                    agent["last_ping"] = now_iso()
                    stopped += 1
                    if agent.get("busy_with"):
                        self.engine.agent_lost(agent["busy_with"], agent)
        return stopped

    # ---- HTTP plumbing ---------------------------------------------------------------------
    def error_response(self, err):
        status = err.status
        title = err.reason if err.reason and err.reason not in ("sandboxFault", "notFound", "methodNotAllowed",
                                                                  "backendError", "parseError") else TITLES.get(status, "error")
        item = {"status": str(status), "title": title}
        if err.message and err.reason != "notFound":
            item["detail"] = err.message
        if err.extra.get("pointer"):
            item["source"] = {"pointer": err.extra["pointer"]}
        headers = dict(err.headers)
        if status == 429:
            reset = headers.pop("Retry-After", None) or headers.get("X-RateLimit-Reset") or "1"
            headers["X-RateLimit-Limit"] = str(RATE_LIMIT)
            headers["X-RateLimit-Reset"] = str(reset)
        return Response(status, {"errors": [item]}, headers, content_type=JSONAPI)

    def authenticate(self, req):
        if not req.path.startswith(API + "/"):
            return
        if req.bearer != self.token:
            raise ApiError(401, None, reason="unauthorized")
        q = self.hits[req.bearer]
        now = time.monotonic()
        with self.lock:
            while q and now - q[0] >= 1.0:
                q.popleft()
            if len(q) >= RATE_LIMIT:
                reset = max(0.01, 1.0 - (now - q[0]))
                raise ApiError(429, "You have exceeded the API's rate limit.", reason="Too many requests",
                               headers={"X-RateLimit-Reset": "%.3f" % reset})
            q.append(now)

    def dispatch(self, req):
        if self.spec is None:
            raise ApiError(501, "the tfc sandbox validates against %s, which is missing: set SKYFORGE_SPECS_DIR"
                           % os.path.join(self.sandbox.config.specs_dir, specmod.SPEC_FILE))
        return super().dispatch(req)

    def api(self, method, template, handler, schema=None):
        """Route /api/v2<template>; bodies are validated against the spec's operation (or `schema`)."""

        if method in ("POST", "PATCH", "PUT") and schema is None and self.spec is not None \
                and not self.spec.has(method, template):
            raise RuntimeError("%s %s is not in the HCP Terraform OpenAPI file: give it a schema" % (method, template))

        def wrapped(req):
            if req.method in ("POST", "PATCH", "PUT"):
                self._validate(req, method, template, schema)
            return handler(req)

        self.route(method, API + template, wrapped)

    def _validate(self, req, method, template, override):
        ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
        if req.body and ctype and ctype not in (JSONAPI, "application/json"):
            raise invalid("Content-Type must be %s" % JSONAPI, status=415)
        try:
            body = req.json if req.body else None
        except ValueError:
            raise invalid("The request body is not valid JSON.", status=400, title="JSON body is invalid")
        schema, required = (override, False) if override is not None else self.spec.request_schema(method, template)
        if schema is None:
            return
        if body is None:
            if required:
                raise invalid("The request body is missing: send a JSON:API document with a `data` member.",
                              pointer="/data")
            return
        problems = self.spec.errors_for(schema, body)
        if problems:
            pointer, message = problems[0]
            raise invalid("%s (at %s)" % (message, pointer), pointer=pointer)
        if override is None:
            unknown = self.spec.unknown_members(schema, body)
            if unknown:
                pointer, name = unknown[0]
                raise invalid("%r is not a known member of this resource" % name, pointer=pointer)

    @staticmethod
    def doc(body, status=200):
        return Response(status, body, content_type=JSONAPI)

    def paginate(self, req, items, path):
        try:
            number = int(req.query.get("page[number]", 1))
            size = int(req.query.get("page[size]", 20))
        except ValueError:
            raise invalid("page[number] and page[size] must be integers", status=400)
        if number < 1 or size < 1:
            raise invalid("page[number] and page[size] must be positive", status=400)
        size = min(size, 100)
        total = len(items)
        pages = max(1, (total + size - 1) // size)
        chunk = items[(number - 1) * size:number * size]

        def link(n):
            return "%s%s%s?page%%5Bnumber%%5D=%d&page%%5Bsize%%5D=%d" % (self.base_url(), API, path, n, size)

        links = {"self": link(number), "first": link(1), "prev": link(number - 1) if number > 1 else None,
                 "next": link(number + 1) if number < pages else None, "last": link(pages)}
        meta = {"pagination": {"current-page": number, "page-size": size,
                               "prev-page": number - 1 if number > 1 else None,
                               "next-page": number + 1 if number < pages else None,
                               "total-pages": pages, "total-count": total}}
        return chunk, links, meta

    # ---- routes ----------------------------------------------------------------------------
    def _register(self):
        a = self.api
        a("GET", "/organizations/{org}", self.org_show)
        a("GET", "/organizations/{org}/workspaces", self.ws_list)
        a("POST", "/organizations/{org}/workspaces", self.ws_create)
        a("GET", "/organizations/{org}/workspaces/{name}", self.ws_show)
        a("PATCH", "/organizations/{org}/workspaces/{name}", self.ws_update)
        a("DELETE", "/organizations/{org}/workspaces/{name}", self.ws_delete)
        a("GET", "/workspaces/{ws}", self.ws_show)
        a("PATCH", "/workspaces/{ws}", self.ws_update)
        a("DELETE", "/workspaces/{ws}", self.ws_delete)
        a("GET", "/workspaces/{ws}/relationships/tags", self.tags_list)
        a("POST", "/workspaces/{ws}/relationships/tags", self.tags_add)
        a("DELETE", "/workspaces/{ws}/relationships/tags", self.tags_remove)
        a("GET", "/workspaces/{ws}/vars", self.var_list)
        a("POST", "/workspaces/{ws}/vars", self.var_create)
        a("GET", "/workspaces/{ws}/vars/{id}", self.var_show)
        a("PATCH", "/workspaces/{ws}/vars/{id}", self.var_update)
        a("DELETE", "/workspaces/{ws}/vars/{id}", self.var_delete)
        a("GET", "/organizations/{org}/agent-pools", self.pool_list)
        a("POST", "/organizations/{org}/agent-pools", self.pool_create)
        a("GET", "/agent-pools/{pool}", self.pool_show)
        a("PATCH", "/agent-pools/{pool}", self.pool_update)
        a("DELETE", "/agent-pools/{pool}", self.pool_delete)
        a("GET", "/agent-pools/{pool}/authentication-tokens", self.token_list)
        a("POST", "/agent-pools/{pool}/authentication-tokens", self.token_create)
        a("GET", "/authentication-tokens/{id}", self.token_show)
        a("DELETE", "/authentication-tokens/{id}", self.token_delete)
        a("GET", "/agent-pools/{pool}/agents", self.agent_list)
        a("GET", "/agents/{id}", self.agent_show)
        a("DELETE", "/agents/{id}", self.agent_delete)
        a("GET", "/workspaces/{ws}/configuration-versions", self.cv_list)
        a("POST", "/workspaces/{ws}/configuration-versions", self.cv_create)
        a("GET", "/configuration-versions/{id}", self.cv_show)
        self.route("PUT", "/v1/object/{object}", self.cv_upload)
        self.route("GET", "/v1/log/{object}", self.log_read)
        e = self.engine
        a("POST", "/runs", e.create)
        a("GET", "/runs/{id}", e.show)
        a("GET", "/runs/{id}/plan", e.plan_show)
        a("GET", "/workspaces/{ws}/runs", e.list)
        a("POST", "/runs/{id}/actions/apply", e.apply)
        # discard and cancel are documented (runs.discard.json, runs.cancel.json) but absent from the
        # OpenAPI file; their body is the same optional comment document as apply's.
        comment = {"type": "object", "additionalProperties": False,
                   "properties": {"comment": {"type": ["string", "null"]}}}
        a("POST", "/runs/{id}/actions/discard", e.discard, schema=comment)
        a("POST", "/runs/{id}/actions/cancel", e.cancel, schema=comment)
        a("GET", "/workspaces/{ws}/current-state-version-outputs", self.outputs_current)
        a("GET", "/state-version-outputs/{id}", self.output_show)

    # ---- organizations -------------------------------------------------------------------------
    def org(self, req):
        name = req.params.get("org")
        if name not in self.orgs:
            raise not_found()
        return self.orgs[name]

    def org_show(self, req):
        org = self.org(req)
        return self.doc({"data": {
            "id": org["name"], "type": "organizations",
            "attributes": {"name": org["name"], "external-id": org["external_id"], "created-at": org["created"],
                           "email": "platform@skyforge.example", "collaborator-auth-policy": "password",
                           "cost-estimation-enabled": False, "plan-expired": False, "plan-is-trial": False,
                           "plan-is-enterprise": False, "plan-identifier": "free_standard",
                           "allow-force-delete-workspaces": False,
                           "permissions": {"can-update": True, "can-destroy": True, "can-create-workspace": True,
                                           "can-update-agent-pools": True, "can-manage-tags": True}},
            "links": {"self": "%s/organizations/%s" % (API, org["name"])}}})

    # ---- workspaces ----------------------------------------------------------------------------
    def find_ws(self, req):
        with self.lock:
            if req.params.get("ws"):
                ws = self.workspaces.get(req.params["ws"])
            else:
                self.org(req)
                ws = next((w for w in self.workspaces.values()
                           if w["org"] == req.params["org"] and w["name"] == req.params["name"]), None)
        if ws is None:
            raise not_found()
        return ws

    def render_ws(self, ws):
        run = self.runs.get(ws.get("current_run") or "")
        latest = self.runs.get(ws.get("latest_run") or "")
        outputs = [o for o in self.outputs.values() if o["ws_id"] == ws["id"] and o["sv_id"] == ws.get("sv_id")]
        vars_ = [v for v in self.vars.values() if v["ws_id"] == ws["id"]]
        state = ws.get("state") or {}
        attrs = {
            "actions": {"is-destroyable": True},
            "allow-destroy-plan": ws["allow-destroy-plan"], "assessments-enabled": ws["assessments-enabled"],
            "auto-apply": ws["auto-apply"], "auto-apply-run-trigger": False, "auto-destroy-at": None,
            "auto-destroy-status": None, "auto-destroy-activity-duration": None,
            "created-at": ws["created"], "description": ws["description"], "environment": "default",
            "execution-mode": ws["execution-mode"], "file-triggers-enabled": ws["file-triggers-enabled"],
            "global-remote-state": ws["global-remote-state"], "latest-change-at": ws["updated"],
            "last-assessment-result-at": None, "locked": False, "locked-reason": "", "name": ws["name"],
            "oauth-client-name": None, "operations": ws["execution-mode"] != "local",
            "permissions": {k: True for k in (
                "can-update", "can-destroy", "can-queue-run", "can-read-run", "can-read-variable",
                "can-update-variable", "can-read-state-versions", "can-read-state-outputs",
                "can-create-state-versions", "can-queue-apply", "can-lock", "can-unlock", "can-force-unlock",
                "can-read-settings", "can-manage-tags", "can-manage-run-tasks", "can-force-delete",
                "can-manage-assessments", "can-read-assessment-results", "can-queue-destroy")},
            "apply-duration-average": None, "plan-duration-average": None, "policy-check-failures": None,
            "queue-all-runs": ws["queue-all-runs"], "resource-count": len(state.get("resources") or {}),
            "run-failures": ws["run_failures"], "source": "tfe-api", "source-name": None, "source-url": None,
            "speculative-enabled": ws["speculative-enabled"], "structured-run-output-enabled": True,
            "tag-names": sorted(ws["tags"]), "terraform-version": ws["terraform-version"],
            "trigger-prefixes": ws["trigger-prefixes"], "trigger-patterns": ws["trigger-patterns"],
            "updated-at": ws["updated"], "vcs-repo": None, "vcs-repo-identifier": None,
            "working-directory": ws["working-directory"], "workspace-kpis-runs-count": ws["runs_count"],
            "setting-overwrites": {"execution-mode": True, "agent-pool": True},
        }
        base = "%s/workspaces/%s" % (API, ws["id"])

        def one(kind, obj_id, related=None):
            out = {"data": {"id": obj_id, "type": kind} if obj_id else None}
            if related:
                out["links"] = {"related": related}
            return out

        rels = {
            "agent-pool": one("agent-pools", ws.get("agent_pool_id")),
            "current-configuration-version": one("configuration-versions", ws.get("current_cv"),
                                                 "%s/configuration-versions/%s" % (API, ws.get("current_cv"))
                                                 if ws.get("current_cv") else None),
            "current-run": one("runs", run["id"] if run else None),
            "latest-run": one("runs", latest["id"] if latest else None),
            "current-state-version": one("state-versions", ws.get("sv_id"),
                                         base + "/current-state-version"),
            "current-assessment-result": {"data": None},
            "organization": {"data": {"id": ws["org"], "type": "organizations"}},
            "outputs": {"data": [{"id": o["id"], "type": "workspace-outputs"} for o in outputs],
                        "links": {"related": base + "/current-state-version-outputs"}},
            "readme": {"data": None},
            "remote-state-consumers": {"links": {"related": base + "/relationships/remote-state-consumers"}},
            "tag-bindings": {"links": {"related": base + "/tag-bindings"}},
            "effective-tag-bindings": {"links": {"related": base + "/effective-tag-bindings"}},
            "vars": {"data": [{"id": v["id"], "type": "vars"} for v in vars_]},
        }
        return {"id": ws["id"], "type": "workspaces", "attributes": attrs, "relationships": rels,
                "links": {"self": "%s/organizations/%s/workspaces/%s" % (API, ws["org"], ws["name"]),
                          "self-html": "/app/%s/workspaces/%s" % (ws["org"], ws["name"])}}

    def ws_list(self, req):
        org = self.org(req)
        with self.lock:
            items = [w for w in self.workspaces.values() if w["org"] == org["name"]]
            search = req.query.get("search[name]")
            if search:
                items = [w for w in items if search.lower() in w["name"].lower()]
            tags = req.query.get("search[tags]")
            if tags:
                want = {t.strip() for t in tags.split(",") if t.strip()}
                items = [w for w in items if want <= w["tags"]]
            items.sort(key=lambda w: w["name"])
            chunk, links, meta = self.paginate(req, items, "/organizations/%s/workspaces" % org["name"])
            return self.doc({"data": [self.render_ws(w) for w in chunk], "links": links, "meta": meta})

    def ws_show(self, req):
        ws = self.find_ws(req)
        with self.lock:
            return self.doc({"data": self.render_ws(ws)})

    _WS_SIMPLE = {"description": "description", "auto-apply": "auto-apply", "allow-destroy-plan": "allow-destroy-plan",
                  "assessments-enabled": "assessments-enabled", "file-triggers-enabled": "file-triggers-enabled",
                  "global-remote-state": "global-remote-state", "queue-all-runs": "queue-all-runs",
                  "speculative-enabled": "speculative-enabled", "working-directory": "working-directory",
                  "trigger-prefixes": "trigger-prefixes", "trigger-patterns": "trigger-patterns"}

    def _apply_ws_attrs(self, ws, attrs, creating):
        attrs = {k.replace("_", "-"): v for k, v in attrs.items()}
        if "name" in attrs:
            name = attrs["name"]
            if not isinstance(name, str) or not WS_NAME.match(name):
                raise invalid("Name is invalid: use 1 to 90 letters, numbers, - and _.", "/data/attributes/name")
            clash = next((w for w in self.workspaces.values()
                          if w["org"] == ws["org"] and w["name"] == name and w["id"] != ws.get("id")), None)
            if clash:
                raise invalid("Name has already been taken", "/data/attributes/name")
        elif creating:
            raise invalid("Name can't be blank", "/data/attributes/name")
        if attrs.get("vcs-repo"):
            raise invalid("VCS repository settings need an OAuth token of a VCS provider, and this organization "
                          "has none (the sandbox serves API-driven workspaces only)", "/data/attributes/vcs-repo")
        if "terraform-version" in attrs and not TF_VERSION.match(str(attrs["terraform-version"])):
            raise invalid("Terraform version %r is not a released version or constraint"
                          % attrs["terraform-version"], "/data/attributes/terraform-version")
        if "trigger-prefixes" in attrs and attrs["trigger-prefixes"] and attrs.get("trigger-patterns"):
            raise invalid("Trigger patterns and trigger prefixes cannot be used together",
                          "/data/attributes/trigger-patterns")
        mode = attrs.get("execution-mode")
        if mode is None and "operations" in attrs:
            mode = "remote" if attrs["operations"] else "local"
        new_mode = mode or ws.get("execution-mode") or "remote"
        pool_id = attrs.get("agent-pool-id", ws.get("agent_pool_id") if new_mode == "agent" else None)
        if "agent-pool-id" in attrs and attrs["agent-pool-id"] and new_mode != "agent":
            raise invalid("Agent pool can only be set when the execution mode is 'agent'",
                          "/data/attributes/agent-pool-id")
        if new_mode == "agent":
            if not pool_id:
                raise invalid("Agent pool must be set when the execution mode is 'agent'",
                              "/data/attributes/agent-pool-id")
            pool = self.pools.get(pool_id)
            if pool is None or pool["org"] != ws["org"]:
                raise invalid("Agent pool %s was not found in organization %s" % (pool_id, ws["org"]),
                              "/data/attributes/agent-pool-id")
            if not pool["org_scoped"] and ws.get("id") not in pool["allowed_ws"]:
                raise invalid("Agent pool %s is not allowed for this workspace: add the workspace to the pool's "
                              "allowed workspaces or make the pool organization-scoped" % pool_id,
                              "/data/attributes/agent-pool-id")
        ws["execution-mode"] = new_mode
        ws["agent_pool_id"] = pool_id if new_mode == "agent" else None
        for key, field in self._WS_SIMPLE.items():
            if key in attrs:
                ws[field] = attrs[key]
        if "name" in attrs:
            ws["name"] = attrs["name"]
        if "terraform-version" in attrs:
            ws["terraform-version"] = attrs["terraform-version"]
        if "tag-names" in attrs:
            ws["tags"] = self._tags(attrs["tag-names"] or [], "/data/attributes/tag-names")

    def _tags(self, names, pointer):
        out = set()
        for name in names:
            norm = str(name).lower()
            if not TAG_NAME.match(norm):
                raise invalid("Tag %r is invalid: tags use letters, numbers, colons, hyphens and underscores, and "
                              "start and end with a letter or number" % name, pointer)
            out.add(norm)
        return out

    def ws_create(self, req):
        org = self.org(req)
        data = req.json["data"]
        with self.lock:
            ws = {"org": org["name"], "description": None, "auto-apply": False, "allow-destroy-plan": True,
                  "assessments-enabled": False, "file-triggers-enabled": True, "global-remote-state": False,
                  "queue-all-runs": False, "speculative-enabled": True, "working-directory": None,
                  "trigger-prefixes": [], "trigger-patterns": [], "terraform-version": DEFAULT_TF_VERSION,
                  "tags": set(), "created": now_iso(), "run_failures": 0, "runs_count": 0, "state": None}
            self._apply_ws_attrs(ws, data.get("attributes") or {}, creating=True)
            ws["id"] = rid("ws")
            ws["updated"] = ws["created"]
            self.workspaces[ws["id"]] = ws
            return self.doc({"data": self.render_ws(ws)}, 201)

    def ws_update(self, req):
        ws = self.find_ws(req)
        data = req.json["data"]
        with self.lock:
            draft = dict(ws)
            self._apply_ws_attrs(draft, data.get("attributes") or {}, creating=False)
            ws.update(draft)
            ws["updated"] = now_iso()
            return self.doc({"data": self.render_ws(ws)})

    def ws_delete(self, req):
        ws = self.find_ws(req)
        with self.lock:
            self.workspaces.pop(ws["id"], None)
            for table in (self.vars, self.cvs, self.runs, self.outputs):
                for key in [k for k, v in table.items() if v.get("ws_id") == ws["id"]]:
                    table.pop(key, None)
            for pool in self.pools.values():
                if ws["id"] in pool["allowed_ws"]:
                    pool["allowed_ws"].remove(ws["id"])
        return Response(204, None)

    def _tag_names(self, req):
        names = []
        for item in req.json.get("data") or []:
            if item.get("id"):
                names.append(item["id"].split("tag-", 1)[-1])
            else:
                names.append((item.get("attributes") or {}).get("name") or "")
        return self._tags(names, "/data")

    def tags_list(self, req):
        ws = self.find_ws(req)
        return self.doc({"data": [{"id": "tag-%s" % t, "type": "tags", "attributes": {"name": t}}
                                  for t in sorted(ws["tags"])]})

    def tags_add(self, req):
        ws = self.find_ws(req)
        with self.lock:
            ws["tags"] |= self._tag_names(req)
            ws["updated"] = now_iso()
        return Response(204, None)

    def tags_remove(self, req):
        ws = self.find_ws(req)
        with self.lock:
            ws["tags"] -= self._tag_names(req)
            ws["updated"] = now_iso()
        return Response(204, None)

    # ---- variables ----------------------------------------------------------------------------
    def render_var(self, v):
        ws = self.workspaces.get(v["ws_id"]) or {}
        return {"id": v["id"], "type": "vars",
                "attributes": {"key": v["key"], "value": None if v["sensitive"] else v["value"],
                               "description": v["description"], "sensitive": v["sensitive"],
                               "category": v["category"], "hcl": v["hcl"], "version-id": v["version_id"],
                               "created-at": v["created"]},
                "relationships": {"configurable": {
                    "data": {"id": v["ws_id"], "type": "workspaces"},
                    "links": {"related": "%s/organizations/%s/workspaces/%s" % (API, ws.get("org"), ws.get("name"))}}},
                "links": {"self": "%s/workspaces/%s/vars/%s" % (API, v["ws_id"], v["id"])}}

    def var_list(self, req):
        ws = self.find_ws(req)
        with self.lock:
            items = sorted((v for v in self.vars.values() if v["ws_id"] == ws["id"]), key=lambda v: v["created"])
            return self.doc({"data": [self.render_var(v) for v in items]})

    def find_var(self, req):
        ws = self.find_ws(req)
        v = self.vars.get(req.params["id"])
        if v is None or v["ws_id"] != ws["id"]:
            raise not_found()
        return ws, v

    def var_show(self, req):
        _ws, v = self.find_var(req)
        return self.doc({"data": self.render_var(v)})

    def _apply_var(self, v, attrs, creating):
        for key in ("key", "value", "description", "category", "hcl", "sensitive"):
            if key in attrs:
                if key == "sensitive" and v.get("sensitive") and attrs[key] is False:
                    raise invalid("Sensitive variables cannot be made non-sensitive: delete and recreate the "
                                  "variable instead", "/data/attributes/sensitive")
                v[key] = attrs[key]
        if not v.get("key"):
            raise invalid("Key can't be blank", "/data/attributes/key")
        if v.get("category") not in ("terraform", "env"):
            raise invalid("Category must be 'terraform' or 'env' for a workspace variable",
                          "/data/attributes/category")
        if v["category"] == "terraform" and not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", v["key"]):
            raise invalid("Key %r is not a valid Terraform variable name" % v["key"], "/data/attributes/key")
        clash = next((o for o in self.vars.values() if o["ws_id"] == v["ws_id"] and o["key"] == v["key"]
                      and o["category"] == v["category"] and o["id"] != v.get("id")), None)
        if clash:
            raise invalid("Key has already been taken", "/data/attributes/key")
        v.setdefault("value", "")
        v["value"] = "" if v["value"] is None else v["value"]
        v["version_id"] = secrets.token_hex(18)

    def var_create(self, req):
        ws = self.find_ws(req)
        data = req.json["data"]
        with self.lock:
            v = {"ws_id": ws["id"], "description": None, "hcl": False, "sensitive": False, "created": now_iso()}
            self._apply_var(v, data.get("attributes") or {}, creating=True)
            v["id"] = rid("var")
            self.vars[v["id"]] = v
            return self.doc({"data": self.render_var(v)}, 201)

    def var_update(self, req):
        _ws, v = self.find_var(req)
        data = req.json["data"]
        with self.lock:
            draft = dict(v)
            self._apply_var(draft, data.get("attributes") or {}, creating=False)
            v.update(draft)
            return self.doc({"data": self.render_var(v)})

    def var_delete(self, req):
        _ws, v = self.find_var(req)
        with self.lock:
            self.vars.pop(v["id"], None)
        return Response(204, None)

    # ---- agent pools ---------------------------------------------------------------------------
    def render_pool(self, p):
        base = "%s/agent-pools/%s" % (API, p["id"])
        using = sorted(w["id"] for w in self.workspaces.values() if w.get("agent_pool_id") == p["id"])
        return {"id": p["id"], "type": "agent-pools",
                "attributes": {"name": p["name"], "created-at": p["created"], "organization-scoped": p["org_scoped"],
                               "agent-count": sum(1 for a in self.agents.values()
                                                  if a["pool_id"] == p["id"] and a["status"] != "exited")},
                "relationships": {
                    "agents": {"links": {"related": base + "/agents"}},
                    "authentication-tokens": {"links": {"related": base + "/authentication-tokens"}},
                    "workspaces": {"data": [{"id": w, "type": "workspaces"} for w in using]},
                    "allowed-workspaces": {"data": [{"id": w, "type": "workspaces"} for w in p["allowed_ws"]]},
                    "excluded-workspaces": {"data": [{"id": w, "type": "workspaces"} for w in p["excluded_ws"]]},
                    "organization": {"data": {"id": p["org"], "type": "organizations"}}},
                "links": {"self": base}}

    def find_pool(self, req):
        p = self.pools.get(req.params["pool"])
        if p is None:
            raise not_found()
        return p

    def pool_list(self, req):
        org = self.org(req)
        with self.lock:
            items = sorted((p for p in self.pools.values() if p["org"] == org["name"]), key=lambda p: p["created"])
            if req.query.get("q"):
                items = [p for p in items if req.query["q"].lower() in p["name"].lower()]
            chunk, links, meta = self.paginate(req, items, "/organizations/%s/agent-pools" % org["name"])
            meta["status-counts"] = {"total": len(items), "matching": len(items)}
            return self.doc({"data": [self.render_pool(p) for p in chunk], "links": links, "meta": meta})

    def pool_show(self, req):
        p = self.find_pool(req)
        with self.lock:
            return self.doc({"data": self.render_pool(p)})

    def _apply_pool(self, p, data, creating):
        attrs = data.get("attributes") or {}
        rels = data.get("relationships") or {}
        if "name" in attrs or creating:
            name = attrs.get("name")
            if not name or not isinstance(name, str):
                raise invalid("Name can't be blank", "/data/attributes/name")
            if not re.match(r"^[A-Za-z0-9_.-]{1,90}$", name):
                raise invalid("Name is invalid: use letters, numbers, -, _ and .", "/data/attributes/name")
            if any(o["name"] == name and o["org"] == p["org"] and o["id"] != p.get("id") for o in self.pools.values()):
                raise invalid("Name has already been taken", "/data/attributes/name")
            p["name"] = name
        if "organization-scoped" in attrs:
            p["org_scoped"] = bool(attrs["organization-scoped"])
        for rel, field in (("allowed-workspaces", "allowed_ws"), ("excluded-workspaces", "excluded_ws")):
            if rel in rels:
                ids = []
                for ref in (rels[rel] or {}).get("data") or []:
                    ws = self.workspaces.get(ref.get("id"))
                    if ws is None or ws["org"] != p["org"] or ref.get("type") != "workspaces":
                        raise invalid("Workspace %s was not found in organization %s" % (ref.get("id"), p["org"]),
                                      "/data/relationships/%s" % rel)
                    ids.append(ws["id"])
                p[field] = ids

    def pool_create(self, req):
        org = self.org(req)
        with self.lock:
            p = {"org": org["name"], "org_scoped": True, "allowed_ws": [], "excluded_ws": [], "created": now_iso()}
            self._apply_pool(p, req.json["data"], creating=True)
            p["id"] = rid("apool")
            self.pools[p["id"]] = p
            return self.doc({"data": self.render_pool(p)}, 201)

    def pool_update(self, req):
        p = self.find_pool(req)
        with self.lock:
            draft = dict(p)
            self._apply_pool(draft, req.json["data"], creating=False)
            p.update(draft)
            return self.doc({"data": self.render_pool(p)})

    def pool_delete(self, req):
        p = self.find_pool(req)
        with self.lock:
            using = sorted(w["name"] for w in self.workspaces.values() if w.get("agent_pool_id") == p["id"])
            if using:
                raise invalid("Agent pool %s is still used by workspace(s) %s: switch them to another execution "
                              "mode or pool first" % (p["name"], ", ".join(using)), status=422,
                              title="unprocessable entity")
            self.pools.pop(p["id"], None)
            for t in [k for k, t in self.tokens.items() if t["pool_id"] == p["id"]]:
                self.tokens.pop(t, None)
            # The pool's agents exit and, with the pool gone, are no longer listed anywhere.
            for key in [k for k, a in self.agents.items() if a["pool_id"] == p["id"]]:
                self.agents.pop(key, None)
        return Response(204, None)

    # ---- agent tokens ----------------------------------------------------------------------------
    def render_token(self, t, secret=None):
        return {"id": t["id"], "type": "authentication-tokens",
                "attributes": {"created-at": t["created"], "last-used-at": t["last_used"],
                               "description": t["description"], "token": secret},
                "relationships": {"created-by": {"data": {"id": self.user_id, "type": "users"}}}}

    def token_list(self, req):
        p = self.find_pool(req)
        with self.lock:
            items = sorted((t for t in self.tokens.values() if t["pool_id"] == p["id"]), key=lambda t: t["created"])
            chunk, links, meta = self.paginate(req, items, "/agent-pools/%s/authentication-tokens" % p["id"])
            return self.doc({"data": [self.render_token(t) for t in chunk], "links": links, "meta": meta})

    def token_create(self, req):
        p = self.find_pool(req)
        data = req.json["data"]
        if data.get("type") != "authentication-tokens":
            raise invalid("type must be authentication-tokens", "/data/type")
        desc = (data.get("attributes") or {}).get("description")
        if not desc:
            raise invalid("Description can't be blank", "/data/attributes/description")
        secret = atlas_token()
        with self.lock:
            t = {"id": rid("at"), "pool_id": p["id"], "description": desc, "created": now_iso(), "last_used": None,
                 "digest": hashlib.sha256(secret.encode()).hexdigest()}
            self.tokens[t["id"]] = t
            return self.doc({"data": self.render_token(t, secret)}, 201)

    def token_show(self, req):
        t = self.tokens.get(req.params["id"])
        if t is None:
            raise not_found()
        return self.doc({"data": self.render_token(t)})

    def token_delete(self, req):
        with self.lock:
            t = self.tokens.pop(req.params["id"], None)
            if t is None:
                raise not_found()
            # An agent authenticated with a revoked token can no longer ping: it exits.
            for a in self.agents.values():
                if a["token_id"] == t["id"] and a["status"] != "exited":
                    a["status"] = "exited"
                    if a.get("busy_with"):
                        self.engine.agent_lost(a["busy_with"], a)
        return Response(204, None)

    # ---- agents --------------------------------------------------------------------------------
    def render_agent(self, a):
        if a["status"] != "exited":
            a["last_ping"] = now_iso()  # a live agent pings continuously
        return {"id": a["id"], "type": "agents",
                "attributes": {"name": a["name"], "status": a["status"], "ip-address": a["ip"],
                               "last-ping-at": a["last_ping"], "created-at": a["created"]},
                "links": {"self": "%s/agents/%s" % (API, a["id"])}}

    def agent_list(self, req):
        p = self.find_pool(req)
        with self.lock:
            items = sorted((a for a in self.agents.values() if a["pool_id"] == p["id"]), key=lambda a: a["created"])
            status = req.query.get("filter[status]")
            if status:
                items = [a for a in items if a["status"] == status]
            chunk, links, meta = self.paginate(req, items, "/agent-pools/%s/agents" % p["id"])
            return self.doc({"data": [self.render_agent(a) for a in chunk], "links": links, "meta": meta})

    def agent_show(self, req):
        a = self.agents.get(req.params["id"])
        if a is None:
            raise not_found()
        with self.lock:
            return self.doc({"data": self.render_agent(a)})

    def agent_delete(self, req):
        with self.lock:
            a = self.agents.get(req.params["id"])
            if a is None:
                raise not_found()
            if a["status"] not in ("exited", "errored"):
                raise invalid("Only exited or errored agents can be deleted (agent %s is %s)" % (a["id"], a["status"]),
                              status=422, title="unprocessable entity")
            self.agents.pop(a["id"], None)
        return Response(204, None)

    # ---- configuration versions ------------------------------------------------------------------
    def render_cv(self, cv):
        attrs = {"auto-queue-runs": cv["auto_queue_runs"], "error": cv["error"], "error-message": cv["error_message"],
                 "source": "tfe-api", "speculative": cv["speculative"], "status": cv["status"],
                 "status-timestamps": dict(cv["ts"]), "provisional": cv["provisional"]}
        if cv["status"] == "pending":
            attrs["upload-url"] = "%s/v1/object/%s" % (self.base_url(), cv["object"])
        base = "%s/configuration-versions/%s" % (API, cv["id"])
        return {"id": cv["id"], "type": "configuration-versions", "attributes": attrs,
                "relationships": {"ingress-attributes": {"data": None, "links": {"related": base + "/ingress-attributes"}}},
                "links": {"self": base, "download": base + "/download"}}

    def cv_create(self, req):
        ws = self.find_ws(req)
        attrs = (req.json.get("data") or {}).get("attributes") or {}
        with self.lock:
            cv = {"id": rid("cv"), "ws_id": ws["id"], "auto_queue_runs": attrs.get("auto-queue-runs", True),
                  "speculative": attrs.get("speculative", False), "provisional": attrs.get("provisional", False),
                  "status": "pending", "ts": {}, "error": None, "error_message": None, "files": None,
                  "object": secrets.token_urlsafe(24), "created": now_iso()}
            self.cvs[cv["id"]] = cv
            self.uploads[cv["object"]] = cv["id"]
            return self.doc({"data": self.render_cv(cv)}, 201)

    def cv_list(self, req):
        ws = self.find_ws(req)
        with self.lock:
            items = sorted((c for c in self.cvs.values() if c["ws_id"] == ws["id"]), key=lambda c: c["created"],
                           reverse=True)
            chunk, links, meta = self.paginate(req, items, "/workspaces/%s/configuration-versions" % ws["id"])
            return self.doc({"data": [self.render_cv(c) for c in chunk], "links": links, "meta": meta})

    def cv_show(self, req):
        cv = self.cvs.get(req.params["id"])
        if cv is None:
            raise not_found()
        return self.doc({"data": self.render_cv(cv)})

    def cv_upload(self, req):
        """PUT of the tar.gz to the upload URL (no API token: the URL itself is the credential)."""
        with self.lock:
            cv = self.cvs.get(self.uploads.get(req.params["object"], ""))
            if cv is None:
                return Response(404, "upload object not found or expired\n", content_type="text/plain")
            if cv["status"] not in ("pending",):
                return Response(409, "this configuration version was already uploaded\n", content_type="text/plain")
            ws = self.workspaces.get(cv["ws_id"]) or {}
            cv["ts"]["fetching-at"] = now_iso()
            try:
                cv["files"] = read_archive(req.body, ws.get("working-directory"))
                cv["digest"] = hashlib.sha256(req.body).hexdigest()
                cv["status"] = "uploaded"
                cv["ts"]["uploaded-at"] = now_iso()
                if not cv["speculative"] and ws:
                    ws["current_cv"] = cv["id"]
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                cv["status"] = "errored"
                cv["error"] = "unpack_failed"
                cv["error_message"] = "The uploaded configuration is not a valid tar.gz archive: %s" % exc
                cv["ts"]["errored-at"] = now_iso()
            queue = cv["status"] == "uploaded" and cv["auto_queue_runs"] and not cv["provisional"]
        if queue:
            self.engine.queue(ws, cv, message="Triggered via API", plan_only=cv["speculative"])
        return Response(200, None)

    def log_read(self, req):
        entry = self.logs.get(req.params["object"])
        if entry is None:
            return Response(404, "log not found\n", content_type="text/plain")
        run_id, phase = entry
        run = self.runs.get(run_id)
        text = "\n".join((run or {}).get("log", {}).get(phase, [])) + "\n"
        return Response(200, text, content_type="text/plain")

    # ---- state version outputs -------------------------------------------------------------------
    def render_output(self, o, reveal=False):
        return {"id": o["id"], "type": "state-version-outputs",
                "attributes": {"name": o["name"], "sensitive": o["sensitive"], "type": o["type"],
                               "value": o["value"] if reveal or not o["sensitive"] else None,
                               "detailed-type": o["detailed_type"]},
                "links": {"self": "%s/state-version-outputs/%s" % (API, o["id"])}}

    def outputs_current(self, req):
        ws = self.find_ws(req)
        with self.lock:
            if not ws.get("sv_id"):
                raise not_found()
            items = sorted((o for o in self.outputs.values() if o["ws_id"] == ws["id"] and o["sv_id"] == ws["sv_id"]),
                           key=lambda o: o["name"])
            chunk, links, meta = self.paginate(req, items, "/workspaces/%s/current-state-version-outputs" % ws["id"])
            return self.doc({"data": [self.render_output(o) for o in chunk], "links": links, "meta": meta})

    def output_show(self, req):
        o = self.outputs.get(req.params["id"])
        if o is None:
            raise not_found()
        # Reading one output by id returns its value even when sensitive (the API documents this).
        return self.doc({"data": self.render_output(o, reveal=True)})


def read_archive(blob, working_directory=None):
    """The root module's .tf files in a tar.gz (path -> text), from the workspace's working directory."""
    files = {}
    root = (working_directory or "").strip("/")
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = os.path.normpath(member.name).lstrip("./") if member.name.startswith("./") else os.path.normpath(member.name)
            if name.startswith("..") or os.path.isabs(name):
                raise ValueError("archive member %r escapes the archive" % member.name)
            folder, base = os.path.split(name)
            if folder != root or not base.endswith(".tf"):
                continue
            raw = tar.extractfile(member).read()
            try:
                files[base] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("%s is not UTF-8 text" % name)
    return files


def config_fingerprint(files):
    return hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()


__all__ = ["TfcApp", "hcl"]
