"""HCP Terraform agent pools, their authentication tokens (the secret is shown once) and their agents.

Agents appear when a host presents a valid token: `TfcApp.register_agent`.
"""

from __future__ import annotations

import hashlib
import re

from ..web import Response
from .common import API, atlas_token, invalid, not_found, now_iso, rid
from .workspaces import find_org


def find_pool(app, req):
    p = app.pools.get(req.params["pool"])
    if p is None:
        raise not_found()
    return p


class AgentPools:
    def __init__(self, app):
        self.app = app

    def render_pool(self, p):
        base = "%s/agent-pools/%s" % (API, p["id"])
        using = sorted(w["id"] for w in self.app.workspaces.values() if w.get("agent_pool_id") == p["id"])
        return {"id": p["id"], "type": "agent-pools",
                "attributes": {"name": p["name"], "created-at": p["created"], "organization-scoped": p["org_scoped"],
                               "agent-count": sum(1 for a in self.app.agents.values()
                                                  if a["pool_id"] == p["id"] and a["status"] != "exited")},
                "relationships": {
                    "agents": {"links": {"related": base + "/agents"}},
                    "authentication-tokens": {"links": {"related": base + "/authentication-tokens"}},
                    "workspaces": {"data": [{"id": w, "type": "workspaces"} for w in using]},
                    "allowed-workspaces": {"data": [{"id": w, "type": "workspaces"} for w in p["allowed_ws"]]},
                    "excluded-workspaces": {"data": [{"id": w, "type": "workspaces"} for w in p["excluded_ws"]]},
                    "organization": {"data": {"id": p["org"], "type": "organizations"}}},
                "links": {"self": base}}

    def pool_list(self, req):
        org = find_org(self.app, req)
        with self.app.lock:
            items = sorted((p for p in self.app.pools.values() if p["org"] == org["name"]), key=lambda p: p["created"])
            if req.query.get("q"):
                items = [p for p in items if req.query["q"].lower() in p["name"].lower()]
            chunk, links, meta = self.app.paginate(req, items, "/organizations/%s/agent-pools" % org["name"])
            meta["status-counts"] = {"total": len(items), "matching": len(items)}
            return self.app.doc({"data": [self.render_pool(p) for p in chunk], "links": links, "meta": meta})

    def pool_show(self, req):
        p = find_pool(self.app, req)
        with self.app.lock:
            return self.app.doc({"data": self.render_pool(p)})

    def _apply_pool(self, p, data, creating):
        attrs = data.get("attributes") or {}
        rels = data.get("relationships") or {}
        if "name" in attrs or creating:
            name = attrs.get("name")
            if not name or not isinstance(name, str):
                raise invalid("Name can't be blank", "/data/attributes/name")
            if not re.match(r"^[A-Za-z0-9_.-]{1,90}$", name):
                raise invalid("Name is invalid: use letters, numbers, -, _ and .", "/data/attributes/name")
            if any(o["name"] == name and o["org"] == p["org"] and o["id"] != p.get("id") for o in self.app.pools.values()):
                raise invalid("Name has already been taken", "/data/attributes/name")
            p["name"] = name
        if "organization-scoped" in attrs:
            p["org_scoped"] = bool(attrs["organization-scoped"])
        for rel, field in (("allowed-workspaces", "allowed_ws"), ("excluded-workspaces", "excluded_ws")):
            if rel in rels:
                ids = []
                for ref in (rels[rel] or {}).get("data") or []:
                    ws = self.app.workspaces.get(ref.get("id"))
                    if ws is None or ws["org"] != p["org"] or ref.get("type") != "workspaces":
                        raise invalid("Workspace %s was not found in organization %s" % (ref.get("id"), p["org"]),
                                      "/data/relationships/%s" % rel)
                    ids.append(ws["id"])
                p[field] = ids

    def pool_create(self, req):
        org = find_org(self.app, req)
        with self.app.lock:
            p = {"org": org["name"], "org_scoped": True, "allowed_ws": [], "excluded_ws": [], "created": now_iso()}
            self._apply_pool(p, req.json["data"], creating=True)
            p["id"] = rid("apool")
            self.app.pools[p["id"]] = p
            return self.app.doc({"data": self.render_pool(p)}, 201)

    def pool_update(self, req):
        p = find_pool(self.app, req)
        with self.app.lock:
            draft = dict(p)
            self._apply_pool(draft, req.json["data"], creating=False)
            p.update(draft)
            return self.app.doc({"data": self.render_pool(p)})

    def pool_delete(self, req):
        p = find_pool(self.app, req)
        with self.app.lock:
            using = sorted(w["name"] for w in self.app.workspaces.values() if w.get("agent_pool_id") == p["id"])
            if using:
                raise invalid("Agent pool %s is still used by workspace(s) %s: switch them to another execution "
                              "mode or pool first" % (p["name"], ", ".join(using)), status=422,
                              title="unprocessable entity")
            self.app.pools.pop(p["id"], None)
            for t in [k for k, t in self.app.tokens.items() if t["pool_id"] == p["id"]]:
                self.app.tokens.pop(t, None)
            # The pool's agents exit and, with the pool gone, are no longer listed anywhere.
            for key in [k for k, a in self.app.agents.items() if a["pool_id"] == p["id"]]:
                self.app.agents.pop(key, None)
        return Response(204, None)

    # ---- agent tokens ----------------------------------------------------------------------------
    def render_token(self, t, secret=None):
        return {"id": t["id"], "type": "authentication-tokens",
                "attributes": {"created-at": t["created"], "last-used-at": t["last_used"],
                               "description": t["description"], "token": secret},
                "relationships": {"created-by": {"data": {"id": self.app.user_id, "type": "users"}}}}

    def token_list(self, req):
        p = find_pool(self.app, req)
        with self.app.lock:
            items = sorted((t for t in self.app.tokens.values() if t["pool_id"] == p["id"]), key=lambda t: t["created"])
            chunk, links, meta = self.app.paginate(req, items, "/agent-pools/%s/authentication-tokens" % p["id"])
            return self.app.doc({"data": [self.render_token(t) for t in chunk], "links": links, "meta": meta})

    def token_create(self, req):
        p = find_pool(self.app, req)
        data = req.json["data"]
        if data.get("type") != "authentication-tokens":
            raise invalid("type must be authentication-tokens", "/data/type")
        desc = (data.get("attributes") or {}).get("description")
        if not desc:
            raise invalid("Description can't be blank", "/data/attributes/description")
        secret = atlas_token()
        with self.app.lock:
            t = {"id": rid("at"), "pool_id": p["id"], "description": desc, "created": now_iso(), "last_used": None,
                 "digest": hashlib.sha256(secret.encode()).hexdigest()}
            self.app.tokens[t["id"]] = t
            return self.app.doc({"data": self.render_token(t, secret)}, 201)

    def token_show(self, req):
        t = self.app.tokens.get(req.params["id"])
        if t is None:
            raise not_found()
        return self.app.doc({"data": self.render_token(t)})

    def token_delete(self, req):
        with self.app.lock:
            t = self.app.tokens.pop(req.params["id"], None)
            if t is None:
                raise not_found()
            # An agent authenticated with a revoked token can no longer ping: it exits.
            for a in self.app.agents.values():
                if a["token_id"] == t["id"] and a["status"] != "exited":
                    a["status"] = "exited"
                    if a.get("busy_with"):
                        self.app.engine.agent_lost(a["busy_with"], a)
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
        p = find_pool(self.app, req)
        with self.app.lock:
            items = sorted((a for a in self.app.agents.values() if a["pool_id"] == p["id"]), key=lambda a: a["created"])
            status = req.query.get("filter[status]")
            if status:
                items = [a for a in items if a["status"] == status]
            chunk, links, meta = self.app.paginate(req, items, "/agent-pools/%s/agents" % p["id"])
            return self.app.doc({"data": [self.render_agent(a) for a in chunk], "links": links, "meta": meta})

    def agent_show(self, req):
        a = self.app.agents.get(req.params["id"])
        if a is None:
            raise not_found()
        with self.app.lock:
            return self.app.doc({"data": self.render_agent(a)})

    def agent_delete(self, req):
        with self.app.lock:
            a = self.app.agents.get(req.params["id"])
            if a is None:
                raise not_found()
            if a["status"] not in ("exited", "errored"):
                raise invalid("Only exited or errored agents can be deleted (agent %s is %s)" % (a["id"], a["status"]),
                              status=422, title="unprocessable entity")
            self.app.agents.pop(a["id"], None)
        return Response(204, None)


def register(app):
    pools = AgentPools(app)
    app.handle("GET", "/organizations/{org}/agent-pools", pools.pool_list)
    app.handle("POST", "/organizations/{org}/agent-pools", pools.pool_create)
    app.handle("GET", "/agent-pools/{pool}", pools.pool_show)
    app.handle("PATCH", "/agent-pools/{pool}", pools.pool_update)
    app.handle("DELETE", "/agent-pools/{pool}", pools.pool_delete)
    app.handle("GET", "/agent-pools/{pool}/authentication-tokens", pools.token_list)
    app.handle("POST", "/agent-pools/{pool}/authentication-tokens", pools.token_create)
    app.handle("GET", "/authentication-tokens/{id}", pools.token_show)
    app.handle("DELETE", "/authentication-tokens/{id}", pools.token_delete)
    app.handle("GET", "/agent-pools/{pool}/agents", pools.agent_list)
    app.handle("GET", "/agents/{id}", pools.agent_show)
    app.handle("DELETE", "/agents/{id}", pools.agent_delete)
