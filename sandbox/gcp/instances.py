"""compute v1 instances (zonal): insert, get, list, delete, setMetadata, setLabels, setTags, stop, start.

An instance's network interface takes its internal IP from its subnetwork (or a reserved INTERNAL address), gets an
external IP only when it asks for an access config, and moves PROVISIONING -> STAGING -> RUNNING as GCE does.

"Booting" is as far as the sandbox goes: when an instance reaches RUNNING, the sandbox does what its startup
configuration would do that the platform depends on. For the HCP Terraform agent that means: the metadata key
`tfc-agent-token-secret` names a Secret Manager secret; the instance's own service account must be allowed to read it
(roles/secretmanager.secretAccessor); the instance must have a way out (an external IP, or Cloud NAT serving its
subnetwork); then the token is presented to the HCP Terraform stand-in as an agent would.
"""

from __future__ import annotations

import ipaddress
import re
import threading

from ..web import ApiError
from .compute_common import API, NAME_RE, fingerprint, invalid, link, not_found, unlink
from .app import compute_timestamp

MACHINE_TYPES = {"e2-micro": (2, 1024), "e2-small": (2, 2048), "e2-medium": (2, 4096), "e2-standard-2": (2, 8192),
                 "e2-standard-4": (4, 16384), "n2-standard-2": (2, 8192), "n2-standard-4": (4, 16384)}
ZONE_RE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-f]$")
AGENT_TOKEN_KEY = "tfc-agent-token-secret"


