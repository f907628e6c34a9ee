#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_kms_crypto_key
short_description: Manage a Cloud KMS symmetric key (CMEK) and its automatic rotation
version_added: 0.1.0
description:
  - Creates a Cloud KMS key with purpose C(ENCRYPT_DECRYPT) (cloudkms.googleapis.com v1) in a key ring made by
    M(skyforge.prefect_platform.gcp_kms_key_ring), to serve as the customer-managed encryption key (CMEK) of Cloud
    Storage buckets and Artifact Registry repositories.
  - The labels and the rotation period are changed in place. The purpose, protection level and destroy-scheduled
    duration cannot change; the module fails naming the field.
  - A key whose primary version is no longer enabled (its versions were destroyed) gets a new primary version.
  - O(state=absent) follows what Cloud KMS allows. Key material cannot be removed at once; every enabled or disabled
    version is scheduled for destruction (C(DESTROY_SCHEDULED), C(DESTROYED) after the key's destroy-scheduled
    duration), automatic rotation is turned off so no new version appears, versions already C(DESTROYED) are
    deleted, and the key itself is deleted once it has no versions left. Run it again after the scheduled duration
    to delete the key. A second run before then changes nothing.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The key ID (1 to 63 letters, digits, C(_) and C(-)).
    type: str
    required: true
  key_ring:
    description: The key ring's ID (in O(location)) or its path C(projects/<p>/locations/<l>/keyRings/<r>).
    type: str
    required: true
  location:
    description: The key ring's location.
    type: str
    required: true
  purpose:
    description: The key's purpose. Only symmetric encryption keys (C(ENCRYPT_DECRYPT)) serve as CMEK and rotate
      automatically.
    type: str
    choices: [ENCRYPT_DECRYPT]
    default: ENCRYPT_DECRYPT
  rotation_period:
    description:
      - How often Cloud KMS makes a new primary version, as a duration C(<n>d), C(<n>h) or C(<n>s) (at least 24
        hours, at most 876,000 hours), for example C(90d).
      - Omitted, the key's rotation is left as it is; V(none) turns automatic rotation off.
    type: str
  next_rotation_time:
    description:
      - When the next automatic rotation happens (RFC 3339, for example C(2027-01-01T00:00:00Z)). Used when the key
        is created or its rotation period changes; by default one rotation period from then.
    type: str
  protection_level:
    description: Where the key material lives, C(SOFTWARE) or C(HSM). Cannot change in place.
    type: str
    choices: [SOFTWARE, HSM]
    default: SOFTWARE
  destroy_scheduled_duration:
    description: How long a destroyed version stays restorable (C(DESTROY_SCHEDULED)) before its material is gone,
      a duration such as C(30d) (24 hours to 120 days). Cloud KMS's default is 30 days. Set at creation only.
    type: str
  labels:
    description: Labels of the key.
    type: dict
    default: {}
  state:
    description: Whether the key should exist; see the description for what V(absent) can do.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs roles/cloudkms.admin. The service agents of Cloud Storage and Artifact Registry need
    roles/cloudkms.cryptoKeyEncrypterDecrypter on the key to use it as CMEK.
"""

EXAMPLES = r"""
- name: The CMEK key of the model bucket, rotated every 90 days
  skyforge.prefect_platform.gcp_kms_crypto_key:
    project: my-project
    name: ml-artifacts
    key_ring: ml-artifacts
    location: europe-west1
    rotation_period: 90d

- name: Retire it (its versions are scheduled for destruction; a later run deletes the key)
  skyforge.prefect_platform.gcp_kms_crypto_key:
    project: my-project
    name: ml-artifacts
    key_ring: ml-artifacts
    location: europe-west1
    state: absent
