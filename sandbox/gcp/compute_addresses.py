"""compute v1 addresses (regional: external, or internal in a subnetwork) and globalAddresses (external, or
a VPC_PEERING range for Private Service Access); both live in the compute.addresses table.
"""

from __future__ import annotations

import ipaddress

from .compute import Collection
from .compute_common import invalid


class Addresses(Collection):
    def _address_taken(self, ip):
        return any(a.get("address") == ip for a in self.compute.table("addresses").values())

    def prepare(self, body, p, path):
        kind = body.get("addressType", "EXTERNAL")
        row = {"description": body.get("description", ""), "addressType": kind, "status": "RESERVED",
               "ipVersion": body.get("ipVersion", "IPV4")}
        if kind == "EXTERNAL":
            if body.get("subnetwork") or body.get("purpose"):
                raise invalid("Invalid value for field 'resource.subnetwork': an EXTERNAL address cannot name a "
                              "subnetwork or purpose.")
            row.update({"address": body.get("address") or self.compute.public_ip(), "networkTier": body.get("networkTier", "PREMIUM")})
        else:
            if not body.get("subnetwork"):
                raise invalid("Invalid value for field 'resource.subnetwork': an INTERNAL regional address needs a "
                              "subnetwork.", reason="required")
            sub = self.compute.resolve_ref(body["subnetwork"], "subnetworks", p["project"], p.get("region"),
                                           field="resource.subnetwork")
            net = ipaddress.ip_network(sub["ipCidrRange"])
            if body.get("address"):
                ip = ipaddress.ip_address(body["address"])
                if ip not in net or ip in (net.network_address, net.network_address + 1, net.broadcast_address):
                    raise invalid("Invalid value for field 'resource.address': '%s'. The address is not in the range "
                                  "of subnetwork '%s' (%s) or is reserved." % (ip, sub["name"], net))
                if self._address_taken(str(ip)):
                    raise invalid("IP '%s' is already being used by another resource." % ip,
                                  reason="resourceInUseByAnotherResource")
                chosen = str(ip)
            else:
                chosen = next(str(h) for h in list(net.hosts())[1:] if not self._address_taken(str(h)))
            row.update({"address": chosen, "subnetwork": sub["selfLink"], "purpose": body.get("purpose", "GCE_ENDPOINT")})
        return row

    def user_of(self, addr):
        return (addr.get("users") or [None])[0]


class GlobalAddresses(Addresses):
    def prepare(self, body, p, path):
        kind = body.get("addressType", "EXTERNAL")
        purpose = body.get("purpose")
        row = {"description": body.get("description", ""), "addressType": kind, "status": "RESERVED",
               "ipVersion": body.get("ipVersion", "IPV4")}
        if purpose == "VPC_PEERING":
            if kind != "INTERNAL" or not body.get("network") or not body.get("prefixLength"):
                raise invalid("Invalid value for field 'resource.purpose': VPC_PEERING addresses need addressType "
                              "INTERNAL, a network and a prefixLength.")
            net = self.compute.resolve_ref(body["network"], "networks", p["project"])
            prefix = int(body["prefixLength"])
            if not 8 <= prefix <= 29:
                raise invalid("Invalid value for field 'resource.prefixLength': '%s'. Must be between 8 and 29." % prefix)
            taken = [r for r, _o in self.compute.network_ranges(net["selfLink"])]
            if body.get("address"):
                try:
                    cand = ipaddress.ip_network("%s/%d" % (body["address"], prefix))
                except ValueError:
                    raise invalid("Invalid value for field 'resource.address': '%s'. The address must be the first "
                                  "address of a /%d range (host bits set); use %s." % (
                                      body["address"], prefix, _network_start(body["address"], prefix)))
                if any(cand.overlaps(t) for t in taken):
                    raise invalid("Invalid value for field 'resource.address': the range %s overlaps an existing range "
                                  "in network '%s'." % (cand, net["name"]))
            else:
                cand = next(c for c in ipaddress.ip_network("10.0.0.0/8").subnets(new_prefix=prefix)
                            if c.network_address >= ipaddress.ip_address("10.100.0.0") and not any(c.overlaps(t) for t in taken))
            row.update({"address": str(cand.network_address), "prefixLength": prefix, "purpose": "VPC_PEERING",
                        "network": net["selfLink"]})
        elif kind == "EXTERNAL":
            row.update({"address": body.get("address") or self.compute.public_ip(), "networkTier": "PREMIUM"})
            if purpose:
                row["purpose"] = purpose
        else:
            raise invalid("Invalid value for field 'resource.purpose': a global INTERNAL address needs purpose "
                          "VPC_PEERING or PRIVATE_SERVICE_CONNECT.")
        return row

    def user_of(self, addr):
        return super().user_of(addr) or self.peering_users(addr)

    def peering_users(self, addr):
        for net in self.compute.table("networks").values():
            for peering in net.get("peerings", []):
                if addr["name"] in peering.get("_ranges", []):
                    return net["selfLink"]
        return None


def register(app):
    compute = app.compute
    compute.kinds["addresses"] = Addresses(compute)
    compute.kinds["globalAddresses"] = GlobalAddresses(compute)
    for verb, fn in compute.handlers("addresses", "get", "list", "insert", "delete", "aggregatedList"):
        app.handle("compute.addresses.%s" % verb, fn)
    for verb, fn in compute.handlers("globalAddresses", "get", "list", "insert", "delete"):
        app.handle("compute.globalAddresses.%s" % verb, fn)


def _network_start(address, prefix):
    try:
        return str(ipaddress.ip_network("%s/%d" % (address, prefix), strict=False).network_address)
    except ValueError:
        return "an IPv4 address"
