"""container v1: regional Autopilot clusters on the sandbox VPC, one operation at a time per cluster.

The cluster's endpoint is a private address that is never dialled; the Kubernetes API stand-in (when it lands)
registers a loopback endpoint for it through `register_cluster`.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import threading

from ..web import ApiError
from .app import now_rfc3339
from .compute_common import unlink
from .kms import cmek_problem

SELF = "https://container.googleapis.com/v1/"
CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED", "UNSPECIFIED")
VERSIONS = {"RAPID": "1.34.1-gke.1000", "REGULAR": "1.33.5-gke.1100", "STABLE": "1.32.9-gke.1200",
            "EXTENDED": "1.31.13-gke.1300", "UNSPECIFIED": "1.33.5-gke.1100"}


def bad(message):
    return ApiError(400, message, reason="badRequest", status="INVALID_ARGUMENT")


def check_encryption(app, value, location, field):
    """A DatabaseEncryption as GKE stores it; refused as GKE refuses it (a key elsewhere, missing or malformed)."""
    state = (value or {}).get("state", "DECRYPTED")
    if state not in ("ENCRYPTED", "DECRYPTED"):
        raise bad("Invalid value for %s.state: %s." % (field, state))
    if state == "DECRYPTED":
        return {"state": "DECRYPTED", "currentState": "CURRENT_STATE_DECRYPTED"}
    problem = cmek_problem(app, value.get("keyName"), location, field + ".keyName", "cluster")
    if problem:
        raise bad(problem)
    return {"state": "ENCRYPTED", "keyName": value["keyName"], "currentState": "CURRENT_STATE_ENCRYPTED"}


class Container:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.clusters = app.sandbox.store.table("container.clusters")
        self.ops = {}
        self.running = {}
        self.lock = threading.RLock()
        self._ca = None

    def ca(self):
        if self._ca is None:
            from .. import tls

            # A placeholder: where the kube family serves the cluster's API, that API's own CA replaces it.
            cert, _ = tls.new_ca("skyforge-sandbox-gke-ca", 3650, None, use_rsa=True, key_usage=(),
                                 backdate=datetime.timedelta(0))
            self._ca = base64.b64encode(tls.pem(cert)).decode()
        return self._ca

    def op(self, location, kind, op_type, target, fn):
        with self.lock:
            busy = self.running.get(target)
            if busy is not None and not busy.poll():
                raise ApiError(400, "Cluster is running incompatible operation %s." % busy.id,
                               reason="failedPrecondition", status="FAILED_PRECONDITION")
            op = self.sandbox.ops.start(kind, fn, resource=target)
            self.running[target] = op
            self.ops[op.id] = (op, location, op_type, target, now_rfc3339())
        return self.render(op.id)

    def render(self, op_id):
        op, location, op_type, target, started = self.ops[op_id]
        op.poll()
        project = self.app.project_number
        out = {"name": op_id, "zone": location, "location": location, "operationType": op_type,
               "status": "DONE" if op.done else "RUNNING", "startTime": started,
               "selfLink": SELF + "projects/%s/locations/%s/operations/%s" % (project, location, op_id),
               "targetLink": SELF + target}
        if op.done:
            out["endTime"] = now_rfc3339()
            if op.error:
                out["error"] = {"code": 13, "message": op.error}
                out["statusMessage"] = op.error
        return out

    def op_get(self, req, p):
        op_id = p["name"].rsplit("/", 1)[-1]
        if op_id not in self.ops:
            raise ApiError(404, "Operation \"%s\" not found." % p["name"], reason="notFound")
        return self.render(op_id)

    def key(self, p):
        return "projects/%s/locations/%s/clusters/%s" % (self.app.project, p["locationsId"], p["clustersId"])

    def get(self, req, p):
        row = self.clusters.get(self.key(p))
        if row is None:
            raise ApiError(404, "Not found: projects/%s/locations/%s/clusters/%s." % (p["projectsId"], p["locationsId"],
                                                                                     p["clustersId"]), reason="notFound")
        return row

    def list(self, req, p):
        # locations/- lists every location's clusters (what gcloud asks for without --location).
        location = "" if p["locationsId"] == "-" else p["locationsId"] + "/clusters/"
        prefix = "projects/%s/locations/%s" % (self.app.project, location)
        return {"clusters": [r for k, r in sorted(self.clusters.items()) if k.startswith(prefix)]}

    def create(self, req, p):
        cluster = dict(req.json.get("cluster") or {})
        name = cluster.get("name") or ""
        location = p["locationsId"]
        if not name:
            raise bad("Cluster.name is required.")
        key = "projects/%s/locations/%s/clusters/%s" % (self.app.project, location, name)
        if key in self.clusters:
            raise ApiError(409, "Already exists: projects/%s/locations/%s/clusters/%s." % (p["projectsId"], location, name),
                           reason="alreadyExists", status="ALREADY_EXISTS")
        if not (cluster.get("autopilot") or {}).get("enabled"):
            raise bad("The sandbox serves Autopilot clusters only: set autopilot.enabled.")
        network = "projects/%s/global/networks/%s" % (self.app.project, unlink(cluster.get("network") or "default").rsplit("/", 1)[-1])
        if network not in self.sandbox.store.table("compute.networks"):
            raise bad("Network \"%s\" does not exist." % cluster.get("network"))
        sub_key = "projects/%s/regions/%s/subnetworks/%s" % (self.app.project, location,
                                                             unlink(cluster.get("subnetwork") or "").rsplit("/", 1)[-1])
        sub = self.sandbox.store.table("compute.subnetworks").get(sub_key)
        if sub is None:
            raise bad("Subnetwork \"%s\" does not exist in region %s." % (cluster.get("subnetwork"), location))
        ipa = cluster.get("ipAllocationPolicy") or {}
        ranges = {r["rangeName"] for r in sub.get("secondaryIpRanges", [])}
        for field in ("clusterSecondaryRangeName", "servicesSecondaryRangeName"):
            if ipa.get(field) and ipa[field] not in ranges:
                raise bad("Retry budget exhausted: secondary range \"%s\" (%s) not found in subnetwork \"%s\"." % (
                    ipa[field], field, sub["name"]))
        pcc = dict(cluster.get("privateClusterConfig") or {})
        master = pcc.get("masterIpv4CidrBlock", "172.16.0.0/28")
        try:
            master_net = ipaddress.ip_network(master)
        except ValueError:
            raise bad("Invalid master_ipv4_cidr_block: %s" % master)
        if master_net.prefixlen != 28:
            raise bad("master_ipv4_cidr_block must be a /28, got %s." % master)
        channel = (cluster.get("releaseChannel") or {}).get("channel", "REGULAR")
        if channel not in CHANNELS:
            raise bad("Invalid release channel %s." % channel)
        wic = cluster.get("workloadIdentityConfig")
        if wic and wic.get("workloadPool") != "%s.svc.id.goog" % self.app.project:
            raise bad("Workload pool must be %s.svc.id.goog." % self.app.project)
        encryption = check_encryption(self.app, cluster.get("databaseEncryption"), location,
                                      "cluster.databaseEncryption")
        endpoint = str(master_net.network_address + 2)
        pcc.update({"masterIpv4CidrBlock": master, "privateEndpoint": endpoint,
                    "publicEndpoint": "34.118.250.%d" % (len(self.clusters) + 10), "peeringName": "gke-%s-peer" % name})
        row = dict(cluster)
        row.update({
            "name": name, "location": location, "locations": ["%s-b" % location, "%s-c" % location, "%s-d" % location],
            "network": network.rsplit("/", 1)[-1], "subnetwork": sub["name"], "status": "PROVISIONING",
            "selfLink": SELF + "projects/%s/locations/%s/clusters/%s" % (self.app.project, location, name),
            "createTime": now_rfc3339(), "currentMasterVersion": VERSIONS[channel], "initialClusterVersion": VERSIONS[channel],
            # Autopilot manages the nodes at the control plane's version; GKE still reports the (deprecated) field.
            "currentNodeVersion": VERSIONS[channel],
            "endpoint": pcc["publicEndpoint"] if not pcc.get("enablePrivateEndpoint") else endpoint,
            "privateClusterConfig": pcc, "releaseChannel": {"channel": channel},
            "masterAuth": {"clusterCaCertificate": self.ca()}, "id": self.sandbox.store.next_id(),
            "ipAllocationPolicy": dict(ipa, useIpAliases=True), "databaseEncryption": encryption,
        })
        self.clusters[key] = row

        def done():
            row["status"] = "RUNNING"
            kube = self.sandbox.kube
            if kube is not None:
                info = kube.register_cluster(key, row["endpoint"])
                row["masterAuth"]["clusterCaCertificate"] = info["ca_certificate"]

        return self.op(location, "container.cluster.create", "CREATE_CLUSTER", key, done)

    def update(self, req, p):
        row = self.get(req, p)
        key = self.key(p)
        update = req.json.get("update") or {}
        fields = [k for k, v in update.items() if v is not None]
        if len(fields) != 1:
            raise bad("Exactly one desired field can be updated per call; got %s." % (fields or "none"))
        if row["status"] != "RUNNING":
            raise ApiError(400, "Cluster is not RUNNING (it is %s)." % row["status"], reason="failedPrecondition",
                           status="FAILED_PRECONDITION")
        field = fields[0]
        value = update[field]
        mapping = {"desiredReleaseChannel": "releaseChannel",
                   "desiredMasterAuthorizedNetworksConfig": "masterAuthorizedNetworksConfig",
                   "desiredWorkloadIdentityConfig": "workloadIdentityConfig",
                   "desiredDatabaseEncryption": "databaseEncryption"}
        if field not in mapping:
            raise ApiError(501, "the sandbox does not implement ClusterUpdate.%s" % field, status="UNIMPLEMENTED")
        if field == "desiredDatabaseEncryption":
            value = check_encryption(self.app, value, p["locationsId"], "update.desiredDatabaseEncryption")

        def done():
            row[mapping[field]] = value
            if field == "desiredReleaseChannel":
                row["currentMasterVersion"] = VERSIONS.get(value.get("channel"), row["currentMasterVersion"])
                row["currentNodeVersion"] = row["currentMasterVersion"]
            row["status"] = "RUNNING"

        row["status"] = "RECONCILING"
        return self.op(p["locationsId"], "container.cluster.update", "UPDATE_CLUSTER", key, done)

    def delete(self, req, p):
        row = self.get(req, p)
        key = self.key(p)
        row["status"] = "STOPPING"

        def done():
            self.clusters.pop(key, None)
            kube = self.sandbox.kube
            if kube is not None:
                kube.unregister_cluster(key)

        return self.op(p["locationsId"], "container.cluster.delete", "DELETE_CLUSTER", key, done)


def register(app):
    c = Container(app)
    app.container = c
    base = "container.projects.locations.clusters."
    app.handle(base + "create", c.create)
    app.handle(base + "get", c.get)
    app.handle(base + "list", c.list)
    app.handle(base + "update", c.update)
    app.handle(base + "delete", c.delete)
    app.handle("container.projects.locations.operations.get", c.op_get)


