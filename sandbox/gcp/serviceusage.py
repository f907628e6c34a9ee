"""serviceusage v1: services get/list/enable/disable/batchEnable/batchGet and their operations."""

from __future__ import annotations

from ..web import ApiError
from .app import lro


def _service(app, name, enabled):
    return {
        "name": "projects/%s/services/%s" % (app.project_number, name),
        "parent": "projects/%s" % app.project_number,
        "config": {"name": name, "title": name},
        "state": "ENABLED" if enabled else "DISABLED",
    }


def _key(app, service):
    return "projects/%s/services/%s" % (app.project_number, service)


def _known(service):
    if not service.endswith(".googleapis.com") or len(service) < 16:
        raise ApiError(403, "Not found or permission denied for service(s): %s." % service, reason="forbidden",
                       details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED",
                                 "domain": "serviceusage.googleapis.com", "metadata": {"services": service}}])


def register(app):
    ops = {}

    def start(services, enable):
        def done():
            for svc in services:
                app.enabled[_key(app, svc)] = enable
            return {"@type": "type.googleapis.com/google.api.serviceusage.v1.%s" % (
                "BatchEnableServicesResponse" if enable else "DisableServiceResponse"),
                "services": [_service(app, s, enable) for s in services]}

        already = all(bool(app.enabled.get(_key(app, s))) == enable for s in services)
        op = app.sandbox.ops.start("serviceusage.enable", done, resource=",".join(services),
                                   duration=0 if already else None)
        name = "operations/acat.p2-%s-%s" % (app.project_number, op.id)
        ops[name] = op
        return lro(op, name)

    def get(req, p):
        service = p["name"].rsplit("/", 1)[-1]
        return _service(app, service, app.enabled.get(_key(app, service)))

    def list_(req, p):
        flt = req.query.get("filter", "")
        rows = []
        for key, on in sorted(app.enabled.items()):
            if flt == "state:ENABLED" and not on:
                continue
            if flt == "state:DISABLED" and on:
                continue
            rows.append(_service(app, key.rsplit("/", 1)[-1], on))
        size = int(req.query.get("pageSize", 50))
        start_at = int(req.query.get("pageToken") or 0)
        out = {"services": rows[start_at:start_at + size]}
        if start_at + size < len(rows):
            out["nextPageToken"] = str(start_at + size)
        return out

    def enable(req, p):
        service = p["name"].rsplit("/", 1)[-1]
        _known(service)
        return start([service], True)

    def disable(req, p):
        service = p["name"].rsplit("/", 1)[-1]
        _known(service)
        return start([service], False)

    def batch_enable(req, p):
        ids = req.json.get("serviceIds") or []
        if not ids or len(ids) > 20:
            raise ApiError(400, "serviceIds must name between 1 and 20 services", reason="badRequest")
        for s in ids:
            _known(s)
        return start(list(ids), True)

    def batch_get(req, p):
        names = req.query_list.get("names") or []
        return {"services": [_service(app, n.rsplit("/", 1)[-1], app.enabled.get(_key(app, n.rsplit("/", 1)[-1])))
                             for n in names]}

    def op_get(req, p):
        op = ops.get(p["name"])
        if op is None:
            raise ApiError(404, "Operation %s not found" % p["name"], reason="notFound")
        op.poll()
        return lro(op, p["name"])

    app.handle("serviceusage.services.get", get)
    app.handle("serviceusage.services.list", list_)
    app.handle("serviceusage.services.enable", enable)
    app.handle("serviceusage.services.disable", disable)
    app.handle("serviceusage.services.batchEnable", batch_enable)
    app.handle("serviceusage.services.batchGet", batch_get)
    app.handle("serviceusage.operations.get", op_get)
