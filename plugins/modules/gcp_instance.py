#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_instance
short_description: Manage a small Compute Engine VM on a private subnetwork
version_added: 0.1.0
description:
  - Creates, updates or deletes a zonal VM with one network interface, a boot disk from an image, a service account
    and metadata (for example a startup script), such as the HCP Terraform agent VM.
  - Metadata, labels and network tags are updated in place with their fingerprints; the machine type, image, disk,
    network, internal IP, external IP and service account cannot change in place.
  - No external IP unless O(external_ip=true); the VM then reaches the internet only through Cloud NAT.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The instance name.
    type: str
    required: true
  zone:
    description: The zone, for example C(europe-west1-b).
    type: str
    required: true
  machine_type:
    description: The machine type.
    type: str
    default: e2-micro
  image:
    description: The boot image, for example C(projects/cos-cloud/global/images/family/cos-stable).
    type: str
    default: projects/cos-cloud/global/images/family/cos-stable
  disk_size_gb:
    description: Boot disk size.
    type: int
    default: 10
  network:
    description: The VPC network (name or URL).
    type: str
    required: true
  subnetwork:
    description: The subnetwork (name or URL) in the zone's region.
    type: str
    required: true
  network_ip:
    description: A static internal IP, or the name of a reserved INTERNAL address.
    type: str
  external_ip:
    description: Whether the VM gets an ephemeral external IP.
    type: bool
    default: false
  service_account_email:
    description: The service account the VM runs as.
    type: str
  scopes:
    description: OAuth scopes of that service account.
    type: list
    elements: str
    default: ['https://www.googleapis.com/auth/cloud-platform']
  metadata:
    description: Metadata key/values, for example C(startup-script) or C(gce-container-declaration).
    type: dict
    default: {}
  tags:
    description: Network tags (firewall rules target them).
    type: list
    elements: str
    default: []
  labels:
    description: Labels.
    type: dict
    default: {}
  shielded_vm:
    description: Secure boot, vTPM and integrity monitoring.
    type: bool
    default: true
  state:
    description: Whether the instance should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The HCP Terraform agent VM, private only
  skyforge.prefect_platform.gcp_instance:
    project: my-project
    name: tfc-agent
    zone: europe-west1-b
    network: prefect-vpc
    subnetwork: prefect-subnet
    network_ip: tfc-agent-ip
    service_account_email: tfc-agent@my-project.iam.gserviceaccount.com
    metadata:
      tfc-agent-token-secret: tfc-agent-token
"""

RETURN = r"""
instance:
  description: The instance as the API returns it (predicted in check mode).
  returned: success
  type: dict
internal_ip:
  description: The VM's internal IP.
  returned: when the instance exists
  type: str
external_ip:
  description: The VM's external IP, when it has one.
  returned: when the instance has one
  type: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_compute import (
    COMPUTE_ROOT,
    ComputeResource,
    check_name,
)


def metadata_items(metadata):
    return sorted((i["key"], i.get("value")) for i in (metadata or {}).get("items") or [])


