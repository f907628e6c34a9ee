#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_service_account
short_description: Manage an IAM service account
version_added: 0.1.0
description:
  - Creates, updates (display name, description) or deletes a service account. Keys are never created; workloads
    use Workload Identity or the attached identity of a VM.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The account ID (the part before C(@)), 6 to 30 characters.
    type: str
    required: true
  display_name:
    description: A display name.
    type: str
    default: ""
  description:
    description: A description.
    type: str
    default: ""
  state:
    description: Whether the account should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: The Prefect worker's identity
  skyforge.prefect_platform.gcp_service_account:
    project: my-project
    name: prefect-worker
    display_name: Prefect worker (Cloud Run jobs)
"""

RETURN = r"""
service_account:
  description: The account (predicted in check mode).
  returned: success
  type: dict
email:
  description: The account's email.
  returned: when present
  type: str
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule, GcpResource


class ServiceAccount(GcpResource):
    api = "iam"
    kind = "service_account"

    @property
    def email(self):
        return "%s@%s.iam.gserviceaccount.com" % (self.name, self.params["project"])

    def path(self):
        return "projects/%s/serviceAccounts/%s" % (self.params["project"], self.email)

    def accounts(self):
        return self.client().projects().serviceAccounts()

    def get(self):
        return self.module.get(self.accounts().get(name=self.path()), resource="service account %s" % self.email)

    def desired(self):
        return {"email": self.email, "displayName": self.params["display_name"], "description": self.params["description"]}

    def create(self, desired):
        body = {"accountId": self.name,
                "serviceAccount": {"displayName": desired["displayName"], "description": desired["description"]}}
        self.module.execute(self.accounts().create(name="projects/%s" % self.params["project"], body=body), "create",
                            "service account %s" % self.email, allow_409=True)

    def update(self, current, desired, changes):
        body = {"serviceAccount": {"displayName": desired["displayName"], "description": desired["description"]},
                "updateMask": "displayName,description"}
        self.module.execute(self.accounts().patch(name=self.path(), body=body), "patch", "service account %s" % self.email)

    def delete(self, current):
        self.module.execute(self.accounts().delete(name=self.path()), "delete", "service account %s" % self.email)


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            display_name=dict(type="str", default=""),
            description=dict(type="str", default=""),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    if not re.match(r"^[a-z]([-a-z0-9]{4,28}[a-z0-9])$", module.params["name"]):
        module.fail_json(msg="name=%r is not a service account ID: 6-30 characters, lowercase letters, digits and "
                             "hyphens, starting with a letter" % module.params["name"])
    resource = ServiceAccount(module)
    module.ensure(resource, extra=lambda after: {"email": resource.email} if after else {})


if __name__ == "__main__":
    one_exit(main)()
