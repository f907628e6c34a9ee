#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_sql_instance
short_description: Manage a Cloud SQL for PostgreSQL (or MySQL) instance on a private IP
version_added: 0.1.0
description:
  - Creates a PostgreSQL (or MySQL) instance with a private IP on the given VPC (through its Private Service Access
    range) and no public IP, TLS required, backups with point-in-time recovery, a maintenance window, flags and deletion
    protection.
  - Settings changes, including a tier change, are applied in place with the instance's current settingsVersion, so
    a concurrent change is detected instead of overwritten. Data survives a tier change.
  - With O(wait=false) the module returns once the operation started, so a playbook can start a GKE cluster at the
    same time; a later call with O(wait=true) waits for it.
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
  region:
    description: The region. Required with O(state=present).
    type: str
  database_version:
    description:
      - The database engine and version. The Prefect platform needs PostgreSQL; C(MYSQL_8_0) and C(MYSQL_8_4) are
        for other applications (the sandbox serves MySQL instances as API objects only, with no server behind them).
    type: str
    choices: [POSTGRES_13, POSTGRES_14, POSTGRES_15, POSTGRES_16, POSTGRES_17, MYSQL_8_0, MYSQL_8_4]
    default: POSTGRES_16
  tier:
    description: The machine tier, for example C(db-custom-1-3840) or C(db-perf-optimized-N-2).
    type: str
    default: db-custom-1-3840
  edition:
    description: Cloud SQL edition.
    type: str
    choices: [ENTERPRISE, ENTERPRISE_PLUS]
    default: ENTERPRISE
  availability_type:
    description: C(REGIONAL) for high availability.
    type: str
    choices: [ZONAL, REGIONAL]
    default: ZONAL
  network:
    description: The VPC (name or URL) the private IP comes from. Required with O(state=present).
    type: str
  allocated_ip_range:
    description: Name of the Private Service Access range to take the IP from; any peered range when omitted.
    type: str
  ssl_mode:
    description: Which connections the instance accepts.
    type: str
    choices: [ENCRYPTED_ONLY, TRUSTED_CLIENT_CERTIFICATE_REQUIRED, ALLOW_UNENCRYPTED_AND_ENCRYPTED]
    default: ENCRYPTED_ONLY
  backups:
    description: Daily backups with point-in-time recovery.
    type: bool
    default: true
  backup_start_time:
    description: Start of the backup window, C(HH:MM) UTC.
    type: str
    default: "03:00"
  maintenance_window:
    description: Maintenance window, day 1 (Monday) to 7 and hour 0-23 UTC.
    type: dict
    suboptions:
      day:
        description: Day of the week, 1 (Monday) to 7.
        type: int
        required: true
      hour:
        description: Hour of the day, UTC.
        type: int
        required: true
  flags:
    description: Database flags as name/value pairs.
    type: dict
    default: {}
  deletion_protection:
    description: Refuse deletion while on.
    type: bool
    default: true
  disk_encryption_key:
    description:
      - The Cloud KMS key that encrypts the instance's disks and backups (CMEK), in full,
        C(projects/P/locations/L/keyRings/R/cryptoKeys/K). The key must be in O(region), and the Cloud SQL service
        agent needs C(roles/cloudkms.cryptoKeyEncrypterDecrypter) on it.
      - Set only when the instance is created; a different key on an existing instance fails (it cannot be changed
        in place). Google-managed encryption when omitted.
    type: str
  force:
    description:
      - With O(state=absent), turn the instance's deletion protection off (a patch of that one setting, sent only
        when the instance exists and has it on) and then delete it. Never creates an instance, so a teardown run
        twice makes no write the second time.
    type: bool
    default: false
  wait:
    description: Wait for the create or update operation to finish.
    type: bool
    default: true
  wait_only:
    description:
      - Change nothing; wait for the instance's running operations (started earlier with O(wait=false)) and return
        the instance. Never reports a change.
    type: bool
    default: false
  state:
    description: Whether the instance should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Prefect's database server, private IP only
  skyforge.prefect_platform.gcp_sql_instance:
    project: my-project
    name: prefect-db
    region: europe-west1
    network: prefect-vpc
    tier: db-custom-1-3840
    maintenance_window: {day: 7, hour: 3}
"""

RETURN = r"""
instance:
  description: The instance as the API returns it (predicted in check mode).
  returned: success
  type: dict
