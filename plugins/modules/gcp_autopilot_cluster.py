#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_autopilot_cluster
short_description: Manage a regional GKE Autopilot cluster
version_added: 0.1.0
description:
  - Creates a regional Autopilot cluster on a VPC subnet and its pod/service secondary ranges, with private nodes,
    optional master authorized networks, Workload Identity, a release channel and a daily maintenance window.
  - Updates go through C(clusters.update), one field per call as GKE requires, each waited for.
  - O(deletion_protection) is enforced by the module (the GKE API has none), so V(absent) is refused while it is on.
  - With O(wait=false) the module returns once the create started; a later call with O(wait=true) waits.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The cluster name.
    type: str
    required: true
  location:
    description: The region.
    type: str
    required: true
  network:
    description: The VPC name. Required with O(state=present).
    type: str
  subnetwork:
    description: The subnetwork name. Required with O(state=present).
    type: str
  pods_range_name:
    description: The subnetwork's secondary range for pods.
    type: str
    default: pods
  services_range_name:
    description: The subnetwork's secondary range for services.
    type: str
    default: services
  master_ipv4_cidr_block:
    description: The /28 the control plane's private endpoint comes from.
    type: str
    default: 172.16.0.0/28
  private_endpoint:
    description: Expose the control plane on its private endpoint only.
    type: bool
    default: false
  master_authorized_networks:
    description: CIDRs allowed to reach the control plane; empty disables the restriction.
    type: list
    elements: str
    default: []
  release_channel:
    description: The release channel.
    type: str
    choices: [RAPID, REGULAR, STABLE, EXTENDED]
    default: REGULAR
  maintenance_start_time:
    description: Start of the daily maintenance window, C(HH:MM) UTC. Set at creation.
    type: str
    default: "03:00"
  database_encryption_key:
    description:
      - The Cloud KMS key for application-layer secrets encryption (Kubernetes Secrets in etcd encrypted with it), in
        full, C(projects/P/locations/L/keyRings/R/cryptoKeys/K). The key must be in O(location), and the GKE service
        agent needs C(roles/cloudkms.cryptoKeyEncrypterDecrypter) on it.
      - Set at creation or later with an update of the cluster (GKE re-encrypts the Secrets). Omitted, the cluster's
        current setting is left alone.
    type: str
  deletion_protection:
    description: Refuse O(state=absent) while on.
    type: bool
    default: true
  wait:
    description: Wait for the create or update to finish.
    type: bool
    default: true
  wait_only:
    description:
      - Change nothing; wait for a cluster being created or changed (started earlier with O(wait=false)) to settle
        and return it, as M(skyforge.prefect_platform.gcp_sql_instance)'s O(wait_only) does for an instance. Never
        reports a change.
    type: bool
    default: false
  state:
    description: Whether the cluster should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The platform's Autopilot cluster
  skyforge.prefect_platform.gcp_autopilot_cluster:
    project: my-project
    name: prefect
    location: europe-west1
    network: prefect-vpc
    subnetwork: prefect-subnet
    master_authorized_networks: [203.0.113.0/24]
"""

RETURN = r"""
cluster:
  description: The cluster (predicted in check mode).
  returned: success
  type: dict
endpoint:
  description: The control plane endpoint.
  returned: when the cluster exists
  type: str
changes:
  description: The fields that differed and were updated.
  returned: when an existing cluster changed
  type: list
  elements: str
