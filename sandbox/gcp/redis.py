"""redis v1 (Memorystore for Redis): instances and their operations, each instance a real redis-server.

An instance's endpoint is a private address: from its network's Private Service Access range (connectMode
PRIVATE_SERVICE_ACCESS) or a /29 of reservedIpRange (DIRECT_PEERING). That address is mapped to the loopback
redis-server, never dialled. AUTH is the server's requirepass; SERVER_AUTHENTICATION serves TLS only (port 6378)
with a certificate of the instance's own CA, which serverCaCerts returns.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import threading
import uuid

from ..web import ApiError
from .app import lro, now_rfc3339
from .compute_common import unlink
from .servicenetworking import psa_ranges

ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+\d+$")
VERSIONS = ("REDIS_3_2", "REDIS_4_0", "REDIS_5_0", "REDIS_6_X", "REDIS_7_0", "REDIS_7_2")
# What an update mask may name (snake_case as gcloud sends it, or the JSON names).
UPDATABLE = {"displayName", "labels", "memorySizeGb", "redisConfigs", "replicaCount", "readReplicasMode",
             "secondaryIpRange", "authEnabled", "maintenancePolicy", "persistenceConfig", "maintenanceVersion"}
# redisConfigs Memorystore accepts that the sandbox applies to the server; others are refused as GCP refuses them.
CONFIGS = {"maxmemory-policy", "notify-keyspace-events", "timeout", "lfu-log-factor", "lfu-decay-time",
           "activedefrag", "stream-node-max-bytes", "stream-node-max-entries", "maxmemory-clients"}
# The default /29 blocks for DIRECT_PEERING when no reservedIpRange is given.
DEFAULT_POOL = "10.196.0.0/16"
# Where each instance's redis-server listens, and what its address is mapped to.
LOOPBACK = "127.0.0.1"


def bad(message, status="INVALID_ARGUMENT"):
    return ApiError(400, message, reason="badRequest", status=status)


def _camel(path):
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path.strip())


class Memorystore:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.instances = app.sandbox.store.table("redis.instances")
        self.ops = {}
        self.servers = {}
        self.auth = {}  # instance name -> AUTH string (never in the row: get/list do not return it)
        self.lock = threading.RLock()

    # ---- helpers ------------------------------------------------------------------------
    def _key(self, p):
        return "%s/instances/%s" % (self.app.location_name(p), p["instancesId"])

    def instance(self, p):
        key = self._key(p)
        row = self.instances.get(key)
        if row is None:
            raise ApiError(404, "Resource '%s' was not found" % key, reason="notFound", status="NOT_FOUND")
        return key, row

    def operation(self, location_path, key, verb, kind, on_done, response=True):
        def done():
            out = on_done()
            if response and key in self.instances:
                return dict(self._public(self.instances[key]),
                            **{"@type": "type.googleapis.com/google.cloud.redis.v1.Instance"})
            return out

        op = self.sandbox.ops.start(kind, done, resource="redis/%s" % key)
        name = "%s/operations/%s" % (location_path, op.id)
        meta = {"@type": "type.googleapis.com/google.cloud.redis.v1.OperationMetadata", "createTime": now_rfc3339(),
                "target": key, "verb": verb, "cancelRequested": False, "apiVersion": "v1"}
        self.ops[name] = (op, meta)
        return self.render_op(name)

    def render_op(self, name):
        op, meta = self.ops[name]
        op.poll()
        if op.done and "endTime" not in meta:
            meta["endTime"] = now_rfc3339()
        return lro(op, name, metadata=dict(meta))

    def op_get(self, req, p):
        if p["name"] not in self.ops:
            raise ApiError(404, "Operation '%s' not found" % p["name"], reason="notFound", status="NOT_FOUND")
        return self.render_op(p["name"])

    def op_list(self, req, p):
        prefix = p["name"] + "/operations/"
        return {"operations": [self.render_op(n) for n in sorted(self.ops) if n.startswith(prefix)]}

    def _busy(self, row):
        if row["state"] != "READY":
            raise bad("The instance is in state %s: retry when its current operation has completed."
                      % row["state"], status="FAILED_PRECONDITION")

    # ---- addresses --------------------------------------------------------------------
    def _used_blocks(self):
        return [ipaddress.ip_network(r["_block"]) for r in self.instances.values() if r.get("_block")]

    def _free_block(self, cidr):
        used = self._used_blocks()
        sql = {ipaddress.ip_address(ip["ipAddress"]) for row in self.sandbox.store.table("sqladmin.instances").values()
               for ip in row.get("ipAddresses", [])}
        # From the top of the range down: Cloud SQL takes its addresses from the bottom up.
        for block in reversed(list(ipaddress.ip_network(cidr).subnets(new_prefix=29))):
            if not any(block.overlaps(u) for u in used) and not any(ip in block for ip in sql):
                return block
        return None

    def _network(self, project, value):
        network = unlink(value or "projects/%s/global/networks/default" % project)
        parts = network.split("/")
        if len(parts) != 5 or parts[0] != "projects" or parts[2:4] != ["global", "networks"]:
            raise bad("Invalid authorized network '%s': expected projects/{project}/global/networks/{network}."
                      % value)
        if parts[1] not in (self.app.project, self.app.project_number):
            raise ApiError(403, "Permission denied on network %s." % value, reason="forbidden")
        path = "projects/%s/global/networks/%s" % (self.app.project, parts[4])
        if path not in self.sandbox.store.table("compute.networks"):
            raise bad("Network '%s' does not exist in project %s." % (parts[4], project))
        return path

    def _address(self, network, mode, reserved):
        if mode == "PRIVATE_SERVICE_ACCESS":
            ranges = psa_ranges(self.sandbox, network)
            if not ranges:
                raise bad("Private service access is not configured for network %s: create a private services "
                          "connection (servicenetworking) first." % network, status="FAILED_PRECONDITION")
            if reserved:
                ranges = [r for r in ranges if r[0] == reserved]
                if not ranges:
                    raise bad("The allocated IP range '%s' is not peered with network %s." % (reserved, network))
            for _name, cidr in ranges:
                block = self._free_block(cidr)
                if block is not None:
                    return block
            raise bad("The allocated ranges of network %s have no free /29 block." % network,
                      status="RESOURCE_EXHAUSTED")
        if reserved:
            try:
                block = ipaddress.ip_network(reserved)
            except ValueError:
                raise bad("reservedIpRange '%s' is not a CIDR range; for DIRECT_PEERING use a /29 such as "
                          "10.0.0.0/29." % reserved)
            if block.prefixlen != 29 or not block.is_private:
                raise bad("reservedIpRange '%s' must be a private /29 range." % reserved)
            if any(block.overlaps(u) for u in self._used_blocks()):
                raise bad("reservedIpRange '%s' overlaps another instance's range." % reserved)
            return block
        block = self._free_block(DEFAULT_POOL)
        if block is None:
            raise bad("No free /29 range is left for the instance.", status="RESOURCE_EXHAUSTED")
        return block

    # ---- instances --------------------------------------------------------------------
    def _validate(self, body, creating):
        tier = body.get("tier")
        if creating and tier in (None, "TIER_UNSPECIFIED"):
            raise bad("Field 'tier' is required: BASIC or STANDARD_HA.")
        size = body.get("memorySizeGb")
        if creating and size in (None, 0):
            raise bad("Field 'memory_size_gb' is required.")
        if size is not None and not 1 <= int(size) <= 300:
            raise bad("memory_size_gb must be between 1 and 300 GB (got %s)." % size)
        version = body.get("redisVersion")
        if version is not None and version not in VERSIONS:
            raise bad("Invalid redis_version '%s': use one of %s." % (version, ", ".join(VERSIONS)))
        for name in body.get("redisConfigs") or {}:
            if name not in CONFIGS:
                raise bad("Invalid Redis configuration parameter '%s'." % name)
        if body.get("readReplicasMode") == "READ_REPLICAS_ENABLED":
            raise bad("Read replicas are not available in the sandbox.", status="UNIMPLEMENTED")

    def create(self, req, p):
        project = self.app.project_id(p["projectsId"])
        region = p["locationsId"]
        if not REGION_RE.match(region):
            raise bad("Location '%s' is not a region." % region)
        instance_id = req.query.get("instanceId") or ""
        if not ID_RE.match(instance_id):
            raise bad("Invalid instance_id '%s': 1-40 lowercase letters, digits and hyphens, starting with a letter "
                      "and ending with a letter or digit." % instance_id)
        key = "projects/%s/locations/%s/instances/%s" % (project, region, instance_id)
        body = dict(req.json or {})
        self._validate(body, creating=True)
        try:
            from ..redis_server import find_redis_server

            find_redis_server()
        except FileNotFoundError as exc:
            # Not a 503: clients would retry what only installing the package fixes.
            raise bad("the sandbox cannot run Memorystore instances: %s" % exc, status="FAILED_PRECONDITION")
        with self.lock:
            if key in self.instances:
                raise ApiError(409, "Resource '%s' already exists" % key, reason="alreadyExists",
                               status="ALREADY_EXISTS")
            mode = body.get("connectMode") or "DIRECT_PEERING"
            mode = "DIRECT_PEERING" if mode == "CONNECT_MODE_UNSPECIFIED" else mode
            network = self._network(project, body.get("authorizedNetwork"))
            block = self._address(network, mode, body.get("reservedIpRange"))
            tls = body.get("transitEncryptionMode") == "SERVER_AUTHENTICATION"
            tier = body["tier"]
            zone = body.get("locationId") or region + "-b"
            if not zone.startswith(region + "-"):
                raise bad("locationId '%s' is not a zone of %s." % (zone, region))
            row = {
                "name": key, "displayName": body.get("displayName", ""), "labels": body.get("labels") or {},
                "locationId": zone, "currentLocationId": zone, "redisVersion": body.get("redisVersion") or "REDIS_7_0",
                "reservedIpRange": str(block), "host": str(block.network_address + 3), "port": 6378 if tls else 6379,
                "createTime": now_rfc3339(), "state": "CREATING", "tier": tier,
                "memorySizeGb": int(body["memorySizeGb"]), "authorizedNetwork": network,
                "persistenceIamIdentity": "serviceAccount:service-%s@cloud-redis.iam.gserviceaccount.com"
                                          % self.app.project_number,
                "connectMode": mode, "authEnabled": bool(body.get("authEnabled")),
                "transitEncryptionMode": "SERVER_AUTHENTICATION" if tls else "DISABLED",
                "nodes": [{"id": "node-0", "zone": zone}], "readReplicasMode": "READ_REPLICAS_DISABLED",
                "persistenceConfig": {"persistenceMode": "DISABLED"}, "maintenanceVersion": "20260916_00_00",
                "availableMaintenanceVersions": [], "_block": str(block),
            }
            if body.get("redisConfigs"):
                row["redisConfigs"] = dict(body["redisConfigs"])
            if tier == "STANDARD_HA":
                alt = body.get("alternativeLocationId") or (region + ("-c" if zone != region + "-c" else "-d"))
                row["alternativeLocationId"] = alt
                row["nodes"].append({"id": "node-1", "zone": alt})
                row["replicaCount"] = 1
            self.instances[key] = row
            self.auth[key] = str(uuid.uuid4()) if row["authEnabled"] else None

        def done():
            try:
                self._start(key, row)
            except Exception:
                self.instances.pop(key, None)
                self.auth.pop(key, None)
                raise
            row["state"] = "READY"

        return self.operation("projects/%s/locations/%s" % (project, region), key, "create",
                              "redis.instance.create", done)

    def _start(self, key, row):
        from ..redis_server import RedisServer, make_tls

        directory = os.path.join(self.sandbox.config.state_dir, "redis", hashlib.sha1(key.encode()).hexdigest()[:12])
        os.makedirs(directory, mode=0o700, exist_ok=True)
        tls = row["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
        server = RedisServer(directory, self.sandbox.free_port(), self.sandbox.config.state_dir,
                             "memorystore %s" % key)
        if tls:
            # Pods' env URLs name the host, and the kubelet stand-in rewrites them to the loopback endpoint mapped
            # below: the certificate names that address too, so verification (hostname included) stays on.
            row["serverCaCerts"] = [make_tls(directory, row["host"], key.rsplit("/", 1)[-1],
                                             served_at=[LOOPBACK])]
        server.start(password=self.auth.get(key), tls=tls, maxmemory_gb=row["memorySizeGb"],
                     configs=row.get("redisConfigs"))
        self.servers[key] = server
        self.sandbox.map_address(row["host"], row["port"], LOOPBACK, server.port,
                                 "memorystore:%s" % key.rsplit("/", 1)[-1])

    def get(self, req, p):
        return self._public(self.instance(p)[1])

    @staticmethod
    def _public(row):
        # Proto3 JSON: fields at their default (false, "", empty) are left out, as the real API leaves them out.
        return {k: v for k, v in row.items() if not k.startswith("_") and v not in (False, "", [], {}, None)}

    def list(self, req, p):
        project = self.app.project_id(p["projectsId"])
        location = p["locationsId"]
        rows = [self._public(r) for k, r in sorted(self.instances.items())
                if k.startswith("projects/%s/locations/" % project)
                and (location == "-" or k.split("/")[3] == location)]
        size = int(req.query.get("pageSize") or 1000)
        start = int(req.query.get("pageToken") or 0)
        out = {"instances": rows[start:start + size]}
        if start + size < len(rows):
            out["nextPageToken"] = str(start + size)
        return out

    def patch(self, req, p):
        key, row = self.instance(p)
        mask = [_camel(m) for m in (req.query.get("updateMask") or "").split(",") if m.strip()]
        if not mask:
            raise bad("update_mask must name at least one field.")
        for field in mask:
            if field not in UPDATABLE:
                raise bad("Field '%s' cannot be updated in place (update_mask may name %s)."
                          % (field, ", ".join(sorted(UPDATABLE))))
        body = req.json or {}
        self._validate({k: body.get(k) for k in mask}, creating=False)
        self._busy(row)
        new = {k: body.get(k) for k in mask}
        row["state"] = "UPDATING"

        def done():
            try:
                server = self.servers.get(key)
                password = False
                if "authEnabled" in new and bool(new["authEnabled"]) != row["authEnabled"]:
                    self.auth[key] = str(uuid.uuid4()) if new["authEnabled"] else None
                    password = self.auth[key]
                if server is not None:
                    server.configure(password=password, maxmemory_gb=new.get("memorySizeGb"),
                                     configs=new.get("redisConfigs"))
                for k, v in new.items():
                    if k == "authEnabled":
                        v = bool(v)
                    if v is None:
                        row.pop(k, None)
                    else:
                        row[k] = v
            finally:
                row["state"] = "READY"

        return self.operation(key.rsplit("/instances/", 1)[0], key, "update", "redis.instance.update", done)

    def upgrade(self, req, p):
        key, row = self.instance(p)
        version = (req.json or {}).get("redisVersion")
        if version not in VERSIONS:
            raise bad("Invalid redis_version '%s': use one of %s." % (version, ", ".join(VERSIONS)))
        if VERSIONS.index(version) < VERSIONS.index(row["redisVersion"]):
            raise bad("Cannot downgrade from %s to %s." % (row["redisVersion"], version))
        self._busy(row)
        row["state"] = "UPDATING"

        def done():
            row["redisVersion"] = version
            row["state"] = "READY"

        return self.operation(key.rsplit("/instances/", 1)[0], key, "upgrade", "redis.instance.update", done)

    def delete(self, req, p):
        key, row = self.instance(p)
        self._busy(row)
        row["state"] = "DELETING"

        def done():
            self._stop(key, row)
            self.instances.pop(key, None)
            self.auth.pop(key, None)
            return {"@type": "type.googleapis.com/google.protobuf.Empty"}

        return self.operation(key.rsplit("/instances/", 1)[0], key, "delete", "redis.instance.delete", done,
                              response=False)

    def _stop(self, key, row):
        self.sandbox.unmap_address(row["host"], row["port"])
        server = self.servers.pop(key, None)
        if server is not None:
            server.destroy()

    def get_auth_string(self, req, p):
        key, _row = self.instance(p)
        value = self.auth.get(key)
        return {"authString": value} if value else {}

    def stop_all(self):
        for key, row in list(self.instances.items()):
            self._stop(key, row)


def stopping(app):
    app.memorystore.stop_all()


def register(app):
    ms = Memorystore(app)
    app.memorystore = ms
    base = "redis.projects.locations."
    app.handle(base + "instances.create", ms.create)
    app.handle(base + "instances.get", ms.get)
    app.handle(base + "instances.list", ms.list)
    app.handle(base + "instances.patch", ms.patch)
    app.handle(base + "instances.delete", ms.delete)
    app.handle(base + "instances.upgrade", ms.upgrade)
    app.handle(base + "instances.getAuthString", ms.get_auth_string)
    app.handle(base + "operations.get", ms.op_get)
    app.handle(base + "operations.list", ms.op_list)