"""

RETURN = r"""
crypto_key:
  description: The key as the API returns it (predicted in check mode); empty once the key is deleted.
  returned: success
  type: dict
  sample: {"name": "projects/p/locations/europe-west1/keyRings/ml-artifacts/cryptoKeys/ml-artifacts",
           "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "7776000s", "nextRotationTime": "2027-03-01T13:00:00Z"}
destroyed_versions:
  description: The versions O(state=absent) scheduled for destruction in this run.
  returned: with O(state=absent)
  type: list
  elements: str
deleted:
  description: Whether the key itself was deleted (it had no versions left).
  returned: with O(state=absent)
  type: bool
changes:
  description: The fields that differed and were updated (C(primary) when a new primary version was made).
  returned: when an existing key changed
  type: list
  elements: str
"""

import re
import time

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import diff_dict
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule, GcpResource
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import (
    crypto_key_path,
    key_ring_path,
)

ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
DURATION_RE = re.compile(r"^(\d+)([dhs])$")
UNITS = {"d": 86400, "h": 3600, "s": 1}
LIVE = ("ENABLED", "DISABLED")


def duration(value, option):
    """'90d' -> '7776000s', or None for a value that is not a duration."""
    m = DURATION_RE.match(value or "")
    return "%ds" % (int(m.group(1)) * UNITS[m.group(2)]) if m else None


def rfc3339(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class CryptoKey(GcpResource):
    api = "cloudkms"
    kind = "crypto_key"
    immutable = ("purpose", "versionTemplate", "destroyScheduledDuration")
    read_defaults = {"labels": {}}

    @property
    def path(self):
        p = self.params
        return crypto_key_path(p["project"], p["location"], p["key_ring"], self.name)

    @property
    def ring(self):
        return key_ring_path(self.params["project"], self.params["location"], self.params["key_ring"])

    def _keys(self):
        return self.client().projects().locations().keyRings().cryptoKeys()

    def label(self):
        return "KMS key %s" % self.name

    def get(self):
        return self.fill_defaults(self.module.get(self._keys().get(name=self.path), resource=self.label()))

    def rotation(self):
        value = self.params["rotation_period"]
        return None if value is None else ("" if value == "none" else duration(value, "rotation_period"))

    def next_rotation(self, period):
        return self.params["next_rotation_time"] or rfc3339(time.time() + int(period[:-1]))

    def desired(self):
        p = self.params
        out = {"purpose": p["purpose"], "labels": p["labels"],
               "versionTemplate": {"protectionLevel": p["protection_level"],
                                   "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"}}
        rotation = self.rotation()
        if rotation is not None:
            out["rotationPeriod"] = rotation or None
        if p["destroy_scheduled_duration"]:
            out["destroyScheduledDuration"] = duration(p["destroy_scheduled_duration"], "destroy_scheduled_duration")
        return out

    def changes(self, desired, current):
        wanted = dict(desired)
        # Labels are the whole map: one the user dropped is removed.
        out = ["labels"] if wanted.pop("labels") != current.get("labels", {}) else []
        if "rotationPeriod" in wanted:
            if wanted.pop("rotationPeriod") != current.get("rotationPeriod"):
                out.append("rotationPeriod")
        out += super(CryptoKey, self).changes(wanted, current)
        if (current.get("primary") or {}).get("state") != "ENABLED":
            out.append("primary")
        return sorted(out)

    def predict(self, current, desired):
        out = super(CryptoKey, self).predict(current, dict((k, v) for k, v in desired.items() if v is not None))
        if desired.get("rotationPeriod") and (current or {}).get("rotationPeriod") != desired["rotationPeriod"]:
            out["nextRotationTime"] = self.next_rotation(desired["rotationPeriod"])
        elif "rotationPeriod" in desired and not desired["rotationPeriod"]:
            out.pop("rotationPeriod", None)
            out.pop("nextRotationTime", None)
        out["labels"] = desired["labels"]
        if (out.get("primary") or {}).get("state") != "ENABLED":
            out["primary"] = {"state": "ENABLED"}
        if current is None:
            out["name"] = self.path
        return out

    def create(self, desired):
        body = dict((k, v) for k, v in desired.items() if v is not None)
        if body.get("rotationPeriod"):
            body["nextRotationTime"] = self.next_rotation(body["rotationPeriod"])
        return self.module.execute(self._keys().create(parent=self.ring, cryptoKeyId=self.name, body=body),
                                   "create", self.label(), allow_409=True)

    def update(self, current, desired, changes):
        mask = []
        body = {}
        if "labels" in changes:
            mask.append("labels")
            body["labels"] = desired["labels"]
        if "rotationPeriod" in changes:
            mask += ["rotationPeriod", "nextRotationTime"]
            if desired["rotationPeriod"]:
                body["rotationPeriod"] = desired["rotationPeriod"]
                body["nextRotationTime"] = self.next_rotation(desired["rotationPeriod"])
        if mask:
            self.module.execute(self._keys().patch(name=self.path, updateMask=",".join(mask), body=body),
                                "patch", self.label())
        if "primary" in changes:
            version = self.module.execute(self._keys().cryptoKeyVersions().create(parent=self.path, body={}),
                                          "create a version of", self.label())
            self.module.execute(self._keys().updatePrimaryVersion(
                name=self.path, body={"cryptoKeyVersionId": version["name"].rsplit("/", 1)[-1]}),
                "updatePrimaryVersion", self.label())

    def delete(self, current):
        raise NotImplementedError("retire() handles state=absent")

    def versions(self):
        versions = self._keys().cryptoKeyVersions()
        out, token = [], None
        while True:
            page = self.module.get(versions.list(parent=self.path, pageToken=token), resource=self.label()) or {}
            out += page.get("cryptoKeyVersions", [])
            token = page.get("nextPageToken")
            if not token:
                return out

    def retire(self):
        """state=absent: destroy what Cloud KMS lets us destroy now, delete what it lets us delete."""
        current = self.get()
        if current is None:
            self.module.exit_json(changed=False, crypto_key={}, destroyed_versions=[], deleted=False,
                                  diff=diff_dict(None, None))
        versions = self.versions()
        live = [v["name"] for v in versions if v["state"] in LIVE]
        gone = [v["name"] for v in versions if v["state"] == "DESTROYED"]
        rotating = bool(current.get("rotationPeriod") or current.get("nextRotationTime"))
        deletable = len(gone) == len(versions)
        before = dict(current, versions=dict((v["name"].rsplit("/", 1)[-1], v["state"]) for v in versions))
        after = dict(before, versions=dict(before["versions"]))
        after.pop("rotationPeriod", None)
        after.pop("nextRotationTime", None)
        for name in live:
            after["versions"][name.rsplit("/", 1)[-1]] = "DESTROY_SCHEDULED"
        for name in gone:
            after["versions"].pop(name.rsplit("/", 1)[-1])
        changed = bool(live or gone or rotating or deletable)
        if deletable:
            after = None
        if changed and not self.module.check_mode:
            keys = self._keys()
            if rotating:
                self.module.execute(keys.patch(name=self.path, updateMask="rotationPeriod,nextRotationTime", body={}),
                                    "turn off the rotation of", self.label())
            for name in live:
                self.module.execute(keys.cryptoKeyVersions().destroy(name=name, body={}), "destroy", name)
            for name in gone:
                op = self.module.execute(keys.cryptoKeyVersions().delete(name=name), "delete", name)
                self.module.wait("cloudkms", op, resource=name)
            if deletable:
                op = self.module.execute(keys.delete(name=self.path), "delete", self.label())
                self.module.wait("cloudkms", op, resource=self.label())
        if live and not deletable:
            self.module.warn("%s: %d version(s) are scheduled for destruction; Cloud KMS keeps the key until they are "
                             "DESTROYED (after %s). Run again after that to delete it."
                             % (self.label(), len(live), current.get("destroyScheduledDuration", "30 days")))
        self.module.exit_json(changed=changed, crypto_key=after or {}, destroyed_versions=live, deleted=deletable,
                              diff=diff_dict(before, after))


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            key_ring=dict(type="str", required=True, no_log=False),
            location=dict(type="str", required=True),
            purpose=dict(type="str", choices=["ENCRYPT_DECRYPT"], default="ENCRYPT_DECRYPT"),
            rotation_period=dict(type="str"),
            next_rotation_time=dict(type="str"),
            protection_level=dict(type="str", choices=["SOFTWARE", "HSM"], default="SOFTWARE"),
            destroy_scheduled_duration=dict(type="str"),
            labels=dict(type="dict", default={}),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    p = module.params
    if not ID_RE.match(p["name"]):
        module.fail_json(msg="name=%r is not a valid key ID: 1 to 63 letters, digits, '_' and '-'" % p["name"])
    rotation = p["rotation_period"]
    if rotation is not None and rotation != "none":
        seconds = duration(rotation, "rotation_period")
        if seconds is None or not 86400 <= int(seconds[:-1]) <= 876000 * 3600:
            module.fail_json(msg="rotation_period=%r is not a rotation period of 24 hours to 876,000 hours written as "
                                 "<n>d, <n>h or <n>s (for example 90d), or none" % rotation)
    destroy = p["destroy_scheduled_duration"]
    if destroy is not None:
        seconds = duration(destroy, "destroy_scheduled_duration")
        if seconds is None or not 86400 <= int(seconds[:-1]) <= 120 * 86400:
            module.fail_json(msg="destroy_scheduled_duration=%r must be 24 hours to 120 days, written as <n>d, <n>h "
                                 "or <n>s (for example 30d)" % destroy)
    if p["next_rotation_time"] is not None and not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$",
                                                            p["next_rotation_time"]):
        module.fail_json(msg="next_rotation_time=%r is not an RFC 3339 UTC time such as 2027-01-01T00:00:00Z"
                             % p["next_rotation_time"])
    key = CryptoKey(module)
    if p["state"] == "absent":
        key.retire()
    module.ensure(key)


if __name__ == "__main__":
    one_exit(main)()
