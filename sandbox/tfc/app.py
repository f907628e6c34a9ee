"""HCP Terraform API v2 (JSON:API) stand-in: routing, token auth and rate limit, request validation, pagination, and
the state every resource shares. The resources are modules that register their handlers with
`app.handle(method, template, fn)`: workspaces.py (the organization, workspaces, tags), variables.py,
agent_pools.py (pools, agent tokens, agents), configuration_versions.py, runs.py (runs that walk the real state
machine, their logs) and state_versions.py (current state-version outputs).

Requests are validated against ../shared/specs/tfc (see spec.py); uploaded configurations are read by
a minimal HCL reader (hcl.py) so a run plans what the configuration says: it errors when the
configuration does not parse or a variable has no value, plans no changes when nothing changed, and
its outputs are the configuration's literal and `var.x` outputs.
"""

from __future__ import annotations

import collections
import hashlib
import os
import secrets
import threading
import time

from ..web import ApiError, App, Response
from . import agent_pools, configuration_versions, hcl, runs, spec as specmod, state_versions, variables, workspaces
from .common import API, JSONAPI, ORGANIZATION, TITLES, atlas_token, invalid, now_iso, rid

RATE_LIMIT = 30  # requests per second per token, as HCP Terraform documents
# In the order their routes were always registered (equal-length routes keep it).
RESOURCE_MODULES = (workspaces, variables, agent_pools, configuration_versions, runs, state_versions)


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
        self.engine = None  # the run engine, from runs.register
        for module in RESOURCE_MODULES:
            module.register(self)

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

    def handle(self, method, template, handler, schema=None, under_api=True):
        """Route /api/v2<template>; bodies are validated against the spec's operation (or `schema`).

        under_api=False: a URL the API hands out (upload, log), served as it is, without token or validation.
        """
        if not under_api:
            self.route(method, template, handler)
            return

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


__all__ = ["TfcApp", "hcl"]