private_ip:
  description: The instance's private IP.
  returned: when the instance exists and has one
  type: str
changes:
  description: The settings that differed and were updated.
  returned: when an existing instance changed
  type: list
  elements: str
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule, GcpResource

KEY_RE = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
TIER_RE = re.compile(r"^(db-f1-micro|db-g1-small|db-custom-\d+-\d+|db-perf-optimized-N-\d+)$")


class SqlInstance(GcpResource):
    api = "sqladmin"
    kind = "instance"
    immutable = ("databaseVersion", "region", "settings.ipConfiguration.privateNetwork", "diskEncryptionConfiguration")
    # Started earlier with wait=false: the next call that waits settles it (ensure()), or settle() below.
    settle_field = "state"
    settling = ("PENDING_CREATE",)

    def _instances(self):
        return self.client().instances()

    def label(self):
        return "Cloud SQL instance %s" % self.name

    def get(self):
        return self.module.get(self._instances().get(project=self.params["project"], instance=self.name),
                               resource=self.label())

    def desired(self):
        p = self.params
        settings = {
            "tier": p["tier"],
            "edition": p["edition"],
            "availabilityType": p["availability_type"],
            "ipConfiguration": {
                "ipv4Enabled": False,
                "privateNetwork": "projects/%s/global/networks/%s" % (p["project"], p["network"].rsplit("/", 1)[-1]),
                "sslMode": p["ssl_mode"],
            },
            "backupConfiguration": {
                "enabled": p["backups"],
                "pointInTimeRecoveryEnabled": p["backups"],
                "startTime": p["backup_start_time"],
            },
            "databaseFlags": [{"name": k, "value": str(v)} for k, v in sorted(p["flags"].items())],
            "deletionProtectionEnabled": p["deletion_protection"],
        }
        if p["allocated_ip_range"]:
            settings["ipConfiguration"]["allocatedIpRange"] = p["allocated_ip_range"]
        if p["maintenance_window"]:
            settings["maintenanceWindow"] = {"day": p["maintenance_window"]["day"], "hour": p["maintenance_window"]["hour"]}
        body = {"name": self.name, "region": p["region"], "databaseVersion": p["database_version"],
                "settings": settings}
        if p["disk_encryption_key"]:
            body["diskEncryptionConfiguration"] = {"kmsKeyName": p["disk_encryption_key"]}
        return body

    def changes(self, desired, current):
        changes = super(SqlInstance, self).changes(desired, current)
        if not desired["settings"]["databaseFlags"] and not current.get("settings", {}).get("databaseFlags"):
            changes = [c for c in changes if not c.startswith("settings.databaseFlags")]
        return changes

    def _wait(self, op):
        if self.params["wait"]:
            self.module.wait("sqladmin", op, resource="Cloud SQL instance %s" % self.name)

    def create(self, desired):
        op = self.module.execute(self._instances().insert(project=self.params["project"], body=desired),
                                 "insert", "Cloud SQL instance %s" % self.name, allow_409=True)
        self._wait(op)

    def update(self, current, desired, changes):
        settings = dict(desired["settings"])
        # The read's settingsVersion makes a concurrent change fail instead of being overwritten.
        settings["settingsVersion"] = current["settings"]["settingsVersion"]
        op = self.module.execute(self._instances().patch(project=self.params["project"], instance=self.name,
                                                         body={"settings": settings}),
                                 "patch", "Cloud SQL instance %s" % self.name)
        self._wait(op)

    def delete(self, current):
        if current.get("settings", {}).get("deletionProtectionEnabled"):
            if not self.params["force"]:
                self.module.fail_json(msg="Cloud SQL instance %s has deletion protection on. Fix: run with "
                                          "force: true and state: absent (or deletion_protection: false and "
                                          "state: present first)." % self.name)
            # Only the one setting, so a teardown never needs (or re-applies) the instance's full definition.
            op = self.module.execute(
                self._instances().patch(project=self.params["project"], instance=self.name,
                                        body={"settings": {"deletionProtectionEnabled": False,
                                                           "settingsVersion": current["settings"]["settingsVersion"]}}),
                "patch", "Cloud SQL instance %s" % self.name)
            self.module.wait("sqladmin", op, resource="Cloud SQL instance %s" % self.name)
        op = self.module.execute(self._instances().delete(project=self.params["project"], instance=self.name),
                                 "delete", "Cloud SQL instance %s" % self.name)
        self.module.wait("sqladmin", op, resource="Cloud SQL instance %s" % self.name)


