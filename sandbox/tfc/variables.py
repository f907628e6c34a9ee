"""HCP Terraform workspace variables (terraform and env; a sensitive value is write-only)."""

from __future__ import annotations

import re
import secrets

from ..web import Response
from .common import API, invalid, not_found, now_iso, rid
from .workspaces import find_ws


class Variables:
    def __init__(self, app):
        self.app = app

    def render_var(self, v):
        ws = self.app.workspaces.get(v["ws_id"]) or {}
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
        ws = find_ws(self.app, req)
        with self.app.lock:
            items = sorted((v for v in self.app.vars.values() if v["ws_id"] == ws["id"]), key=lambda v: v["created"])
            return self.app.doc({"data": [self.render_var(v) for v in items]})

    def find_var(self, req):
        ws = find_ws(self.app, req)
        v = self.app.vars.get(req.params["id"])
        if v is None or v["ws_id"] != ws["id"]:
            raise not_found()
        return ws, v

    def var_show(self, req):
        _ws, v = self.find_var(req)
        return self.app.doc({"data": self.render_var(v)})

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
        clash = next((o for o in self.app.vars.values() if o["ws_id"] == v["ws_id"] and o["key"] == v["key"]
                      and o["category"] == v["category"] and o["id"] != v.get("id")), None)
        if clash:
            raise invalid("Key has already been taken", "/data/attributes/key")
        v.setdefault("value", "")
        v["value"] = "" if v["value"] is None else v["value"]
        v["version_id"] = secrets.token_hex(18)

    def var_create(self, req):
        ws = find_ws(self.app, req)
        data = req.json["data"]
        with self.app.lock:
            v = {"ws_id": ws["id"], "description": None, "hcl": False, "sensitive": False, "created": now_iso()}
            self._apply_var(v, data.get("attributes") or {}, creating=True)
            v["id"] = rid("var")
            self.app.vars[v["id"]] = v
            return self.app.doc({"data": self.render_var(v)}, 201)

    def var_update(self, req):
        _ws, v = self.find_var(req)
        data = req.json["data"]
        with self.app.lock:
            draft = dict(v)
            self._apply_var(draft, data.get("attributes") or {}, creating=False)
            v.update(draft)
            return self.app.doc({"data": self.render_var(v)})

    def var_delete(self, req):
        _ws, v = self.find_var(req)
        with self.app.lock:
            self.app.vars.pop(v["id"], None)
        return Response(204, None)


def register(app):
    v = Variables(app)
    app.handle("GET", "/workspaces/{ws}/vars", v.var_list)
    app.handle("POST", "/workspaces/{ws}/vars", v.var_create)
    app.handle("GET", "/workspaces/{ws}/vars/{id}", v.var_show)
    app.handle("PATCH", "/workspaces/{ws}/vars/{id}", v.var_update)
    app.handle("DELETE", "/workspaces/{ws}/vars/{id}", v.var_delete)
