"""HCP Terraform configuration versions: created through the API, then a tar.gz PUT to their upload URL
(no API token: the URL itself is the credential), which queues a run when the version asks for it.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import tarfile

from ..web import Response
from .common import API, not_found, now_iso, rid
from .workspaces import find_ws


class ConfigurationVersions:
    def __init__(self, app):
        self.app = app

    def render_cv(self, cv):
        attrs = {"auto-queue-runs": cv["auto_queue_runs"], "error": cv["error"], "error-message": cv["error_message"],
                 "source": "tfe-api", "speculative": cv["speculative"], "status": cv["status"],
                 "status-timestamps": dict(cv["ts"]), "provisional": cv["provisional"]}
        if cv["status"] == "pending":
            attrs["upload-url"] = "%s/v1/object/%s" % (self.app.base_url(), cv["object"])
        base = "%s/configuration-versions/%s" % (API, cv["id"])
        return {"id": cv["id"], "type": "configuration-versions", "attributes": attrs,
                "relationships": {"ingress-attributes": {"data": None, "links": {"related": base + "/ingress-attributes"}}},
                "links": {"self": base, "download": base + "/download"}}

    def cv_create(self, req):
        ws = find_ws(self.app, req)
        attrs = (req.json.get("data") or {}).get("attributes") or {}
        with self.app.lock:
            cv = {"id": rid("cv"), "ws_id": ws["id"], "auto_queue_runs": attrs.get("auto-queue-runs", True),
                  "speculative": attrs.get("speculative", False), "provisional": attrs.get("provisional", False),
                  "status": "pending", "ts": {}, "error": None, "error_message": None, "files": None,
                  "object": secrets.token_urlsafe(24), "created": now_iso()}
            self.app.cvs[cv["id"]] = cv
            self.app.uploads[cv["object"]] = cv["id"]
            return self.app.doc({"data": self.render_cv(cv)}, 201)

    def cv_list(self, req):
        ws = find_ws(self.app, req)
        with self.app.lock:
            items = sorted((c for c in self.app.cvs.values() if c["ws_id"] == ws["id"]), key=lambda c: c["created"],
                           reverse=True)
            chunk, links, meta = self.app.paginate(req, items, "/workspaces/%s/configuration-versions" % ws["id"])
            return self.app.doc({"data": [self.render_cv(c) for c in chunk], "links": links, "meta": meta})

    def cv_show(self, req):
        cv = self.app.cvs.get(req.params["id"])
        if cv is None:
            raise not_found()
        return self.app.doc({"data": self.render_cv(cv)})

    def cv_upload(self, req):
        """PUT of the tar.gz to the upload URL (no API token: the URL itself is the credential)."""
        with self.app.lock:
            cv = self.app.cvs.get(self.app.uploads.get(req.params["object"], ""))
            if cv is None:
                return Response(404, "upload object not found or expired\n", content_type="text/plain")
            if cv["status"] not in ("pending",):
                return Response(409, "this configuration version was already uploaded\n", content_type="text/plain")
            ws = self.app.workspaces.get(cv["ws_id"]) or {}
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
            self.app.engine.queue(ws, cv, message="Triggered via API", plan_only=cv["speculative"])
        return Response(200, None)


def register(app):
    cvs = ConfigurationVersions(app)
    app.handle("GET", "/workspaces/{ws}/configuration-versions", cvs.cv_list)
    app.handle("POST", "/workspaces/{ws}/configuration-versions", cvs.cv_create)
    app.handle("GET", "/configuration-versions/{id}", cvs.cv_show)
    app.handle("PUT", "/v1/object/{object}", cvs.cv_upload, under_api=False)


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
