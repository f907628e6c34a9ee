"""HCP Terraform current state-version outputs (a sensitive value only when read by id)."""

from __future__ import annotations

from .common import API, not_found
from .workspaces import find_ws


class StateVersions:
    def __init__(self, app):
        self.app = app

    def render_output(self, o, reveal=False):
        return {"id": o["id"], "type": "state-version-outputs",
                "attributes": {"name": o["name"], "sensitive": o["sensitive"], "type": o["type"],
                               "value": o["value"] if reveal or not o["sensitive"] else None,
                               "detailed-type": o["detailed_type"]},
                "links": {"self": "%s/state-version-outputs/%s" % (API, o["id"])}}

    def outputs_current(self, req):
        ws = find_ws(self.app, req)
        with self.app.lock:
            if not ws.get("sv_id"):
                raise not_found()
            items = sorted((o for o in self.app.outputs.values() if o["ws_id"] == ws["id"] and o["sv_id"] == ws["sv_id"]),
                           key=lambda o: o["name"])
            chunk, links, meta = self.app.paginate(req, items, "/workspaces/%s/current-state-version-outputs" % ws["id"])
            return self.app.doc({"data": [self.render_output(o) for o in chunk], "links": links, "meta": meta})

    def output_show(self, req):
        o = self.app.outputs.get(req.params["id"])
        if o is None:
            raise not_found()
        # Reading one output by id returns its value even when sensitive (the API documents this).
        return self.app.doc({"data": self.render_output(o, reveal=True)})


def register(app):
    sv = StateVersions(app)
    app.handle("GET", "/workspaces/{ws}/current-state-version-outputs", sv.outputs_current)
    app.handle("GET", "/state-version-outputs/{id}", sv.output_show)
