"""compute v1 routers (regional) with Cloud NAT: MANUAL_ONLY NATs take reserved external addresses, which
show the router among their users while it holds them.
"""

from __future__ import annotations

from .compute import Collection
from .compute_common import NAME_RE, in_use, invalid, link, unlink


class Routers(Collection):
    def _check_nats(self, nats, project, region, network_link, router_link):
        names = set()
        for idx, nat in enumerate(nats or []):
            if not NAME_RE.match(nat.get("name") or ""):
                raise invalid("Invalid value for field 'resource.nats[%d].name': '%s'." % (idx, nat.get("name")))
            if nat["name"] in names:
                raise invalid("Invalid value for field 'resource.nats[%d].name': duplicate NAT name." % idx)
            names.add(nat["name"])
            option = nat.get("natIpAllocateOption")
            if option not in ("MANUAL_ONLY", "AUTO_ONLY"):
                raise invalid("Invalid value for field 'resource.nats[%d].natIpAllocateOption': '%s'." % (idx, option),
                              reason="required" if option is None else "invalid")
            ips = nat.get("natIps") or []
            if option == "MANUAL_ONLY" and not ips:
                raise invalid("Invalid value for field 'resource.nats[%d].natIps': MANUAL_ONLY needs at least one "
                              "reserved static IP." % idx)
            if option == "AUTO_ONLY" and ips:
                raise invalid("Invalid value for field 'resource.nats[%d].natIps': must be empty with AUTO_ONLY." % idx)
            for ip_ref in ips:
                addr = self.compute.resolve_ref(ip_ref, "addresses", project, region, field="resource.nats.natIps")
                if addr.get("addressType") != "EXTERNAL":
                    raise invalid("Invalid value for field 'resource.nats[%d].natIps': '%s' is not an EXTERNAL address."
                                  % (idx, ip_ref))
                users = [u for u in addr.get("users", []) if u != router_link]
                if users:
                    raise in_use(unlink(addr["selfLink"]), users[0])
            mode = nat.get("sourceSubnetworkIpRangesToNat")
            if mode is None:
                raise invalid("Required field 'resource.nats[%d].sourceSubnetworkIpRangesToNat' not specified" % idx,
                              reason="required")
            subs = nat.get("subnetworks") or []
            if mode == "LIST_OF_SUBNETWORKS" and not subs:
                raise invalid("Invalid value for field 'resource.nats[%d].subnetworks': LIST_OF_SUBNETWORKS needs "
                              "subnetworks." % idx)
            for sub in subs:
                row = self.compute.resolve_ref(sub.get("name"), "subnetworks", project, region, field="resource.nats.subnetworks")
                if row["network"] != network_link:
                    raise invalid("Invalid value for field 'resource.nats[%d].subnetworks': subnetwork '%s' is not in "
                                  "the router's network." % (idx, row["name"]))

    def _normalize_nats(self, nats, project, region):
        out = []
        for nat in nats or []:
            n = dict(nat)
            if n.get("natIps"):
                n["natIps"] = [self.compute.resolve_ref(i, "addresses", project, region)["selfLink"] for i in n["natIps"]]
            if n.get("subnetworks"):
                n["subnetworks"] = [dict(s, name=self.compute.resolve_ref(s["name"], "subnetworks", project, region)["selfLink"],
                                         sourceIpRangesToNat=s.get("sourceIpRangesToNat", ["ALL_IP_RANGES"]))
                                    for s in n["subnetworks"]]
            n.setdefault("enableEndpointIndependentMapping", False)
            n.setdefault("endpointTypes", ["ENDPOINT_TYPE_VM"])
            n.setdefault("type", "PUBLIC")
            if "logConfig" in n:
                n["logConfig"] = {"enable": bool(n["logConfig"].get("enable")), "filter": n["logConfig"].get("filter", "ALL")}
            out.append(n)
        return out

    def prepare(self, body, p, path):
        if not body.get("network"):
            raise invalid("Required field 'resource.network' not specified", reason="required")
        net = self.compute.resolve_ref(body["network"], "networks", p["project"])
        self._check_nats(body.get("nats"), p["project"], p["region"], net["selfLink"], link(path))
        row = {k: v for k, v in body.items() if k not in ("name", "network", "nats")}
        row["network"] = net["selfLink"]
        row["nats"] = self._normalize_nats(body.get("nats"), p["project"], p["region"])
        if not row["nats"]:
            del row["nats"]
        row.setdefault("description", "")
        return row

    def update(self, current, body, replace):
        parts = unlink(current["selfLink"]).split("/")
        project, region = parts[1], parts[3]
        if "network" in body and unlink(body["network"]) != unlink(current["network"]):
            raise invalid("Invalid value for field 'resource.network': the network of a router cannot be changed.")
        new = dict(current) if not replace else {k: current[k] for k in ("kind", "id", "name", "creationTimestamp",
                                                                         "selfLink", "region", "network")}
        for key, value in body.items():
            if key in ("nats",):
                self._check_nats(value, project, region, current["network"], current["selfLink"])
                value = self._normalize_nats(value, project, region)
            if key not in ("network", "name"):
                new[key] = value
        if not new.get("nats"):
            new.pop("nats", None)
        return new

    def _nat_ips(self, router):
        return {ip for nat in router.get("nats", []) for ip in nat.get("natIps", [])}

    def _mark_users(self, router, ips, add):
        for ip in ips:
            addr = self.compute.table("addresses").get(unlink(ip))
            if addr is None:
                continue
            users = [u for u in addr.get("users", []) if u != router["selfLink"]]
            if add:
                users.append(router["selfLink"])
            if users:
                addr["users"] = users
                addr["status"] = "IN_USE"
            else:
                addr.pop("users", None)
                addr["status"] = "RESERVED"

    def after_insert(self, row):
        self._mark_users(row, self._nat_ips(row), True)

    def after_update(self, before, after):
        self._mark_users(after, self._nat_ips(before) - self._nat_ips(after), False)
        self._mark_users(after, self._nat_ips(after), True)

    def after_delete(self, row):
        self._mark_users(row, self._nat_ips(row), False)

    def user_of(self, row):
        return None

    def router_status(self, req, p):
        router = self.compute.get("routers", p)
        nats = []
        for nat in router.get("nats", []):
            ips = [self.compute.table("addresses")[unlink(i)]["address"] for i in nat.get("natIps", [])
                   if unlink(i) in self.compute.table("addresses")]
            nats.append({"name": nat["name"], "userAllocatedNatIps": ips, "autoAllocatedNatIps": [],
                         "minExtraNatIpsNeeded": 0, "numVmEndpointsWithNatMappings": 0})
        return {"kind": "compute#routerStatusResponse",
                "result": {"network": router["network"], "natStatus": nats, "bestRoutes": [], "bgpPeerStatus": []}}


def register(app):
    compute = app.compute
    compute.kinds["routers"] = Routers(compute)
    for verb, fn in compute.handlers("routers", "get", "list", "insert", "delete", "patch", "update", "aggregatedList"):
        app.handle("compute.routers.%s" % verb, fn)
    app.handle("compute.routers.getRouterStatus", compute.kinds["routers"].router_status)