class Instances:
    def __init__(self, app, compute):
        self.app = app
        self.compute = compute
        self.sandbox = app.sandbox
        self.lock = threading.RLock()
        self.agents = {}  # instance path -> token presented to the tfc stand-in

    @property
    def table(self):
        return self.sandbox.store.table("compute.instances")

    @staticmethod
    def path(p, name=None):
        return "projects/%s/zones/%s/instances/%s" % (p["project"], p["zone"], name or p["instance"])

    def get(self, req, p):
        row = self.table.get(self.path(p))
        if row is None:
            raise not_found(self.path(p))
        return row

    def list(self, req, p):
        prefix = "projects/%s/zones/%s/instances/" % (p["project"], p["zone"])
        rows = [r for k, r in sorted(self.table.items()) if k.startswith(prefix)]
        return {"kind": "compute#instanceList", "id": prefix, "items": rows, "selfLink": link(prefix.rstrip("/"))}

    # ---- insert ------------------------------------------------------------------------
    def insert(self, req, p):
        body = dict(req.json)
        name = body.get("name") or ""
        if not NAME_RE.match(name):
            raise invalid("Invalid value for field 'resource.name': '%s'. Must be a match of regex "
                          "'(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'" % name)
        zone = p["zone"]
        if not ZONE_RE.match(zone):
            raise ApiError(400, "Invalid value for field 'zone': '%s'. Unknown zone." % zone, reason="invalid")
        region = zone.rsplit("-", 1)[0]
        path = self.path(p, name)
        mt = (body.get("machineType") or "").rsplit("/", 1)[-1]
        if mt not in MACHINE_TYPES:
            raise invalid("Invalid value for field 'resource.machineType': '%s'. Machine type with name '%s' does "
                          "not exist in zone '%s'." % (body.get("machineType"), mt, zone))
        disks = body.get("disks") or []
        boots = [d for d in disks if d.get("boot")]
        if len(boots) != 1:
            raise invalid("Invalid value for field 'resource.disks': exactly one boot disk is required.")
        if not (boots[0].get("initializeParams") or {}).get("sourceImage") and not boots[0].get("source"):
            raise invalid("Invalid value for field 'resource.disks[0].initializeParams.sourceImage': a boot disk "
                          "needs a source image or an existing disk.", reason="required")
        nics = body.get("networkInterfaces") or []
        if not nics:
            raise invalid("Required field 'resource.networkInterfaces' not specified", reason="required")
        with self.lock:
            if path in self.table:
                raise ApiError(409, "The resource '%s' already exists" % path, reason="alreadyExists")
            out_nics = [self._nic(nic, idx, p["project"], region, path) for idx, nic in enumerate(nics)]
            for sa in body.get("serviceAccounts") or []:
                email = sa.get("email", "")
                if email not in ("default", "") and not self._sa_exists(email):
                    raise ApiError(400, "The resource 'projects/%s/serviceAccounts/%s' was not found"
                                   % (p["project"], email), reason="notFound")
            metadata = dict(body.get("metadata") or {})
            metadata.update({"kind": "compute#metadata", "fingerprint": fingerprint()})
            row = dict(body)
            row.update({
                "kind": "compute#instance", "id": self.sandbox.store.next_id(), "name": name,
                "creationTimestamp": compute_timestamp(), "selfLink": link(path), "status": "PROVISIONING",
                "zone": link("projects/%s/zones/%s" % (p["project"], zone)),
                "machineType": link("projects/%s/zones/%s/machineTypes/%s" % (p["project"], zone, mt)),
                "networkInterfaces": out_nics, "metadata": metadata,
                "labelFingerprint": fingerprint(), "cpuPlatform": "Intel Broadwell",
                "tags": dict(body.get("tags") or {}, fingerprint=fingerprint()),
                "disks": [dict(d, kind="compute#attachedDisk", index=i, deviceName=d.get("deviceName", name),
                               source=link("projects/%s/zones/%s/disks/%s" % (p["project"], zone, name if i == 0
                                                                              else "%s-%d" % (name, i))))
                          for i, d in enumerate(disks)],
            })
            for d in row["disks"]:
                d.pop("initializeParams", None)
            self.table[path] = row

        def done():
            row["status"] = "RUNNING"
            row["lastStartTimestamp"] = compute_timestamp()
            self.boot(path, row)

        def failed():
            # A failed insert leaves no instance behind (and frees its internal IP).
            with self.lock:
                if self.table.get(path) is row:
                    self.table.pop(path, None)
            self.release_addresses(path)

        row["status"] = "STAGING"
        return self.compute.operation("compute.instance", "insert", path, "zones/%s" % zone, done, on_fail=failed)

    def release_addresses(self, path):
        """The reserved internal addresses the instance used go back to RESERVED."""
        for addr in self.sandbox.store.table("compute.addresses").values():
            users = addr.get("users") or []
            if link(path) in users:
                users.remove(link(path))
                if not users:
                    addr.pop("users", None)
                    addr["status"] = "RESERVED"

    def _nic(self, nic, idx, project, region, instance_path):
        net = self.compute.resolve_ref(nic.get("network") or "global/networks/default", "networks", project)
        sub_ref = nic.get("subnetwork")
        if not sub_ref:
            raise invalid("Invalid value for field 'resource.networkInterfaces[%d].subnetwork': a custom-mode network "
                          "needs a subnetwork." % idx)
        sub = self.compute.resolve_ref(sub_ref, "subnetworks", project, region, field="subnetwork")
        if sub["network"] != net["selfLink"]:
            raise invalid("Subnetwork '%s' does not belong to network '%s'." % (sub["selfLink"], net["selfLink"]))
        rng = ipaddress.ip_network(sub["ipCidrRange"])
        taken = {n.get("networkIP") for r in self.table.values() for n in r.get("networkInterfaces", [])}
        ip = nic.get("networkIP")
        if ip:
            if not ip[0].isdigit():  # a reserved INTERNAL address, by name or URL
                addr = self.compute.resolve_ref(ip, "addresses", project, region, field="networkIP")
                ip = addr["address"]
            if ipaddress.ip_address(ip) not in rng:
                raise invalid("Requested internal IP address %s is not within subnetwork %s's range %s."
                              % (ip, sub["name"], rng))
            if ip in taken:
                raise ApiError(400, "IP '%s' is already being used by another resource." % ip,
                               reason="resourceInUseByAnotherResource")
            for addr in self.sandbox.store.table("compute.addresses").values():
                if addr.get("address") == ip and addr.get("addressType") == "INTERNAL":
                    addr["status"] = "IN_USE"
                    addr.setdefault("users", []).append(link(instance_path))
        else:
            hosts = rng.hosts()
            next(hosts)  # .1 is the gateway
            ip = next(str(h) for h in hosts if str(h) not in taken)
        out = {"kind": "compute#networkInterface", "name": "nic%d" % idx, "network": net["selfLink"],
               "subnetwork": sub["selfLink"], "networkIP": ip, "stackType": "IPV4_ONLY",
               "fingerprint": fingerprint()}
        configs = []
        for ac in nic.get("accessConfigs") or []:
            configs.append({"kind": "compute#accessConfig", "type": ac.get("type", "ONE_TO_ONE_NAT"),
                            "name": ac.get("name", "External NAT"), "natIP": ac.get("natIP") or self.compute.public_ip(),
                            "networkTier": ac.get("networkTier", "PREMIUM")})
        if configs:
            out["accessConfigs"] = configs
        return out

    def _sa_exists(self, email):
        return any(r.get("email") == email for r in self.sandbox.store.table("iam.serviceAccounts").values())

    # ---- updates -----------------------------------------------------------------------
    def _update(self, req, p, field, fp_field, op_type, apply):
        row = self.get(req, p)
        body = req.json
        current_fp = row[field].get("fingerprint") if fp_field == "fingerprint" else row.get(fp_field)
        if body.get(fp_field) is None:
            raise invalid("Required field 'resource.%s' not specified" % fp_field, reason="required")
        if body.get(fp_field) != current_fp:
            raise ApiError(412, "Supplied fingerprint does not match current fingerprint.", reason="conditionNotMet")
        path = self.path(p)

        def done():
            apply(row, body)
            if row.get("status") == "RUNNING" and field == "metadata":
                self.boot(path, row)

        return self.compute.operation("compute.instance", op_type, path, "zones/%s" % p["zone"], done)

    def set_metadata(self, req, p):
        def apply(row, body):
            row["metadata"] = {"kind": "compute#metadata", "items": body.get("items") or [],
                               "fingerprint": fingerprint()}
        return self._update(req, p, "metadata", "fingerprint", "setMetadata", apply)

    def set_labels(self, req, p):
        def apply(row, body):
            row["labels"] = body.get("labels") or {}
            row["labelFingerprint"] = fingerprint()
        return self._update(req, p, "labels", "labelFingerprint", "setLabels", apply)

    def set_tags(self, req, p):
        def apply(row, body):
            row["tags"] = {"items": body.get("items") or [], "fingerprint": fingerprint()}
        return self._update(req, p, "tags", "fingerprint", "setTags", apply)

    def stop(self, req, p):
        row = self.get(req, p)
        path = self.path(p)
        row["status"] = "STOPPING"

        def done():
            row["status"] = "TERMINATED"
            self.shutdown(path)

        return self.compute.operation("compute.instance", "stop", path, "zones/%s" % p["zone"], done)

    def start(self, req, p):
        row = self.get(req, p)
        path = self.path(p)

        def done():
            row["status"] = "RUNNING"
            self.boot(path, row)

        row["status"] = "STAGING"
        return self.compute.operation("compute.instance", "start", path, "zones/%s" % p["zone"], done)

    def delete(self, req, p):
        row = self.get(req, p)
        path = self.path(p)
        row["status"] = "STOPPING"

        def done():
            with self.lock:
                self.table.pop(path, None)
            self.shutdown(path)
            self.release_addresses(path)

        return self.compute.operation("compute.delete", "delete", path, "zones/%s" % p["zone"], done)

    # ---- what booting does ---------------------------------------------------------------
    def boot(self, path, row):
        items = {i.get("key"): i.get("value") for i in (row.get("metadata") or {}).get("items") or []}
        row["bootReport"] = self.start_agent(path, row, items.get(AGENT_TOKEN_KEY))

    def start_agent(self, path, row, secret_ref):
        if not secret_ref:
            return "no tfc agent configured"
        from .secretmanager import latest_payload, may_read_secret

        project = path.split("/")[1]
        secret = secret_ref.rsplit("/", 1)[-1] if "/secrets/" in secret_ref else secret_ref
        email = ((row.get("serviceAccounts") or [{}])[0]).get("email", "")
        if not may_read_secret(self.sandbox, project, secret, email):
            return "tfc-agent: PERMISSION_DENIED reading secret %s as %s (grant roles/secretmanager.secretAccessor)" \
                   % (secret, email or "no service account")
        if not self.has_egress(row):
            return "tfc-agent: cannot reach HCP Terraform (no external IP and no Cloud NAT serves the subnetwork)"
        payload = latest_payload(self.sandbox, project, secret)
        if not payload:
            return "tfc-agent: secret %s has no version" % secret
        tfc = self.sandbox.tfc
        if tfc is None:
            return "tfc-agent: the HCP Terraform stand-in does not accept agents"
        token = payload.decode().strip()
        nic = (row.get("networkInterfaces") or [{}])[0]
        ok = tfc.register_agent(token, name=row["name"], ip_address=nic.get("networkIP"))
        if not ok:
            return "tfc-agent: HCP Terraform rejected the agent token"
        self.agents[path] = token
        return "tfc-agent: registered"

    def shutdown(self, path):
        token = self.agents.pop(path, None)
        tfc = self.sandbox.tfc
        if token and tfc is not None:
            tfc.stop_agent(path.rsplit("/", 1)[-1])

    def has_egress(self, row):
        nic = (row.get("networkInterfaces") or [{}])[0]
        if nic.get("accessConfigs"):
            return True
        for router in self.sandbox.store.table("compute.routers").values():
            for nat in router.get("nats") or []:
                mode = nat.get("sourceSubnetworkIpRangesToNat")
                if mode == "ALL_SUBNETWORKS_ALL_IP_RANGES" and router.get("network") == nic.get("network"):
                    return True
                for sub in nat.get("subnetworks") or []:
                    if unlink(sub.get("name", "")) == unlink(nic.get("subnetwork", "")):
                        return True
        return False


def register(app):
    inst = Instances(app, app.compute)
    app.instances = inst
    app.handle("compute.instances.insert", inst.insert)
    app.handle("compute.instances.get", inst.get)
    app.handle("compute.instances.list", inst.list)
    app.handle("compute.instances.delete", inst.delete)
    app.handle("compute.instances.setMetadata", inst.set_metadata)
    app.handle("compute.instances.setLabels", inst.set_labels)
    app.handle("compute.instances.setTags", inst.set_tags)
    app.handle("compute.instances.stop", inst.stop)
    app.handle("compute.instances.start", inst.start)
    for verb, fn in app.compute.handlers("instances", "aggregatedList"):
        app.handle("compute.instances.%s" % verb, fn)


__all__ = ["register", "API"]