def settle(module):
    """Wait for whatever is running on the instance, then exit with it (never a change).

    The operations are listed before the one read of the instance, so the read shows what they did.
    """
    res = SqlInstance(module)
    if not module.check_mode:
        sql = module.client("sqladmin")
        # A missing instance has no operations; the read below reports it.
        ops = module.execute(sql.operations().list(project=module.params["project"], instance=res.name),
                             "list operations of", "Cloud SQL instance %s" % res.name, allow_404=True) or {}
        for op in ops.get("items", []):
            if op.get("status") != "DONE":
                module.wait("sqladmin", op, resource="Cloud SQL instance %s" % res.name)
    module.settle_only(res, extra=private_ip)


def private_ip(instance):
    for ip in (instance or {}).get("ipAddresses", []):
        if ip.get("type") == "PRIVATE":
            return {"private_ip": ip["ipAddress"]}
    return {}


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            region=dict(type="str"),
            database_version=dict(type="str", default="POSTGRES_16",
                                  choices=["POSTGRES_13", "POSTGRES_14", "POSTGRES_15", "POSTGRES_16", "POSTGRES_17",
                                           "MYSQL_8_0", "MYSQL_8_4"]),
            tier=dict(type="str", default="db-custom-1-3840"),
            edition=dict(type="str", choices=["ENTERPRISE", "ENTERPRISE_PLUS"], default="ENTERPRISE"),
            availability_type=dict(type="str", choices=["ZONAL", "REGIONAL"], default="ZONAL"),
            network=dict(type="str"),
            allocated_ip_range=dict(type="str"),
            ssl_mode=dict(type="str", default="ENCRYPTED_ONLY",
                          choices=["ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED", "ALLOW_UNENCRYPTED_AND_ENCRYPTED"]),
            backups=dict(type="bool", default=True),
            backup_start_time=dict(type="str", default="03:00"),
            maintenance_window=dict(type="dict", options=dict(day=dict(type="int", required=True),
                                                              hour=dict(type="int", required=True))),
            flags=dict(type="dict", default={}),
            deletion_protection=dict(type="bool", default=True),
            disk_encryption_key=dict(type="str", no_log=False),
            force=dict(type="bool", default=False),
            wait=dict(type="bool", default=True),
            wait_only=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["region", "network"])],
    )
    if module.params["wait_only"]:
        settle(module)
    p = module.params
    if not re.match(r"^[a-z]([a-z0-9-]{0,96}[a-z0-9])?$", p["name"]):
        module.fail_json(msg="name=%r is not a valid Cloud SQL instance name: lowercase letters, digits and hyphens, "
                             "starting with a letter" % p["name"])
    if not TIER_RE.match(p["tier"]):
        module.fail_json(msg="tier=%r is not a Cloud SQL tier: use db-custom-<vCPUs>-<MiB>, db-f1-micro, db-g1-small "
                             "or db-perf-optimized-N-<vCPUs>" % p["tier"])
    if p["edition"] == "ENTERPRISE_PLUS" and not p["tier"].startswith("db-perf-optimized"):
        module.fail_json(msg="edition=ENTERPRISE_PLUS needs a db-perf-optimized-N-* tier (got %s)" % p["tier"])
    if not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", p["backup_start_time"]):
        module.fail_json(msg="backup_start_time=%r must be HH:MM in UTC, for example 03:00" % p["backup_start_time"])
    if p["disk_encryption_key"] and not KEY_RE.match(p["disk_encryption_key"]):
        module.fail_json(msg="disk_encryption_key=%r is not a Cloud KMS key name: use "
                             "projects/P/locations/L/keyRings/R/cryptoKeys/K" % p["disk_encryption_key"])
    mw = p["maintenance_window"]
    if mw and not (1 <= mw["day"] <= 7 and 0 <= mw["hour"] <= 23):
        module.fail_json(msg="maintenance_window needs day 1 (Monday) to 7 and hour 0 to 23")
    module.ensure(SqlInstance(module), extra=private_ip)


if __name__ == "__main__":
    one_exit(main)()
