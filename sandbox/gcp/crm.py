"""cloudresourcemanager v1 and v3: project IAM policies with etags (the deployer starts as owner)."""

from __future__ import annotations

from ..web import ApiError
from .iam import get_policy, set_policy


def register(app):
    def resource(p):
        project = p.get("projectsId") or p.get("projectId") or (p.get("resource") or p.get("name") or "").split("/")[-1]
        if project not in (app.project, app.project_number):
            raise ApiError(403, "The caller does not have permission", reason="forbidden")
        return "projects/%s" % app.project

    def initial():
        return [{"role": "roles/owner", "members": ["serviceAccount:%s" % app.auth.deployer_email]}]

    def get(req, p):
        return get_policy(app.sandbox, resource(p), initial())

    def set_(req, p):
        res = resource(p)
        get_policy(app.sandbox, res, initial())
        return set_policy(app.sandbox, res, req.json.get("policy") or {})

    def project(req, p):
        resource(p)
        if p.get("projectId"):  # v1: projects/{projectId}
            return {"projectNumber": app.project_number, "projectId": app.project, "lifecycleState": "ACTIVE",
                    "name": app.project, "createTime": "2024-01-01T00:00:00.000Z"}
        return {"name": "projects/%s" % app.project_number, "projectId": app.project, "state": "ACTIVE",
                "displayName": app.project, "createTime": "2024-01-01T00:00:00.000Z", "etag": "W/\"sandbox\""}

    app.handle("cloudresourcemanager.projects.get", project)
    app.handle("cloudresourcemanager.projects.getIamPolicy", get)
    app.handle("cloudresourcemanager.projects.setIamPolicy", set_)
