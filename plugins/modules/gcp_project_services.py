#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_project_services
short_description: Enable or disable APIs on a GCP project
version_added: 0.1.0
description:
  - Enables the listed services through Service Usage in batches of up to 20 and waits for the
    operations; or disables them with O(state=absent).
  - Only the listed services are touched; services enabled by other means are left alone.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  services:
    description:
      - Service names such as C(compute.googleapis.com).
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) enables the services, V(absent) disables them.
    type: str
    choices: [present, absent]
    default: present
  disable_dependent_services:
    description:
      - With O(state=absent), also disable services that depend on the listed ones.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Enable the APIs the platform needs
  skyforge.prefect_platform.gcp_project_services:
    project: my-project
    services:
      - compute.googleapis.com
      - container.googleapis.com
      - sqladmin.googleapis.com
      - servicenetworking.googleapis.com
"""

RETURN = r"""
enabled:
  description: The listed services that are enabled after the run (predicted in check mode).
  returned: always
  type: list
  elements: str
changed_services:
  description: The services this run enabled or disabled (or would, in check mode).
  returned: always
  type: list
  elements: str
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpMember, GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import project_path, service_path

BATCH = 20
SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)*\.googleapis\.com$")


class Services(GcpMember):
    """The listed services among a project's enabled ones; other services are neither read nor touched."""

    kind = "services"
    api = "serviceusage"

    def __init__(self, module, services):
        super(Services, self).__init__(module)
        self.services = services
        self.parent = project_path(self.params["project"])

    def parent_label(self):
        return "the services of %s" % self.parent

    def read(self):
        """service -> enabled, for the listed services, read in batches."""
        enabled = {}
        for start in range(0, len(self.services), BATCH):
            names = [service_path(self.params["project"], s) for s in self.services[start:start + BATCH]]
            resp = self.module.execute(self.client().services().batchGet(parent=self.parent, names=names), "batchGet",
                                       self.parent) or {}
            for svc in resp.get("services", []):
                enabled[svc["name"].rsplit("/", 1)[-1]] = svc.get("state") == "ENABLED"
        return enabled

    def find(self, parent):
        return {"enabled": [s for s in self.services if parent.get(s)]}

    def target(self, current, state):
        return {"enabled": list(self.services) if state == "present" else []}

    def changes(self, current, target):
        """The services to enable or disable, in name order."""
        return sorted(set(current["enabled"]) ^ set(target["enabled"]))

    def write(self, parent, current, target):
        su = self.client().services()
        to_change = self.changes(current, target)
        if target["enabled"]:
            ops = [self.module.execute(su.batchEnable(parent=self.parent, body={"serviceIds": to_change[i:i + BATCH]}),
                                       "batchEnable", self.parent) for i in range(0, len(to_change), BATCH)]
            for op in ops:
                self.module.wait("serviceusage", op, resource=self.parent)
            return None
        body = {"disableDependentServices": self.params["disable_dependent_services"]}
        for svc in to_change:
            op = self.module.execute(su.disable(name=service_path(self.params["project"], svc), body=body), "disable",
                                     svc)
            self.module.wait("serviceusage", op, resource=svc)
        return None

    def result(self, parent, before, after, changes):
        return dict(enabled=after["enabled"], changed_services=changes)


def main():
    module = GcpModule(
        argument_spec=dict(
            services=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            disable_dependent_services=dict(type="bool", default=False),
        ),
    )
    if not module.params["project"]:
        module.fail_json(msg="project is required: set project (or GCP_PROJECT)")
    services = sorted(set(module.params["services"]))
    bad = [s for s in services if not SERVICE_RE.match(s)]
    if bad:
        module.fail_json(msg="services: %s is not a service name; use the form compute.googleapis.com" % ", ".join(bad))
    module.ensure(Services(module, services))


if __name__ == "__main__":
    one_exit(main)()
