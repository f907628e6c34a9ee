"""HCP Terraform organizations (the one the sandbox serves), workspaces and their tags.

`find_org` and `find_ws` are the look-ups the other resource modules use for `{org}`, `{name}` and `{ws}`.
"""

from __future__ import annotations

import re

from ..web import Response
from .common import API, invalid, not_found, now_iso, rid

DEFAULT_TF_VERSION = "1.9.8"
WS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,90}$")
TAG_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9:_-]{0,253}[a-z0-9])?$")
TF_VERSION = re.compile(r"^(latest|(~>|>=|<=|>|<|=)?\s*\d+\.\d+(\.\d+)?(-[0-9A-Za-z.]+)?)$")


def find_org(app, req):
    name = req.params.get("org")
    if name not in app.orgs:
        raise not_found()
    return app.orgs[name]


def find_ws(app, req):
    with app.lock:
        if req.params.get("ws"):
            ws = app.workspaces.get(req.params["ws"])
        else:
            find_org(app, req)
            ws = next((w for w in app.workspaces.values()
                       if w["org"] == req.params["org"] and w["name"] == req.params["name"]), None)
    if ws is None:
        raise not_found()
    return ws


class Workspaces:
    def __init__(self, app):
        self.app = app

    def org_show(self, req):
        org = find_org(self.app, req)
        return self.app.doc({"data": {
            "id": org["name"], "type": "organizations",
            "attributes": {"name": org["name"], "external-id": org["external_id"], "created-at": org["created"],
                           "email": "platform@skyforge.example", "collaborator-auth-policy": "password",
                           "cost-estimation-enabled": False, "plan-expired": False, "plan-is-trial": False,
                           "plan-is-enterprise": False, "plan-identifier": "free_standard",
                           "allow-force-delete-workspaces": False,
                           "permissions": {"can-update": True, "can-destroy": True, "can-create-workspace": True,
                                           "can-update-agent-pools": True, "can-manage-tags": True}},
            "links": {"self": "%s/organizations/%s" % (API, org["name"])}}})

    def render_ws(self, ws):
        run = self.app.runs.get(ws.get("current_run") or "")
        latest = self.app.runs.get(ws.get("latest_run") or "")
        outputs = [o for o in self.app.outputs.values() if o["ws_id"] == ws["id"] and o["sv_id"] == ws.get("sv_id")]
        vars_ = [v for v in self.app.vars.values() if v["ws_id"] == ws["id"]]
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
        org = find_org(self.app, req)
        with self.app.lock:
            items = [w for w in self.app.workspaces.values() if w["org"] == org["name"]]
            search = req.query.get("search[name]")
            if search:
                items = [w for w in items if search.lower() in w["name"].lower()]
            tags = req.query.get("search[tags]")
            if tags:
                want = {t.strip() for t in tags.split(",") if t.strip()}
                items = [w for w in items if want <= w["tags"]]
            items.sort(key=lambda w: w["name"])
            chunk, links, meta = self.app.paginate(req, items, "/organizations/%s/workspaces" % org["name"])
            return self.app.doc({"data": [self.render_ws(w) for w in chunk], "links": links, "meta": meta})

    def ws_show(self, req):
        ws = find_ws(self.app, req)
        with self.app.lock:
            return self.app.doc({"data": self.render_ws(ws)})

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
            clash = next((w for w in self.app.workspaces.values()
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
            pool = self.app.pools.get(pool_id)
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
        org = find_org(self.app, req)
        data = req.json["data"]
        with self.app.lock:
            ws = {"org": org["name"], "description": None, "auto-apply": False, "allow-destroy-plan": True,
                  "assessments-enabled": False, "file-triggers-enabled": True, "global-remote-state": False,
                  "queue-all-runs": False, "speculative-enabled": True, "working-directory": None,
                  "trigger-prefixes": [], "trigger-patterns": [], "terraform-version": DEFAULT_TF_VERSION,
                  "tags": set(), "created": now_iso(), "run_failures": 0, "runs_count": 0, "state": None}
            self._apply_ws_attrs(ws, data.get("attributes") or {}, creating=True)
            ws["id"] = rid("ws")
            ws["updated"] = ws["created"]
            self.app.workspaces[ws["id"]] = ws
            return self.app.doc({"data": self.render_ws(ws)}, 201)

    def ws_update(self, req):
        ws = find_ws(self.app, req)
        data = req.json["data"]
        with self.app.lock:
            draft = dict(ws)
            self._apply_ws_attrs(draft, data.get("attributes") or {}, creating=False)
            ws.update(draft)
            ws["updated"] = now_iso()
            return self.app.doc({"data": self.render_ws(ws)})

    def ws_delete(self, req):
        ws = find_ws(self.app, req)
        with self.app.lock:
            self.app.workspaces.pop(ws["id"], None)
            for table in (self.app.vars, self.app.cvs, self.app.runs, self.app.outputs):
                for key in [k for k, v in table.items() if v.get("ws_id") == ws["id"]]:
                    table.pop(key, None)
            for pool in self.app.pools.values():
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
        ws = find_ws(self.app, req)
        return self.app.doc({"data": [{"id": "tag-%s" % t, "type": "tags", "attributes": {"name": t}}
                                      for t in sorted(ws["tags"])]})

    def tags_add(self, req):
        ws = find_ws(self.app, req)
        with self.app.lock:
            ws["tags"] |= self._tag_names(req)
            ws["updated"] = now_iso()
        return Response(204, None)

    def tags_remove(self, req):
        ws = find_ws(self.app, req)
        with self.app.lock:
            ws["tags"] -= self._tag_names(req)
            ws["updated"] = now_iso()
        return Response(204, None)


def register(app):
    ws = Workspaces(app)
    app.handle("GET", "/organizations/{org}", ws.org_show)
    app.handle("GET", "/organizations/{org}/workspaces", ws.ws_list)
    app.handle("POST", "/organizations/{org}/workspaces", ws.ws_create)
    app.handle("GET", "/organizations/{org}/workspaces/{name}", ws.ws_show)
    app.handle("PATCH", "/organizations/{org}/workspaces/{name}", ws.ws_update)
    app.handle("DELETE", "/organizations/{org}/workspaces/{name}", ws.ws_delete)
    app.handle("GET", "/workspaces/{ws}", ws.ws_show)
    app.handle("PATCH", "/workspaces/{ws}", ws.ws_update)
    app.handle("DELETE", "/workspaces/{ws}", ws.ws_delete)
    app.handle("GET", "/workspaces/{ws}/relationships/tags", ws.tags_list)
    app.handle("POST", "/workspaces/{ws}/relationships/tags", ws.tags_add)
    app.handle("DELETE", "/workspaces/{ws}/relationships/tags", ws.tags_remove)
