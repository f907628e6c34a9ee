#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_memorystore_instance
short_description: Manage a Memorystore for Redis instance on a private address
version_added: 0.1.0
description:
  - Creates, updates or deletes a Memorystore for Redis instance (redis.googleapis.com v1) reachable only on a
    private address of the given VPC, by default through its Private Service Access range, with Redis AUTH and TLS
    (server authentication) on.
  - The memory size and AUTH are changed in place; a newer O(redis_version) upgrades the instance (Memorystore cannot
    downgrade). The tier, connect mode, network, region and transit encryption mode cannot change in place; the
    module fails naming the field, and the fix is to delete the instance and create it again.
  - With O(auth_string_secret) and AUTH on, the instance's AUTH string is stored in that Secret Manager secret (the
    secret is created when missing); a version is added only when the latest stored value differs. The AUTH string is
    never returned, logged or shown in a diff.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The instance ID (1 to 40 lowercase letters, digits and hyphens, starting with a letter).
    type: str
    required: true
  region:
    description: The region the instance lives in.
    type: str
    required: true
  tier:
    description: C(BASIC) (one node) or C(STANDARD_HA) (a replica in another zone, automatic failover).
    type: str
    choices: [BASIC, STANDARD_HA]
    default: BASIC
  memory_size_gb:
    description: Memory size in GiB, 1 to 300.
    type: int
    default: 1
  redis_version:
    description: The Redis version. A newer version than the instance's upgrades it.
    type: str
    choices: [REDIS_6_X, REDIS_7_0, REDIS_7_2]
    default: REDIS_7_2
  authorized_network:
    description: The VPC (name, C(projects/<p>/global/networks/<n>) or URL) the instance is reachable from. Required
      with O(state=present).
    type: str
  connect_mode:
    description:
      - C(PRIVATE_SERVICE_ACCESS) takes the address from the network's Private Service Access range (create the
        connection first, M(skyforge.prefect_platform.gcp_service_networking_connection)); C(DIRECT_PEERING) peers
        a /29 of its own.
    type: str
    choices: [PRIVATE_SERVICE_ACCESS, DIRECT_PEERING]
    default: PRIVATE_SERVICE_ACCESS
  auth_enabled:
    description: Require the instance's AUTH string from clients.
    type: bool
    default: true
  transit_encryption_mode:
    description: C(SERVER_AUTHENTICATION) serves TLS only (port 6378), with certificates of the instance's CA, which
      RV(server_ca_certs) returns.
    type: str
    choices: [SERVER_AUTHENTICATION, DISABLED]
    default: SERVER_AUTHENTICATION
  auth_string_secret:
    description:
      - ID of a Secret Manager secret in O(project) to keep the AUTH string in, when O(auth_enabled) is true.
      - The secret is created when missing and gets a new version only when the AUTH string differs from its latest
        version. With O(state=absent) the secret is left alone (M(skyforge.prefect_platform.gcp_secret) removes it).
    type: str
  state:
    description: Whether the instance should exist.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - Wait for the create, update or delete operation to finish (up to O(wait_timeout) seconds).
      - With O(wait=false) a new instance's AUTH string is stored by a later run with O(wait=true), which waits for
        the instance to be ready.
    type: bool
    default: true
notes:
  - Needs roles/redis.admin for the instance, and roles/secretmanager.admin for O(auth_string_secret).
"""

EXAMPLES = r"""
- name: The Prefect server's Redis (messaging and cache), AUTH string in Secret Manager
  skyforge.prefect_platform.gcp_memorystore_instance:
    project: my-project
    name: prefect-redis
    region: europe-west1
    tier: STANDARD_HA
    memory_size_gb: 1
    authorized_network: prefect-vpc
    auth_string_secret: prefect-redis-auth

- name: Remove it
  skyforge.prefect_platform.gcp_memorystore_instance:
    project: my-project
    name: prefect-redis
    region: europe-west1
    state: absent
"""

RETURN = r"""
instance:
  description: The instance as the API returns it (predicted in check mode). It never holds the AUTH string.
  returned: success
  type: dict
  sample: {"name": "projects/p/locations/europe-west1/instances/prefect-redis", "state": "READY", "port": 6378}
host:
  description: The instance's private address.
  returned: when the instance exists and has one
  type: str
  sample: 10.120.15.251
port:
  description: The port clients connect to (6378 with TLS, 6379 without).
  returned: when the instance exists
  type: int
  sample: 6378
state:
  description: The instance's state (C(CREATING), C(READY), ...), or C(ABSENT).
  returned: always
  type: str
  sample: READY
server_ca_certs:
  description: The PEM certificates of the CA that signs the instance's TLS certificate (public).
  returned: when transit encryption is on and the instance is ready
  type: list
  elements: str
auth_string_version:
  description: The Secret Manager version holding the AUTH string (C(pending) in check mode when one would be added).
  returned: when O(auth_string_secret) is set and AUTH is on
  type: str
  sample: projects/p/secrets/prefect-redis-auth/versions/1
