"""compute v1: the collection machinery every Compute resource shares (get, list, aggregatedList, insert, patch,
update, delete as operations) and the operations themselves. Each resource kind is a module of its own that registers
a `Collection` and its handlers: compute_networks.py, compute_subnetworks.py, compute_addresses.py (addresses and
globalAddresses), compute_firewalls.py, routers.py (with Cloud NAT); instances.py and security_policies.py serve
instances and Cloud Armor securityPolicies.

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


class Collection:
    """One resource kind of Compute: what its insert, patch/update and delete do beyond the generic steps."""

    def __init__(self, compute):
        self.compute = compute

    def prepare(self, body, p, path):
        """The stored row (less the common fields) for an insert; raises to refuse it."""
        raise NotImplementedError

    def update(self, current, body, replace):
        """The new row for a patch (replace=False) or update (replace=True)."""
        raise NotImplementedError

    def user_of(self, row):
        """What keeps the resource from being deleted, or None."""
        return None

    def after_insert(self, row):
        pass

    def after_update(self, before, after):
        pass

    def after_delete(self, row):
        pass


class Compute:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.store = app.sandbox.store
        self.lock = threading.RLock()
        self.ops = {}
        self._public = itertools.count(10)
        self.pending = set()  # paths with a create in flight (a second insert is a 409 as in GCP)
        self.kinds = {}  # collection -> its Collection, registered by the resource modules

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
            row = self.kinds[collection].prepare(body, p, path)
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
                self.kinds[collection].after_insert(row)

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
            new = self.kinds[collection].update(current, body, replace)
            if "fingerprint" in current:
                new["fingerprint"] = fingerprint()

        def done():
            with self.lock:
                if path in self.table(collection):
                    before = self.table(collection)[path]
                    self.table(collection)[path] = new
                    self.kinds[collection].after_update(before, new)

        return self.operation(COLLECTIONS[collection][2], "update" if replace else "patch", path,
                              self.scope_of(collection, p), done)

    def delete(self, collection, req, p):
        current = self.get(collection, p)
        path = unlink(current["selfLink"])
        with self.lock:
            user = self.kinds[collection].user_of(current)
            # A network in use is accepted (200) and its operation ends DONE with RESOURCE_IN_USE_BY_ANOTHER_RESOURCE,
            # as in GCP; the other collections refuse at once with a 400.
            if user and collection != "networks":
                raise in_use(path, user)

        def done():
            with self.lock:
                if collection == "networks":
                    still = self.kinds["networks"].user_of(self.table(collection).get(path) or current)
                    if still:
                        raise in_use(path, still)
                row = self.table(collection).pop(path, None)
                if row:
                    self.kinds[collection].after_delete(row)

        return self.operation("compute.delete", "delete", path, self.scope_of(collection, p), done)

    def handlers(self, collection, *verbs):
        """(verb, handler) of the generic methods for a collection's module to register."""
        generic = {
            "get": lambda req, p: self.get(collection, p),
            "list": lambda req, p: self.list(collection, req, p),
            "aggregatedList": lambda req, p: self.aggregated_list(collection, req, p),
            "insert": lambda req, p: self.insert(collection, req, p),
            "delete": lambda req, p: self.delete(collection, req, p),
            "patch": lambda req, p: self.patch(collection, req, p),
            "update": lambda req, p: self.patch(collection, req, p, replace=True),
        }
        return [(verb, generic[verb]) for verb in verbs]

    # ---- helpers the resource modules share ---------------------------------------------
    def public_ip(self):
        n = next(self._public)
        return "34.118.%d.%d" % (n // 250, n % 250 + 2)

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


def register(app):
    compute = Compute(app)
    app.compute = compute
    for scope in ("globalOperations", "regionOperations", "zoneOperations"):
        app.handle("compute.%s.get" % scope, compute.op_get)
        app.handle("compute.%s.wait" % scope, compute.op_get)