class Instance(ComputeResource):
    kind = "instance"
    collection = "instances"
    name_param = "instance"
    immutable = ("machineType", "disks", "networkInterfaces", "serviceAccounts", "shieldedInstanceConfig")

    @property
    def region(self):
        return self.params["zone"].rsplit("-", 1)[0]

    def _args(self, **extra):
        args = dict(project=self.params["project"], zone=self.params["zone"])
        args.update(extra)
        return args

    def _regional(self, ref, collection):
        if ref is None or ref.startswith("https://") or "/" in ref:
            return self.link(ref)
        return COMPUTE_ROOT + "projects/%s/regions/%s/%s/%s" % (self.params["project"], self.region, collection, ref)

    def desired(self):
        p = self.params
        nic = {"network": self.link(p["network"], "networks", regional=False),
               "subnetwork": self._regional(p["subnetwork"], "subnetworks")}
        if p["network_ip"]:
            nic["networkIP"] = p["network_ip"] if p["network_ip"][0].isdigit() else \
                self._regional(p["network_ip"], "addresses")
        if p["external_ip"]:
            nic["accessConfigs"] = [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}]
        body = {
            "name": p["name"],
            "machineType": COMPUTE_ROOT + "projects/%s/zones/%s/machineTypes/%s" % (p["project"], p["zone"],
                                                                                    p["machine_type"]),
            "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
                "sourceImage": p["image"], "diskSizeGb": str(p["disk_size_gb"])}}],
            "networkInterfaces": [nic],
            "metadata": {"items": [{"key": k, "value": str(v)} for k, v in sorted(p["metadata"].items())]},
            "tags": {"items": sorted(p["tags"])},
            "labels": p["labels"],
            "shieldedInstanceConfig": {"enableSecureBoot": p["shielded_vm"], "enableVtpm": p["shielded_vm"],
                                       "enableIntegrityMonitoring": p["shielded_vm"]},
        }
        if p["service_account_email"]:
            body["serviceAccounts"] = [{"email": p["service_account_email"], "scopes": p["scopes"]}]
        return body

    def changes(self, desired, current):
        out = []
        if desired["machineType"] != current.get("machineType"):
            out.append("machineType")
        nic, have = desired["networkInterfaces"][0], (current.get("networkInterfaces") or [{}])[0]
        for key in ("network", "subnetwork"):
            if nic[key] != have.get(key):
                out.append("networkInterfaces[0].%s" % key)
        if "networkIP" in nic and nic["networkIP"][0].isdigit() and nic["networkIP"] != have.get("networkIP"):
            out.append("networkInterfaces[0].networkIP")
        if bool(nic.get("accessConfigs")) != bool(have.get("accessConfigs")):
            out.append("networkInterfaces[0].accessConfigs")
        want_sa = [(s["email"], sorted(s["scopes"])) for s in desired.get("serviceAccounts", [])]
        have_sa = [(s.get("email"), sorted(s.get("scopes", []))) for s in current.get("serviceAccounts", [])]
        if want_sa != have_sa:
            out.append("serviceAccounts")
        if desired["shieldedInstanceConfig"] != current.get("shieldedInstanceConfig", desired["shieldedInstanceConfig"]):
            out.append("shieldedInstanceConfig")
        if metadata_items(desired["metadata"]) != metadata_items(current.get("metadata")):
            out.append("metadata")
        if sorted(desired["tags"]["items"]) != sorted((current.get("tags") or {}).get("items") or []):
            out.append("tags")
        if desired["labels"] != (current.get("labels") or {}):
            out.append("labels")
        return out

    def update(self, current, desired, changes):
        coll = self._coll()
        name = dict(instance=self.name)
        if "metadata" in changes:
            body = dict(desired["metadata"], fingerprint=current["metadata"].get("fingerprint"))
            self._run(coll.setMetadata(body=body, **self._args(**name)), "setMetadata")
        if "tags" in changes:
            body = dict(desired["tags"], fingerprint=(current.get("tags") or {}).get("fingerprint"))
            self._run(coll.setTags(body=body, **self._args(**name)), "setTags")
        if "labels" in changes:
            body = {"labels": desired["labels"], "labelFingerprint": current.get("labelFingerprint")}
            self._run(coll.setLabels(body=body, **self._args(**name)), "setLabels")

    def predict(self, current, desired):
        out = dict(current or {})
        out.update(desired)
        return out

    def view(self, resource):
        if not resource:
            return resource
        out = dict((k, v) for k, v in resource.items() if k not in ("kind", "selfLinkWithId", "bootReport"))
        for key in ("metadata", "tags"):
            if isinstance(out.get(key), dict):
                out[key] = dict((k, v) for k, v in out[key].items() if k not in ("fingerprint", "kind"))
        out.pop("labelFingerprint", None)
        return out


def ips(instance):
    nic = ((instance or {}).get("networkInterfaces") or [{}])[0]
    out = {}
    if nic.get("networkIP"):
        out["internal_ip"] = nic["networkIP"]
    configs = nic.get("accessConfigs") or []
    if configs and configs[0].get("natIP"):
        out["external_ip"] = configs[0]["natIP"]
    return out


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            zone=dict(type="str", required=True),
            machine_type=dict(type="str", default="e2-micro"),
            image=dict(type="str", default="projects/cos-cloud/global/images/family/cos-stable"),
            disk_size_gb=dict(type="int", default=10),
            network=dict(type="str", required=True),
            subnetwork=dict(type="str", required=True),
            network_ip=dict(type="str"),
            external_ip=dict(type="bool", default=False),
            service_account_email=dict(type="str"),
            scopes=dict(type="list", elements="str", default=["https://www.googleapis.com/auth/cloud-platform"]),
            metadata=dict(type="dict", default={}),
            tags=dict(type="list", elements="str", default=[]),
            labels=dict(type="dict", default={}),
            shielded_vm=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    check_name(module, module.params["name"])
    if module.params["disk_size_gb"] < 10:
        module.fail_json(msg="disk_size_gb=%d is too small: boot disks are at least 10 GB" % module.params["disk_size_gb"])
    module.ensure(Instance(module), extra=ips)


if __name__ == "__main__":
    one_exit(main)()
