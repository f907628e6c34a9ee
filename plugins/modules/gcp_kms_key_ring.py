#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_kms_key_ring
short_description: Manage a Cloud KMS key ring
version_added: 0.1.0
description:
  - Creates or deletes a Cloud KMS key ring (cloudkms.googleapis.com v1), the container of the CMEK keys
    M(skyforge.prefect_platform.gcp_kms_crypto_key) manages.
  - A key ring has nothing to update. Cloud KMS deletes a key ring only when it holds no keys, so O(state=absent)
    fails naming the keys while any remain (a key can only be deleted once all its versions are destroyed and
    deleted, which takes at least the key's destroy-scheduled duration).
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The key ring ID (1 to 63 letters, digits, C(_) and C(-)).
    type: str
    required: true
  location:
    description: The location of the key ring (a region such as C(europe-west1), a multi-region or C(global)). A CMEK
      key must be in the same location as the bucket or repository it protects.
    type: str
    required: true
  state:
    description: Whether the key ring should exist.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs roles/cloudkms.admin.
"""

EXAMPLES = r"""
- name: The key ring of the ML artifacts' CMEK keys
  skyforge.prefect_platform.gcp_kms_key_ring:
    project: my-project
    name: ml-artifacts
    location: europe-west1
"""

RETURN = r"""
key_ring:
  description: The key ring as the API returns it (predicted in check mode).
  returned: success
  type: dict
  sample: {"name": "projects/p/locations/europe-west1/keyRings/ml-artifacts", "createTime": "2026-12-01T13:00:00Z"}
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule, GcpResource
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import key_ring_path, location_path

ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")


class KeyRing(GcpResource):
    api = "cloudkms"
    kind = "key_ring"

    @property
    def path(self):
        return key_ring_path(self.params["project"], self.params["location"], self.name)

    def _rings(self):
        return self.client().projects().locations().keyRings()

    def label(self):
        return "KMS key ring %s" % self.name

    def get(self):
        current = self.module.get(self._rings().get(name=self.path), resource=self.label())
        if current is not None and self.params["state"] == "absent":
            listing = self.module.get(self._rings().cryptoKeys().list(parent=self.path), resource=self.label()) or {}
            keys = [k["name"].rsplit("/", 1)[-1] for k in listing.get("cryptoKeys", [])]
            if keys:
                self.module.fail_json(
                    msg="%s cannot be deleted: it still holds the key(s) %s, and Cloud KMS deletes only an empty key "
                        "ring. Fix: remove the keys first (gcp_kms_crypto_key state=absent destroys their versions; a "
                        "key is deletable once they are DESTROYED), or leave the key ring in place."
                        % (self.label(), ", ".join(keys)), keys=keys)
        return current

    def desired(self):
        return {"name": self.path}

    def create(self, desired):
        return self.module.execute(self._rings().create(
            parent=location_path(self.params["project"], self.params["location"]), keyRingId=self.name, body={}),
            "create", self.label(), allow_409=True)

    def update(self, current, desired, changes):
        return current

    def delete(self, current):
        op = self.module.execute(self._rings().delete(name=self.path), "delete", self.label())
        self.module.wait("cloudkms", op, resource=self.label())


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            location=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    if not ID_RE.match(module.params["name"]):
        module.fail_json(msg="name=%r is not a valid key ring ID: 1 to 63 letters, digits, '_' and '-'"
                             % module.params["name"])
    module.ensure(KeyRing(module))


if __name__ == "__main__":
    one_exit(main)()
