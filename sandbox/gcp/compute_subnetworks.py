"""compute v1 subnetworks (regional): private primary and secondary ranges that overlap nothing else in the
network (subnetworks, Private Service Access allocations); the primary range only ever grows.
"""

from __future__ import annotations

import ipaddress

from .compute import Collection
from .compute_common import NAME_RE, fingerprint, invalid, log_config, unlink

PRIVATE_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]


class Subnetworks(Collection):
    def _check_ranges(self, body, network_link, exclude=None):
        try:
            primary = ipaddress.ip_network(body["ipCidrRange"])
        except (KeyError, ValueError):
            raise invalid("Invalid value for field 'resource.ipCidrRange': '%s'. Invalid IPv4 CIDR range."
                          % body.get("ipCidrRange"))
        ranges = [(primary, "ipCidrRange")]
        for idx, sec in enumerate(body.get("secondaryIpRanges") or []):
            try:
                ranges.append((ipaddress.ip_network(sec["ipCidrRange"]), sec.get("rangeName")))
            except (KeyError, ValueError):
                raise invalid("Invalid value for field 'resource.secondaryIpRanges[%d].ipCidrRange': '%s'."
                              % (idx, sec.get("ipCidrRange")))
            if not NAME_RE.match(sec.get("rangeName") or ""):
                raise invalid("Invalid value for field 'resource.secondaryIpRanges[%d].rangeName': '%s'."
                              % (idx, sec.get("rangeName")))
        for net, _what in ranges:
            if net.prefixlen > 29 or not any(net.subnet_of(p) for p in PRIVATE_NETS):
                raise invalid("Invalid IPCidrRange: %s is not a valid private range of size /29 or larger." % net)
        for i, (a, wa) in enumerate(ranges):
            for b, wb in ranges[i + 1:]:
                if a.overlaps(b):
                    raise invalid("Invalid IPCidrRange: %s (%s) conflicts with %s (%s) in the same request." % (a, wa, b, wb))
        for net, what in ranges:
            for other, owner in self.compute.network_ranges(network_link, exclude=exclude):
                if net.overlaps(other):
                    raise invalid("Invalid IPCidrRange: %s conflicts with existing %s (%s) in network '%s'." % (
                        net, owner, other, network_link.rsplit("/", 1)[-1]))
        return primary

    def prepare(self, body, p, path):
        if not body.get("network"):
            raise invalid("Required field 'resource.network' not specified", reason="required")
        net = self.compute.resolve_ref(body["network"], "networks", p["project"])
        primary = self._check_ranges(body, net["selfLink"])
        log = body.get("logConfig")
        row = {
            "description": body.get("description", ""),
            "network": net["selfLink"],
            "ipCidrRange": str(primary),
            "gatewayAddress": str(primary.network_address + 1),
            "secondaryIpRanges": [{"rangeName": s["rangeName"], "ipCidrRange": str(ipaddress.ip_network(s["ipCidrRange"]))}
                                  for s in body.get("secondaryIpRanges") or []],
            "privateIpGoogleAccess": bool(body.get("privateIpGoogleAccess", False)),
            "purpose": body.get("purpose", "PRIVATE"),
            "stackType": body.get("stackType", "IPV4_ONLY"),
            "fingerprint": fingerprint(),
            "enableFlowLogs": bool((log or {}).get("enable", body.get("enableFlowLogs", False))),
        }
        if not row["secondaryIpRanges"]:
            del row["secondaryIpRanges"]
        if log is not None:
            row["logConfig"] = log_config(log)
        return row

    def after_insert(self, row):
        net = self.compute.table("networks").get(unlink(row["network"]))
        if net is not None:
            net["subnetworks"] = sorted(set(net.get("subnetworks", []) + [row["selfLink"]]))

    def after_delete(self, row):
        net = self.compute.table("networks").get(unlink(row["network"]))
        if net is not None:
            net["subnetworks"] = [s for s in net.get("subnetworks", []) if s != row["selfLink"]]

    def update(self, current, body, replace):
        new = dict(current)
        if "ipCidrRange" in body and body["ipCidrRange"] != current["ipCidrRange"]:
            old = ipaddress.ip_network(current["ipCidrRange"])
            wanted = ipaddress.ip_network(body["ipCidrRange"])
            if not old.subnet_of(wanted):
                raise invalid("Invalid value for field 'resource.ipCidrRange': '%s'. The primary range can only be "
                              "expanded to a range that contains %s." % (wanted, old))
            new["ipCidrRange"] = str(wanted)
        for key in ("description", "privateIpGoogleAccess", "secondaryIpRanges", "enableFlowLogs"):
            if key in body:
                new[key] = body[key]
        if "logConfig" in body:
            new["logConfig"] = log_config(body["logConfig"])
            new["enableFlowLogs"] = new["logConfig"]["enable"]
        if "network" in body and unlink(body["network"]) != unlink(current["network"]):
            raise invalid("Invalid value for field 'resource.network': the network of a subnetwork cannot be changed.")
        probe = dict(new)
        self._check_ranges(probe, current["network"], exclude=unlink(current["selfLink"]))
        if not new.get("secondaryIpRanges"):
            new.pop("secondaryIpRanges", None)
        return new

    def user_of(self, sub):
        for router in self.compute.table("routers").values():
            for nat in router.get("nats", []):
                for s in nat.get("subnetworks", []):
                    if unlink(s.get("name")) == unlink(sub["selfLink"]):
                        return router["selfLink"]
        for addr in self.compute.table("addresses").values():
            if addr.get("subnetwork") == sub["selfLink"]:
                return addr["selfLink"]
        for table in ("container.clusters", "compute.instances"):
            for row in self.compute.store.table(table).values():
                refs = [row.get("subnetwork", "")] + [n.get("subnetwork", "") for n in row.get("networkInterfaces", [])]
                if any(r and unlink(r).endswith(unlink(sub["selfLink"]).split("/", 2)[-1]) for r in refs):
                    return row.get("selfLink", row.get("name"))
        return None

    def set_private_ip_google_access(self, req, p):
        current = self.compute.get("subnetworks", p)
        path = unlink(current["selfLink"])
        flag = bool(req.json.get("privateIpGoogleAccess"))

        def done():
            with self.compute.lock:
                row = self.compute.table("subnetworks").get(path)
                if row is not None:
                    row["privateIpGoogleAccess"] = flag
                    row["fingerprint"] = fingerprint()

        return self.compute.operation("compute.subnetwork", "setPrivateIpGoogleAccess", path, "regions/%s" % p["region"], done)


def register(app):
    compute = app.compute
    compute.kinds["subnetworks"] = Subnetworks(compute)
    for verb, fn in compute.handlers("subnetworks", "get", "list", "insert", "delete", "patch", "aggregatedList"):
        app.handle("compute.subnetworks.%s" % verb, fn)
    app.handle("compute.subnetworks.setPrivateIpGoogleAccess", compute.kinds["subnetworks"].set_private_ip_google_access)