changes:
  description: The fields that differed and were updated.
  returned: when an existing instance changed
  type: list
  elements: str
"""

import base64
import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import diff_dict
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import crc32c, GcpModule, GcpResource
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import (
    location_path,
    network_path,
    project_path,
    secret_path,
)

NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
VERSIONS = ("REDIS_3_2", "REDIS_4_0", "REDIS_5_0", "REDIS_6_X", "REDIS_7_0", "REDIS_7_2")
SETTLING = ("CREATING", "UPDATING")
# Proto3 JSON leaves fields at their default out of a read: what a missing field means.
DEFAULTS = {"authEnabled": False, "transitEncryptionMode": "DISABLED", "connectMode": "DIRECT_PEERING"}


class MemorystoreInstance(GcpResource):
    api = "redis"
    kind = "instance"
    immutable = ("tier", "connectMode", "authorizedNetwork", "transitEncryptionMode")
    # Started earlier with wait=false (or by a concurrent run): the next call that waits settles it first.
    settle_field = "state"
    settling = SETTLING
    read_defaults = DEFAULTS

    @property
    def path(self):
        return "%s/instances/%s" % (location_path(self.params["project"], self.params["region"]), self.name)

    def _instances(self):
        return self.client().projects().locations().instances()

    def label(self):
        return "Memorystore instance %s" % self.name

    def read(self):
        return self.fill_defaults(self.module.get(self._instances().get(name=self.path), resource=self.label()))

    def get(self):
        current = self.read()
        if current is None and self.params["state"] == "present":
            self.other_region()
        return current

    def other_region(self):
        """The instance under the same name in another region: region cannot change in place."""
        listing = self.module.get(
            self._instances().list(parent=location_path(self.params["project"])),
            resource="Memorystore instances") or {}
        for inst in listing.get("instances", []):
            if inst.get("name", "").rsplit("/", 1)[-1] == self.name:
                region = inst["name"].split("/")[3]
                self.module.fail_json(
                    msg="instance %s: region cannot be changed in place (current %s). Fix: keep region %s, or delete "
                        "the instance (state=absent, region=%s) and create it again." % ((self.name,) + (region,) * 3))

    def desired(self):
        p = self.params
        network = p["authorized_network"].rstrip("/").rsplit("/", 1)[-1]
        return {
            "tier": p["tier"],
            "memorySizeGb": p["memory_size_gb"],
            "redisVersion": p["redis_version"],
            "authorizedNetwork": network_path(p["project"], network),
            "connectMode": p["connect_mode"],
            "authEnabled": p["auth_enabled"],
            "transitEncryptionMode": p["transit_encryption_mode"],
        }

    def predict(self, current, desired):
        out = super(MemorystoreInstance, self).predict(current, desired)
        if current is None:
            out.update(name=self.path, state="READY", port=6378 if desired["transitEncryptionMode"] ==
                       "SERVER_AUTHENTICATION" else 6379)
        return out

    def _wait(self, op, always=False):
        if always or self.params["wait"]:
            self.module.wait("redis", op, resource=self.label())

    def create(self, desired):
        parent = location_path(self.params["project"], self.params["region"])
        op = self.module.execute(self._instances().create(parent=parent, instanceId=self.name, body=desired),
                                 "create", self.label(), allow_409=True)
        self._wait(op)

    def update(self, current, desired, changes):
        fields = sorted(set(c.split(".")[0] for c in changes))
        if "redisVersion" in fields:
            if VERSIONS.index(desired["redisVersion"]) < VERSIONS.index(current.get("redisVersion", "REDIS_7_0")):
                self.module.fail_json(msg="%s: redis_version cannot go from %s down to %s (Memorystore only upgrades). "
                                          "Fix: keep %s, or delete the instance and create it again."
                                      % (self.label(), current["redisVersion"], desired["redisVersion"],
                                         current["redisVersion"]))
            op = self.module.execute(self._instances().upgrade(name=self.path,
                                                               body={"redisVersion": desired["redisVersion"]}),
                                     "upgrade", self.label())
            # The next change needs the instance READY again.
            self._wait(op, always=len(fields) > 1)
        mask = [f for f in fields if f in ("memorySizeGb", "authEnabled")]
        if mask:
            body = dict((f, desired[f]) for f in mask)
            op = self.module.execute(self._instances().patch(name=self.path, updateMask=",".join(mask), body=body),
                                     "patch", self.label())
            self._wait(op)

    def delete(self, current):
        op = self.module.execute(self._instances().delete(name=self.path), "delete", self.label())
        self._wait(op)


def sync_auth_string(module, result):
    """Keep the AUTH string in the secret; mark the result changed (and the diff) when a version is added."""
    p = module.params
    instance = result.get("instance") or {}
    if not instance.get("authEnabled"):
        return
    if instance.get("state") in SETTLING and not module.check_mode:
        module.warn("Memorystore instance %s is %s: its AUTH string was not stored in secret %s. Run again with "
                    "wait: true to store it." % (p["name"], instance["state"], p["auth_string_secret"]))
        return
    value = None
    if instance.get("createTime"):
        auth = module.get(module.client("redis").projects().locations().instances().getAuthString(
            name=instance["name"]), resource="AUTH string of Memorystore instance %s" % p["name"]) or {}
        value = auth.get("authString")
    if value:
        # Whatever else is printed, Ansible scrubs this value from it.
        module.no_log_values.add(value)
    sm = module.client("secretmanager").projects().secrets()
    name = secret_path(p["project"], p["auth_string_secret"])
    label = "secret %s" % p["auth_string_secret"]
    secret = module.get(sm.get(name=name), resource=label)
    latest = None
    if secret is not None:
        latest = module.get(sm.versions().access(name="%s/versions/latest" % name), resource=label)
    stored = base64.b64decode(latest["payload"]["data"]).decode("utf-8") if latest else None
    if value is not None and value == stored:
        result["auth_string_version"] = latest["name"]
        return
    version = "pending"
    if not module.check_mode:
        if value is None:
            module.fail_json(msg="Memorystore instance %s has AUTH on but returned no AUTH string. Fix: run again "
                                 "once the instance is READY (wait: true)." % p["name"])
        if secret is None:
            module.execute(sm.create(parent=project_path(p["project"]), secretId=p["auth_string_secret"],
                                     body={"replication": {"automatic": {}}}), "create", label)
        data = value.encode("utf-8")
        added = module.execute(sm.addVersion(parent=name, body={"payload": {
            "data": base64.b64encode(data).decode("ascii"), "dataCrc32c": str(crc32c(data))}}), "addVersion", label)
        version = added["name"]
    result["auth_string_version"] = version
    result["changed"] = True
    diff = result.setdefault("diff", diff_dict(None, None))
    # The diff says the secret gets a new value, never what either value is.
    diff["before"] = dict(diff.get("before") or {}, auth_string_secret="previous value" if latest else "none")
    diff["after"] = dict(diff.get("after") or {}, auth_string_secret="new value")


def outputs(instance):
    instance = instance or {}
    out = {"state": instance.get("state", "ABSENT") if instance else "ABSENT"}
    if instance.get("host"):
        out["host"] = instance["host"]
    if instance.get("port"):
        out["port"] = instance["port"]
    if instance.get("serverCaCerts"):
        out["server_ca_certs"] = [c["cert"] for c in instance["serverCaCerts"] if c.get("cert")]
    return out


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            region=dict(type="str", required=True),
            tier=dict(type="str", choices=["BASIC", "STANDARD_HA"], default="BASIC"),
            memory_size_gb=dict(type="int", default=1),
            redis_version=dict(type="str", choices=["REDIS_6_X", "REDIS_7_0", "REDIS_7_2"], default="REDIS_7_2"),
            authorized_network=dict(type="str"),
            connect_mode=dict(type="str", choices=["PRIVATE_SERVICE_ACCESS", "DIRECT_PEERING"],
                              default="PRIVATE_SERVICE_ACCESS"),
            auth_enabled=dict(type="bool", default=True),
            transit_encryption_mode=dict(type="str", choices=["SERVER_AUTHENTICATION", "DISABLED"],
                                         default="SERVER_AUTHENTICATION"),
            auth_string_secret=dict(type="str", no_log=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            wait=dict(type="bool", default=True),
        ),
        required_if=[("state", "present", ["authorized_network"])],
    )
    p = module.params
    if not NAME_RE.match(p["name"]):
        module.fail_json(msg="name=%r is not a valid Memorystore instance ID: 1 to 40 lowercase letters, digits and "
                             "hyphens, starting with a letter and ending with a letter or digit" % p["name"])
    if not re.match(r"^[a-z]+-[a-z]+\d+$", p["region"]):
        module.fail_json(msg="region=%r is not a region such as europe-west1 (Memorystore instances are regional; "
                             "the zone is chosen by the service)" % p["region"])
    if not 1 <= p["memory_size_gb"] <= 300:
        module.fail_json(msg="memory_size_gb=%d is out of range: use 1 to 300" % p["memory_size_gb"])
    if p["auth_string_secret"] is not None and not re.match(r"^[A-Za-z0-9_-]{1,255}$", p["auth_string_secret"]):
        module.fail_json(msg="auth_string_secret=%r is not a valid Secret Manager secret ID: 1 to 255 letters, "
                             "digits, hyphens and underscores" % p["auth_string_secret"])
    result = module.converge(MemorystoreInstance(module), extra=outputs)
    # The AUTH string goes to Secret Manager once the instance is what was asked.
    if p["state"] == "present" and p["auth_string_secret"]:
        sync_auth_string(module, result)
    module.exit_json(**result)


if __name__ == "__main__":
    one_exit(main)()