"""

import ipaddress
import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_container import GkeCluster

UPDATABLE = {
    "releaseChannel": "desiredReleaseChannel",
    "masterAuthorizedNetworksConfig": "desiredMasterAuthorizedNetworksConfig",
    "workloadIdentityConfig": "desiredWorkloadIdentityConfig",
    "databaseEncryption": "desiredDatabaseEncryption",
}
KEY_RE = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")


class Cluster(GkeCluster):
    immutable = ("network", "subnetwork", "autopilot", "ipAllocationPolicy", "privateClusterConfig", "maintenancePolicy")

    def desired(self):
        p = self.params
        body = {
            "name": self.name,
            "network": p["network"],
            "subnetwork": p["subnetwork"],
            "autopilot": {"enabled": True},
            "ipAllocationPolicy": {"clusterSecondaryRangeName": p["pods_range_name"],
                                   "servicesSecondaryRangeName": p["services_range_name"]},
            "privateClusterConfig": {"enablePrivateNodes": True, "enablePrivateEndpoint": p["private_endpoint"],
                                     "masterIpv4CidrBlock": p["master_ipv4_cidr_block"]},
            "masterAuthorizedNetworksConfig": {
                "enabled": bool(p["master_authorized_networks"]),
                "cidrBlocks": [{"cidrBlock": c} for c in p["master_authorized_networks"]],
            },
            "releaseChannel": {"channel": p["release_channel"]},
            "workloadIdentityConfig": {"workloadPool": "%s.svc.id.goog" % p["project"]},
            "maintenancePolicy": {"window": {"dailyMaintenanceWindow": {"startTime": p["maintenance_start_time"]}}},
        }
        if p["database_encryption_key"]:
            body["databaseEncryption"] = {"state": "ENCRYPTED", "keyName": p["database_encryption_key"]}
        return body

    def create(self, desired):
        op = self.module.execute(self.clusters().create(
            parent="projects/%s/locations/%s" % (self.params["project"], self.params["location"]),
            body={"cluster": desired}), "create", "cluster %s" % self.name, allow_409=True)
        if self.params["wait"]:
            self.module.wait("container", op, resource="cluster %s" % self.name)

    def update(self, current, desired, changes):
        for field in sorted({c.split(".")[0].split("[")[0] for c in changes}):
            body = {"update": {UPDATABLE[field]: desired[field]}}
            op = self.module.execute(self.clusters().update(name=self.path(), body=body), "update",
                                     "cluster %s" % self.name)
            self.module.wait("container", op, resource="cluster %s" % self.name)

    def delete(self, current):
        if self.params["deletion_protection"]:
            self.module.fail_json(msg="cluster %s has deletion_protection on. Fix: set deletion_protection: false "
                                      "with state: absent to delete it." % self.name)
        op = self.module.execute(self.clusters().delete(name=self.path()), "delete", "cluster %s" % self.name)
        self.module.wait("container", op, resource="cluster %s" % self.name)


def endpoint(cluster):
    return {"endpoint": cluster["endpoint"]} if cluster and cluster.get("endpoint") else {}


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            location=dict(type="str", required=True),
            network=dict(type="str"),
            subnetwork=dict(type="str"),
            pods_range_name=dict(type="str", default="pods"),
            services_range_name=dict(type="str", default="services"),
            master_ipv4_cidr_block=dict(type="str", default="172.16.0.0/28"),
            private_endpoint=dict(type="bool", default=False),
            master_authorized_networks=dict(type="list", elements="str", default=[]),
            release_channel=dict(type="str", choices=["RAPID", "REGULAR", "STABLE", "EXTENDED"], default="REGULAR"),
            maintenance_start_time=dict(type="str", default="03:00"),
            database_encryption_key=dict(type="str", no_log=False),
            deletion_protection=dict(type="bool", default=True),
            wait=dict(type="bool", default=True),
            wait_only=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["network", "subnetwork"])],
    )
    p = module.params
    if p["wait_only"]:
        module.settle_only(Cluster(module), extra=endpoint)
    if not re.match(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", p["name"]):
        module.fail_json(msg="name=%r is not a GKE cluster name: up to 40 lowercase letters, digits and hyphens, "
                             "starting with a letter" % p["name"])
    try:
        if ipaddress.ip_network(p["master_ipv4_cidr_block"]).prefixlen != 28:
            raise ValueError()
    except ValueError:
        module.fail_json(msg="master_ipv4_cidr_block=%r must be a /28 such as 172.16.0.0/28" % p["master_ipv4_cidr_block"])
    for cidr in p["master_authorized_networks"]:
        try:
            ipaddress.ip_network(cidr)
        except ValueError:
            module.fail_json(msg="master_authorized_networks: %r is not a CIDR range" % cidr)
    if p["database_encryption_key"] and not KEY_RE.match(p["database_encryption_key"]):
        module.fail_json(msg="database_encryption_key=%r is not a Cloud KMS key name: use "
                             "projects/P/locations/L/keyRings/R/cryptoKeys/K" % p["database_encryption_key"])
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", p["maintenance_start_time"]):
        module.fail_json(msg="maintenance_start_time=%r must be HH:MM in UTC" % p["maintenance_start_time"])
    module.ensure(Cluster(module), extra=endpoint)


if __name__ == "__main__":
    one_exit(main)()
