"""servicenetworking v1: the Private Service Access peering (connections) and its operations."""

from __future__ import annotations

from ..web import ApiError
from .app import lro
from .compute_common import link, unlink

PEERING = "servicenetworking-googleapis-com"
SERVICE = "services/servicenetworking.googleapis.com"


def _network_path(app, ref):
    """'projects/<number or id>/global/networks/<n>' -> the compute store key (by project id)."""
    path = unlink(ref or "")
    parts = path.split("/")
    if len(parts) != 5 or parts[0] != "projects" or parts[2:4] != ["global", "networks"]:
        raise ApiError(400, "Invalid network '%s': expected projects/{project_number}/global/networks/{network}." % ref,
                       reason="badRequest")
    if parts[1] not in (app.project, app.project_number):
        raise ApiError(403, "Permission denied on project %s." % parts[1], reason="forbidden")
    return "projects/%s/global/networks/%s" % (app.project, parts[4])


def psa_ranges(sandbox, network_link):
    """The VPC_PEERING ranges peered to a network, as [(name, 'a.b.c.d/n')] (for Cloud SQL private IPs)."""
    conns = sandbox.store.table("servicenetworking.connections")
    conn = conns.get(unlink(network_link))
    if conn is None:
        return []
    out = []
    addresses = sandbox.store.table("compute.addresses")
    for name in conn["reservedPeeringRanges"]:
        addr = addresses.get("projects/%s/global/addresses/%s" % (unlink(network_link).split("/")[1], name))
        if addr:
            out.append((name, "%s/%s" % (addr["address"], addr["prefixLength"])))
    return out


def register(app):
    ops = {}
    conns = app.sandbox.store.table("servicenetworking.connections")

    def producers(net_path):
        """Cloud SQL and Memorystore instances that hold an address of the network's peered ranges."""
        sql = [i for i in app.sandbox.store.table("sqladmin.instances").values()
               if unlink((i.get("settings", {}).get("ipConfiguration") or {}).get("privateNetwork", "")) == net_path]
        redis = [i for i in app.sandbox.store.table("redis.instances").values()
                 if i.get("connectMode") == "PRIVATE_SERVICE_ACCESS" and i.get("authorizedNetwork") == net_path]
        return sql + redis

    def start(kind, fn, resource):
        op = app.sandbox.ops.start(kind, fn, resource=resource, can_fail=True)
        name = "operations/pssn.p24-%s-%s" % (app.project_number, op.id)
        ops[name] = op
        return lro(op, name)

    def check_ranges(net_path, ranges):
        if not ranges:
            raise ApiError(400, "Required field reservedPeeringRanges is empty: allocate a range with purpose "
                                "VPC_PEERING first.", reason="badRequest")
        for name in ranges:
            addr = app.sandbox.store.table("compute.addresses").get("projects/%s/global/addresses/%s" % (app.project, name))
            if addr is None or addr.get("purpose") != "VPC_PEERING" or unlink(addr.get("network")) != net_path:
                raise ApiError(400, "Allocated IP range '%s' not found in network." % name, reason="badRequest")

    def peer(net_path, ranges):
        def done():
            net = app.compute.table("networks").get(net_path)
            if net is None:
                raise ApiError(404, "network %s was deleted" % net_path)
            peerings = [p for p in net.get("peerings", []) if p["name"] != PEERING]
            peerings.append({"name": PEERING, "network": link("projects/%s/global/networks/%s" % (
                "servicenetworking-tenant", "servicenetworking")), "state": "ACTIVE", "stateDetails": "[2026-11-24] Connected.",
                "autoCreateRoutes": True, "exportCustomRoutes": False, "importCustomRoutes": False,
                "exchangeSubnetRoutes": True, "stackType": "IPV4_ONLY", "_ranges": list(ranges)})
            net["peerings"] = peerings
            conns[net_path] = {"network": "projects/%s/global/networks/%s" % (app.project_number, net_path.rsplit("/", 1)[-1]),
                               "reservedPeeringRanges": list(ranges), "peering": PEERING, "service": SERVICE}
            return dict(conns[net_path], **{"@type": "type.googleapis.com/google.cloud.servicenetworking.v1.Connection"})
        return done

    def create(req, p):
        body = req.json
        net_path = _network_path(app, body.get("network"))
        if net_path not in app.compute.table("networks"):
            raise ApiError(400, "Network %s not found." % body.get("network"), reason="badRequest")
        if net_path in conns:
            raise ApiError(409, "Cannot modify allocated ranges in CreateConnection. Please use UpdateConnection.",
                           reason="alreadyExists")
        check_ranges(net_path, body.get("reservedPeeringRanges"))
        return start("servicenetworking.connection", peer(net_path, body["reservedPeeringRanges"]), net_path)

    def list_(req, p):
        net_path = _network_path(app, req.query.get("network"))
        conn = conns.get(net_path)
        return {"connections": [conn]} if conn else {}

    def patch(req, p):
        body = req.json
        net_path = _network_path(app, body.get("network"))
        if net_path not in conns:
            raise ApiError(404, "Connection for network %s not found." % body.get("network"), reason="notFound")
        check_ranges(net_path, body.get("reservedPeeringRanges"))
        removed = set(conns[net_path]["reservedPeeringRanges"]) - set(body["reservedPeeringRanges"])
        if removed and req.query.get("force") != "true" and producers(net_path):
            raise ApiError(400, "Cannot remove allocated range(s) %s in use by producer services; use force=true."
                           % sorted(removed), reason="badRequest")
        return start("servicenetworking.connection", peer(net_path, body["reservedPeeringRanges"]), net_path)

    def delete(req, p):
        net_path = _network_path(app, req.json.get("consumerNetwork"))
        if net_path not in conns:
            raise ApiError(404, "Connection not found.", reason="notFound")
        if producers(net_path):
            raise ApiError(400, "Failed to delete connection; Producer services (e.g. CloudSQL, Cloud Memstore, etc.) "
                                "are still using this connection.", reason="badRequest")

        def done():
            conns.pop(net_path, None)
            net = app.compute.table("networks").get(net_path)
            if net is not None:
                net["peerings"] = [x for x in net.get("peerings", []) if x["name"] != PEERING]
            return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return start("servicenetworking.connection", done, net_path)

    def op_get(req, p):
        op = ops.get(p["name"])
        if op is None:
            raise ApiError(404, "Operation %s not found" % p["name"], reason="notFound")
        return lro(op, p["name"])

    app.handle("servicenetworking.services.connections.create", create)
    app.handle("servicenetworking.services.connections.list", list_)
    app.handle("servicenetworking.services.connections.patch", patch)
    app.handle("servicenetworking.services.connections.deleteConnection", delete)
    app.handle("servicenetworking.operations.get", op_get)
