"""compute v1: networks, subnetworks, addresses, globalAddresses, firewalls, routers (with nats), operations;
instances live in instances.py, Cloud Armor securityPolicies in security_policies.py.

Resources appear (or disappear) when their operation completes, as in GCP. References in responses are
full https://www.googleapis.com/compute/v1/... URLs, whatever host served the request.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import threading
import time

from ..web import ApiError
from .app import compute_timestamp
from .compute_common import NAME_RE, fingerprint, in_use, invalid, link, not_found, unlink

PRIVATE_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]

# collection -> (scope, kind, duration key, path parameter naming the resource)
COLLECTIONS = {
    "networks": ("global", "compute#network", "compute.network", "network"),
    "subnetworks": ("region", "compute#subnetwork", "compute.subnetwork", "subnetwork"),
    "addresses": ("region", "compute#address", "compute.address", "address"),
    "globalAddresses": ("global", "compute#address", "compute.address", "address"),
    "firewalls": ("global", "compute#firewall", "compute.firewall", "firewall"),
    "routers": ("region", "compute#router", "compute.router", "router"),
}


def path_of(collection, project, name, region=None):
    coll = "addresses" if collection == "globalAddresses" else collection
    if COLLECTIONS[collection][0] == "global":
        return "projects/%s/global/%s/%s" % (project, coll, name)
    return "projects/%s/regions/%s/%s/%s" % (project, region, coll, name)


class Compute:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.store = app.sandbox.store
        self.lock = threading.RLock()
        self.ops = {}
        self._public = itertools.count(10)
        self.pending = set()  # paths with a create in flight (a second insert is a 409 as in GCP)

    def table(self, collection):
        coll = "addresses" if collection == "globalAddresses" else collection
        return self.store.table("compute.%s" % coll)

    # ---- operations ------------------------------------------------------------------
    def operation(self, kind_key, op_type, target_path, scope, on_done, can_fail=True, on_fail=None):
        def release():
            # A failed insert leaves nothing behind in GCP: the name is free for the next attempt.
            with self.lock:
                self.pending.discard(target_path)
            if on_fail is not None:
                on_fail()

        op = self.sandbox.ops.start(kind_key, on_done, resource=target_path, can_fail=can_fail, on_fail=release)
        project = target_path.split("/")[1]
        entry = {
            "op": op, "type": op_type, "target": target_path, "project": project, "scope": scope,
            "id": self.store.next_id(), "insertTime": compute_timestamp(),
        }
        with self.lock:
            self.ops[op.id] = entry
        return self.render_op(entry)

    def render_op(self, entry):
        op = entry["op"]
        op.poll()
        scope = entry["scope"]
        base = "projects/%s/%s" % (entry["project"], "global" if scope == "global" else scope)
        out = {
            "kind": "compute#operation",
            "id": entry["id"],
            "name": op.id,
            "operationType": entry["type"],
            "targetLink": link(entry["target"]),
            "targetId": str(abs(hash(entry["target"])) % (10 ** 18)),
            "status": "DONE" if op.done else "RUNNING",
            "progress": 100 if op.done else 0,
            "insertTime": entry["insertTime"],
            "startTime": entry["insertTime"],
            "selfLink": link("%s/operations/%s" % (base, op.id)),
            "user": self.app.auth.deployer_email if hasattr(self.app.auth, "deployer_email") else "user",
        }
        if scope.startswith("regions/"):
            out["region"] = link("projects/%s/%s" % (entry["project"], scope))
        if scope.startswith("zones/"):
            out["zone"] = link("projects/%s/%s" % (entry["project"], scope))
        if op.done:
            out["endTime"] = compute_timestamp()
            if op.error:
                out["error"] = {"errors": [{"code": op.error_code or "RESOURCE_OPERATION_FAILED", "message": op.error}]}
                out["httpErrorStatusCode"] = 400
                out["httpErrorMessage"] = "BAD REQUEST"
        return out

    def op_get(self, req, p):
        with self.lock:
            entry = self.ops.get(p["operation"])
        scope = "global"
        if p.get("region"):
            scope = "regions/%s" % p["region"]
        if p.get("zone"):
            scope = "zones/%s" % p["zone"]
        if entry is None or entry["scope"] != scope:
            raise not_found("projects/%s/%s/operations/%s" % (p["project"], scope, p["operation"]))
        if req.method_id.endswith(".wait"):
            deadline = time.monotonic() + 120
            while not entry["op"].poll() and time.monotonic() < deadline:
                time.sleep(0.02)
        return self.render_op(entry)

    # ---- generic collection handlers -------------------------------------------------
    def scope_of(self, collection, p):
        return "global" if COLLECTIONS[collection][0] == "global" else "regions/%s" % p["region"]

    def get(self, collection, p):
        path = path_of(collection, p["project"], p[COLLECTIONS[collection][3]], p.get("region"))
        row = self.table(collection).get(path)
        if row is None:
            raise not_found(path)
        return row

    def list(self, collection, req, p):
        prefix = path_of(collection, p["project"], "", p.get("region"))
        rows = [r for k, r in sorted(self.table(collection).items()) if k.startswith(prefix)]
        flt = req.query.get("filter", "")
        m = re.match(r'^\s*\(?\s*name\s*(=|eq)\s*"?([^")\s]+)"?\s*\)?\s*$', flt)
        if m:
            rows = [r for r in rows if re.fullmatch(m.group(2), r["name"])]
        size = int(req.query.get("maxResults", 500))
        start = int(req.query.get("pageToken") or 0)
        out = {"kind": COLLECTIONS[collection][1] + "List", "id": prefix, "items": rows[start:start + size],
               "selfLink": link(prefix.rstrip("/"))}
        if start + size < len(rows):
            out["nextPageToken"] = str(start + size)
        return out

    def aggregated_list(self, collection, req, p):
        """aggregatedList as Compute answers it: items keyed by scope ("regions/x", "zones/x", "global").

        Scopes without resources are left out; under includeAllScopes (what gcloud asks for) the scopes that hold
        none of the project's resources answer with Compute's NO_RESULTS_ON_PAGE warning.
        """
        kind = {"instances": "compute#instance"}.get(collection) or COLLECTIONS[collection][1]
        prefix = "projects/%s/" % p["project"]
        rows = [(k, r) for k, r in sorted(self.store.table("compute.%s" % collection).items()) if k.startswith(prefix)]
        flt = req.query.get("filter", "")
        m = re.match(r'^\s*\(?\s*name\s*(=|eq)\s*"?([^")\s]+)"?\s*\)?\s*$', flt)
        if m:
            rows = [(k, r) for k, r in rows if re.fullmatch(m.group(2), r["name"])]
        items = {}
        for key, row in rows:
            scope = key[len(prefix):].rsplit("/", 2)[0]
            items.setdefault(scope, {collection: []})[collection].append(row)
        if str(req.query.get("includeAllScopes", "")).lower() == "true":
            scopes = {"regions/%s" % k.split("/")[3] for k in self.store.table("compute.subnetworks")
                      if k.startswith(prefix)}
            if collection == "instances":
                scopes = {"zones/%s-%s" % (s.split("/")[1], z) for s in scopes for z in "abc"}
            for scope in sorted(scopes - set(items)):
                items[scope] = {"warning": {"code": "NO_RESULTS_ON_PAGE",
                                            "message": "There are no results for scope '%s' on this page." % scope,
                                            "data": [{"key": "scope", "value": scope}]}}
        path = "projects/%s/aggregated/%s" % (p["project"], collection)
        return {"kind": kind + "AggregatedList", "id": path, "items": dict(sorted(items.items())), "selfLink": link(path)}

    def insert(self, collection, req, p):
        body = dict(req.json)
        name = body.get("name") or ""
        if not NAME_RE.match(name):
            raise invalid("Invalid value for field 'resource.name': '%s'. Must be a match of regex "
                          "'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'" % name)
        path = path_of(collection, p["project"], name, p.get("region"))
        with self.lock:
            if path in self.table(collection) or path in self.pending:
                raise ApiError(409, "The resource '%s' already exists" % path, reason="alreadyExists")
            row = getattr(self, "prepare_" + collection)(body, p, path)
            row.update({
                "kind": COLLECTIONS[collection][1], "id": self.store.next_id(), "name": name,
                "creationTimestamp": compute_timestamp(), "selfLink": link(path),
            })
            if COLLECTIONS[collection][0] == "region":
                row["region"] = link("projects/%s/regions/%s" % (p["project"], p["region"]))
            self.pending.add(path)

        def done():
            with self.lock:
                self.pending.discard(path)
                self.table(collection)[path] = row
                after = getattr(self, "after_insert_" + collection, None)
                if after:
                    after(row)

        return self.operation(COLLECTIONS[collection][2], "insert", path, self.scope_of(collection, p), done)

    def patch(self, collection, req, p, replace=False):
        current = self.get(collection, p)
        body = dict(req.json)
        path = unlink(current["selfLink"])
        if "fingerprint" in current:
            if body.get("fingerprint") is None:
                raise invalid("Required field 'resource.fingerprint' not specified", reason="required")
            if body.get("fingerprint") != current["fingerprint"]:
                raise ApiError(412, "Supplied fingerprint does not match current fingerprint.", reason="conditionNotMet")
        if body.get("name") not in (None, current["name"]):
            raise invalid("Invalid value for field 'resource.name': '%s'. The name of a resource cannot be changed."
                          % body.get("name"))
        with self.lock:
            new = getattr(self, "update_" + collection)(current, body, replace)
            if "fingerprint" in current:
                new["fingerprint"] = fingerprint()

        def done():
            with self.lock:
                if path in self.table(collection):
                    before = self.table(collection)[path]
                    self.table(collection)[path] = new
                    hook = getattr(self, "after_update_" + collection, None)
                    if hook:
                        hook(before, new)

        return self.operation(COLLECTIONS[collection][2], "update" if replace else "patch", path,
                              self.scope_of(collection, p), done)

    def delete(self, collection, req, p):
        current = self.get(collection, p)
        path = unlink(current["selfLink"])
        with self.lock:
            user = getattr(self, "user_of_" + collection)(current)
            # A network in use is accepted (200) and its operation ends DONE with RESOURCE_IN_USE_BY_ANOTHER_RESOURCE,
            # as in GCP; the other collections refuse at once with a 400.
            if user and collection != "networks":
                raise in_use(path, user)

        def done():
            with self.lock:
                if collection == "networks":
                    still = self.user_of_networks(self.table(collection).get(path) or current)
                    if still:
                        raise in_use(path, still)
                row = self.table(collection).pop(path, None)
                hook = getattr(self, "after_delete_" + collection, None)
                if hook and row:
                    hook(row)

        return self.operation("compute.delete", "delete", path, self.scope_of(collection, p), done)

    # ---- helpers ------------------------------------------------------------------------
    def resolve_ref(self, ref, collection, project, region=None, field="resource.network"):
        """A reference as users write it -> the stored row (404 if it does not exist)."""
        path = unlink(ref)
        if not path.startswith("projects/"):
            if collection in ("networks", "globalAddresses", "firewalls"):
                path = "projects/%s/%s" % (project, path) if "/" in path else path_of(collection, project, path)
            else:
                path = "projects/%s/%s" % (project, path) if "/" in path else path_of(collection, project, path, region)
        row = self.table(collection).get(path)
        if row is None:
            raise ApiError(404, "The resource '%s' was not found" % path, reason="notFound")
        return row

    def network_ranges(self, network_link, exclude=None):
        """(range, owner) of every subnetwork range and PSA allocation in a network."""
        out = []
        for key, sub in self.table("subnetworks").items():
            if sub["network"] != network_link or key == exclude:
                continue
            out.append((ipaddress.ip_network(sub["ipCidrRange"]), "subnetwork '%s'" % sub["name"]))
            for sec in sub.get("secondaryIpRanges", []):
                out.append((ipaddress.ip_network(sec["ipCidrRange"]), "secondary range '%s' of subnetwork '%s'" % (
                    sec["rangeName"], sub["name"])))
        for key, addr in self.table("addresses").items():
            if addr.get("purpose") == "VPC_PEERING" and addr.get("network") == network_link and key != exclude:
                out.append((ipaddress.ip_network("%s/%s" % (addr["address"], addr["prefixLength"])),
                            "allocated range '%s'" % addr["name"]))
        return out

    # ---- networks ---------------------------------------------------------------------
    def prepare_networks(self, body, p, path):
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

    def update_networks(self, current, body, replace):
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

    def user_of_networks(self, net):
        me = net["selfLink"]
        for coll in ("subnetworks", "firewalls", "routers", "addresses"):
            for row in self.table(coll).values():
                if row.get("network") == me:
                    return row["selfLink"]
        if net.get("peerings"):
            return net["peerings"][0]["network"]
        return None

    # ---- subnetworks ------------------------------------------------------------------
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
            for other, owner in self.network_ranges(network_link, exclude=exclude):
                if net.overlaps(other):
                    raise invalid("Invalid IPCidrRange: %s conflicts with existing %s (%s) in network '%s'." % (
                        net, owner, other, network_link.rsplit("/", 1)[-1]))
        return primary

    def prepare_subnetworks(self, body, p, path):
        if not body.get("network"):
            raise invalid("Required field 'resource.network' not specified", reason="required")
        net = self.resolve_ref(body["network"], "networks", p["project"])
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
            row["logConfig"] = _log_config(log)
        return row

    def after_insert_subnetworks(self, row):
        net = self.table("networks").get(unlink(row["network"]))
        if net is not None:
            net["subnetworks"] = sorted(set(net.get("subnetworks", []) + [row["selfLink"]]))

    def after_delete_subnetworks(self, row):
        net = self.table("networks").get(unlink(row["network"]))
        if net is not None:
            net["subnetworks"] = [s for s in net.get("subnetworks", []) if s != row["selfLink"]]

    def update_subnetworks(self, current, body, replace):
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
            new["logConfig"] = _log_config(body["logConfig"])
            new["enableFlowLogs"] = new["logConfig"]["enable"]
        if "network" in body and unlink(body["network"]) != unlink(current["network"]):
            raise invalid("Invalid value for field 'resource.network': the network of a subnetwork cannot be changed.")
        probe = dict(new)
        self._check_ranges(probe, current["network"], exclude=unlink(current["selfLink"]))
        if not new.get("secondaryIpRanges"):
            new.pop("secondaryIpRanges", None)
        return new

    def user_of_subnetworks(self, sub):
        for router in self.table("routers").values():
            for nat in router.get("nats", []):
                for s in nat.get("subnetworks", []):
                    if unlink(s.get("name")) == unlink(sub["selfLink"]):
                        return router["selfLink"]
        for addr in self.table("addresses").values():
            if addr.get("subnetwork") == sub["selfLink"]:
                return addr["selfLink"]
        for table in ("container.clusters", "compute.instances"):
            for row in self.store.table(table).values():
                refs = [row.get("subnetwork", "")] + [n.get("subnetwork", "") for n in row.get("networkInterfaces", [])]
                if any(r and unlink(r).endswith(unlink(sub["selfLink"]).split("/", 2)[-1]) for r in refs):
                    return row.get("selfLink", row.get("name"))
        return None

    def set_private_ip_google_access(self, req, p):
        current = self.get("subnetworks", p)
        path = unlink(current["selfLink"])
        flag = bool(req.json.get("privateIpGoogleAccess"))

        def done():
            with self.lock:
                row = self.table("subnetworks").get(path)
                if row is not None:
                    row["privateIpGoogleAccess"] = flag
                    row["fingerprint"] = fingerprint()

        return self.operation("compute.subnetwork", "setPrivateIpGoogleAccess", path, "regions/%s" % p["region"], done)

    # ---- addresses ----------------------------------------------------------------------
    def _public_ip(self):
        n = next(self._public)
        return "34.118.%d.%d" % (n // 250, n % 250 + 2)

    def _address_taken(self, ip):
        return any(a.get("address") == ip for a in self.table("addresses").values())

    def prepare_addresses(self, body, p, path):
        kind = body.get("addressType", "EXTERNAL")
        row = {"description": body.get("description", ""), "addressType": kind, "status": "RESERVED",
               "ipVersion": body.get("ipVersion", "IPV4")}
        if kind == "EXTERNAL":
            if body.get("subnetwork") or body.get("purpose"):
                raise invalid("Invalid value for field 'resource.subnetwork': an EXTERNAL address cannot name a "
                              "subnetwork or purpose.")
            row.update({"address": body.get("address") or self._public_ip(), "networkTier": body.get("networkTier", "PREMIUM")})
        else:
            if not body.get("subnetwork"):
                raise invalid("Invalid value for field 'resource.subnetwork': an INTERNAL regional address needs a "
                              "subnetwork.", reason="required")
            sub = self.resolve_ref(body["subnetwork"], "subnetworks", p["project"], p.get("region"),
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

    def prepare_globalAddresses(self, body, p, path):  # noqa: N802 - named after the collection
        kind = body.get("addressType", "EXTERNAL")
        purpose = body.get("purpose")
        row = {"description": body.get("description", ""), "addressType": kind, "status": "RESERVED",
               "ipVersion": body.get("ipVersion", "IPV4")}
        if purpose == "VPC_PEERING":
            if kind != "INTERNAL" or not body.get("network") or not body.get("prefixLength"):
                raise invalid("Invalid value for field 'resource.purpose': VPC_PEERING addresses need addressType "
                              "INTERNAL, a network and a prefixLength.")
            net = self.resolve_ref(body["network"], "networks", p["project"])
            prefix = int(body["prefixLength"])
            if not 8 <= prefix <= 29:
                raise invalid("Invalid value for field 'resource.prefixLength': '%s'. Must be between 8 and 29." % prefix)
            taken = [r for r, _o in self.network_ranges(net["selfLink"])]
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
            row.update({"address": body.get("address") or self._public_ip(), "networkTier": "PREMIUM"})
            if purpose:
                row["purpose"] = purpose
        else:
            raise invalid("Invalid value for field 'resource.purpose': a global INTERNAL address needs purpose "
                          "VPC_PEERING or PRIVATE_SERVICE_CONNECT.")
        return row

    def user_of_addresses(self, addr):
        return (addr.get("users") or [None])[0]

    def user_of_globalAddresses(self, addr):  # noqa: N802 - named after the collection
        return self.user_of_addresses(addr) or self.peering_users(addr)

    def peering_users(self, addr):
        for net in self.table("networks").values():
            for peering in net.get("peerings", []):
                if addr["name"] in peering.get("_ranges", []):
                    return net["selfLink"]
        return None

    # ---- firewalls ----------------------------------------------------------------------
    def prepare_firewalls(self, body, p, path):
        if not body.get("network"):
            raise invalid("Required field 'resource.network' not specified", reason="required")
        net = self.resolve_ref(body["network"], "networks", p["project"])
        if bool(body.get("allowed")) == bool(body.get("denied")):
            raise invalid("Invalid value for field 'resource': exactly one of 'allowed' or 'denied' must be set.")
        direction = body.get("direction", "INGRESS")
        priority = int(body.get("priority", 1000))
        if not 0 <= priority <= 65535:
            raise invalid("Invalid value for field 'resource.priority': '%s'. Must be between 0 and 65535." % priority)
        for field in ("sourceRanges", "destinationRanges"):
            for idx, cidr in enumerate(body.get(field) or []):
                try:
                    ipaddress.ip_network(cidr)
                except ValueError:
                    raise invalid("Invalid value for field 'resource.%s[%d]': '%s'. Must be a CIDR range." % (field, idx, cidr))
        row = {k: v for k, v in body.items() if k not in ("name", "network", "priority", "direction")}
        row.update({"network": net["selfLink"], "direction": direction, "priority": priority,
                    "disabled": bool(body.get("disabled", False))})
        if direction == "INGRESS" and not (body.get("sourceRanges") or body.get("sourceTags") or body.get("sourceServiceAccounts")):
            row["sourceRanges"] = ["0.0.0.0/0"]
        if direction == "EGRESS" and not body.get("destinationRanges"):
            row["destinationRanges"] = ["0.0.0.0/0"]
        row["logConfig"] = _log_config(body.get("logConfig") or {"enable": False}, firewall=True)
        row.setdefault("description", "")
        return row

    def update_firewalls(self, current, body, replace):
        if replace:
            merged = {k: v for k, v in body.items()}
            merged.setdefault("network", current["network"])
            p = {"project": unlink(current["selfLink"]).split("/")[1]}
            new = self.prepare_firewalls(merged, p, unlink(current["selfLink"]))
            for key in ("kind", "id", "name", "creationTimestamp", "selfLink"):
                new[key] = current[key]
            return new
        new = dict(current)
        for key, value in body.items():
            if key == "network" and unlink(value) != unlink(current["network"]):
                raise invalid("Invalid value for field 'resource.network': the network of a firewall cannot be changed.")
            if key == "logConfig":
                value = _log_config(value, firewall=True)
            new[key] = value
        if new.get("allowed") and new.get("denied"):
            raise invalid("Invalid value for field 'resource': exactly one of 'allowed' or 'denied' must be set.")
        return new

    def user_of_firewalls(self, row):
        return None

    # ---- routers ------------------------------------------------------------------------
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
                addr = self.resolve_ref(ip_ref, "addresses", project, region, field="resource.nats.natIps")
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
                row = self.resolve_ref(sub.get("name"), "subnetworks", project, region, field="resource.nats.subnetworks")
                if row["network"] != network_link:
                    raise invalid("Invalid value for field 'resource.nats[%d].subnetworks': subnetwork '%s' is not in "
                                  "the router's network." % (idx, row["name"]))

    def _normalize_nats(self, nats, project, region):
        out = []
        for nat in nats or []:
            n = dict(nat)
            if n.get("natIps"):
                n["natIps"] = [self.resolve_ref(i, "addresses", project, region)["selfLink"] for i in n["natIps"]]
            if n.get("subnetworks"):
                n["subnetworks"] = [dict(s, name=self.resolve_ref(s["name"], "subnetworks", project, region)["selfLink"],
                                         sourceIpRangesToNat=s.get("sourceIpRangesToNat", ["ALL_IP_RANGES"]))
                                    for s in n["subnetworks"]]
            n.setdefault("enableEndpointIndependentMapping", False)
            n.setdefault("endpointTypes", ["ENDPOINT_TYPE_VM"])
            n.setdefault("type", "PUBLIC")
            if "logConfig" in n:
                n["logConfig"] = {"enable": bool(n["logConfig"].get("enable")), "filter": n["logConfig"].get("filter", "ALL")}
            out.append(n)
        return out

    def prepare_routers(self, body, p, path):
        if not body.get("network"):
            raise invalid("Required field 'resource.network' not specified", reason="required")
        net = self.resolve_ref(body["network"], "networks", p["project"])
        self._check_nats(body.get("nats"), p["project"], p["region"], net["selfLink"], link(path))
        row = {k: v for k, v in body.items() if k not in ("name", "network", "nats")}
        row["network"] = net["selfLink"]
        row["nats"] = self._normalize_nats(body.get("nats"), p["project"], p["region"])
        if not row["nats"]:
            del row["nats"]
        row.setdefault("description", "")
        return row

    def update_routers(self, current, body, replace):
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
            addr = self.table("addresses").get(unlink(ip))
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

    def after_insert_routers(self, row):
        self._mark_users(row, self._nat_ips(row), True)

    def after_update_routers(self, before, after):
        self._mark_users(after, self._nat_ips(before) - self._nat_ips(after), False)
        self._mark_users(after, self._nat_ips(after), True)

    def after_delete_routers(self, row):
        self._mark_users(row, self._nat_ips(row), False)

    def user_of_routers(self, row):
        return None

    def router_status(self, req, p):
        router = self.get("routers", p)
        nats = []
        for nat in router.get("nats", []):
            ips = [self.table("addresses")[unlink(i)]["address"] for i in nat.get("natIps", [])
                   if unlink(i) in self.table("addresses")]
            nats.append({"name": nat["name"], "userAllocatedNatIps": ips, "autoAllocatedNatIps": [],
                         "minExtraNatIpsNeeded": 0, "numVmEndpointsWithNatMappings": 0})
        return {"kind": "compute#routerStatusResponse",
                "result": {"network": router["network"], "natStatus": nats, "bestRoutes": [], "bgpPeerStatus": []}}


def _network_start(address, prefix):
    try:
        return str(ipaddress.ip_network("%s/%d" % (address, prefix), strict=False).network_address)
    except ValueError:
        return "an IPv4 address"


def _log_config(log, firewall=False):
    if firewall:
        out = {"enable": bool(log.get("enable", False))}
        if out["enable"]:
            out["metadata"] = log.get("metadata", "INCLUDE_ALL_METADATA")
        return out
    out = {"enable": bool(log.get("enable", True))}
    if out["enable"]:
        out.update({"aggregationInterval": log.get("aggregationInterval", "INTERVAL_5_SEC"),
                    "flowSampling": log.get("flowSampling", 0.5),
                    "metadata": log.get("metadata", "INCLUDE_ALL_METADATA")})
    return out


def running_instances(sandbox):
    """Instances in RUNNING state (read by the HCP Terraform agent emulation)."""
    return [r for r in sandbox.store.table("compute.instances").values() if r.get("status") == "RUNNING"]


def register(app):
    compute = Compute(app)
    app.compute = compute
    for coll in COLLECTIONS:
        app.handle("compute.%s.get" % coll, lambda req, p, c=coll: compute.get(c, p))
        app.handle("compute.%s.list" % coll, lambda req, p, c=coll: compute.list(c, req, p))
        app.handle("compute.%s.insert" % coll, lambda req, p, c=coll: compute.insert(c, req, p))
        app.handle("compute.%s.delete" % coll, lambda req, p, c=coll: compute.delete(c, req, p))
    for coll in ("networks", "subnetworks", "firewalls", "routers"):
        app.handle("compute.%s.patch" % coll, lambda req, p, c=coll: compute.patch(c, req, p))
    for coll in ("firewalls", "routers"):
        app.handle("compute.%s.update" % coll, lambda req, p, c=coll: compute.patch(c, req, p, replace=True))
    for coll in ("subnetworks", "addresses", "routers", "instances"):
        app.handle("compute.%s.aggregatedList" % coll, lambda req, p, c=coll: compute.aggregated_list(c, req, p))
    app.handle("compute.subnetworks.setPrivateIpGoogleAccess", compute.set_private_ip_google_access)
    app.handle("compute.routers.getRouterStatus", compute.router_status)
    for scope in ("globalOperations", "regionOperations", "zoneOperations"):
        app.handle("compute.%s.get" % scope, compute.op_get)
        app.handle("compute.%s.wait" % scope, compute.op_get)
