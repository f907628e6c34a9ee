"""compute v1 networks (global): custom or auto mode, MTU, routing mode; in use while anything refers to them."""

from __future__ import annotations

from .compute import Collection
from .compute_common import invalid


class Networks(Collection):
    def prepare(self, body, p, path):
        mtu = body.get("mtu", 1460)
        if not 1300 <= int(mtu) <= 8896:
            raise invalid("Invalid value for field 'resource.mtu': '%s'. MTU must be between 1300 and 8896." % mtu)
        routing = (body.get("routingConfig") or {}).get("routingMode", "REGIONAL")
        return {
            "description": body.get("description", ""),
            "autoCreateSubnetworks": body.get("autoCreateSubnetworks", True),
            "mtu": int(mtu),
            "routingConfig": {"routingMode": routing, "bgpBestPathSelectionMode": "LEGACY"},
            "networkFirewallPolicyEnforcementOrder": "AFTER_CLASSIC_FIREWALL",
            "subnetworks": [],
        }

    def update(self, current, body, replace):
        new = dict(current)
        for key in ("description", "mtu"):
            if key in body:
                new[key] = body[key]
        if "routingConfig" in body:
            new["routingConfig"] = dict(current["routingConfig"], **body["routingConfig"])
        if body.get("autoCreateSubnetworks") not in (None, current["autoCreateSubnetworks"]):
            raise invalid("Invalid value for field 'resource.autoCreateSubnetworks': autoCreateSubnetworks cannot be "
                          "changed; use switchToCustomMode.")
        return new

    def user_of(self, net):
        me = net["selfLink"]
        for coll in ("subnetworks", "firewalls", "routers", "addresses"):
            for row in self.compute.table(coll).values():
                if row.get("network") == me:
                    return row["selfLink"]
        if net.get("peerings"):
            return net["peerings"][0]["network"]
        return None


def register(app):
    compute = app.compute
    compute.kinds["networks"] = Networks(compute)
    for verb, fn in compute.handlers("networks", "get", "list", "insert", "delete", "patch"):
        app.handle("compute.networks.%s" % verb, fn)
