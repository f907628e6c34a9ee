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

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule

BATCH = 20
SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)*\.googleapis\.com$")


def main():
    module = GcpModule(
        argument_spec=dict(
            services=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            disable_dependent_services=dict(type="bool", default=False),
        ),
        required_if=[],
    )
    project = module.params["project"]
    if not project:
        module.fail_json(msg="project is required: set project (or GCP_PROJECT)")
    services = sorted(set(module.params["services"]))
    bad = [s for s in services if not SERVICE_RE.match(s)]
    if bad:
        module.fail_json(msg="services: %s is not a service name; use the form compute.googleapis.com" % ", ".join(bad))
    want_enabled = module.params["state"] == "present"
    su = module.client("serviceusage")
    parent = "projects/%s" % project

    current = {}
    for start in range(0, len(services), BATCH):
        chunk = services[start:start + BATCH]
        names = ["%s/services/%s" % (parent, s) for s in chunk]
        resp = module.execute(su.services().batchGet(parent=parent, names=names), "batchGet", parent) or {}
        for svc in resp.get("services", []):
            current[svc["name"].rsplit("/", 1)[-1]] = svc.get("state") == "ENABLED"
    to_change = [s for s in services if current.get(s, False) != want_enabled]

    if to_change and not module.check_mode:
        if want_enabled:
            ops = []
            for start in range(0, len(to_change), BATCH):
                body = {"serviceIds": to_change[start:start + BATCH]}
                ops.append(module.execute(su.services().batchEnable(parent=parent, body=body), "batchEnable", parent))
            for op in ops:
                module.wait("serviceusage", op, resource=parent)
        else:
            for svc in to_change:
                body = {"disableDependentServices": module.params["disable_dependent_services"]}
                op = module.execute(
                    su.services().disable(name="%s/services/%s" % (parent, svc), body=body), "disable", svc
                )
                module.wait("serviceusage", op, resource=svc)

    before = sorted(s for s in services if current.get(s))
    after = sorted(services) if want_enabled else []
    module.exit_json(
        changed=bool(to_change),
        enabled=after,
        changed_services=to_change,
        diff={"before": {"enabled": before}, "after": {"enabled": after}},
    )


if __name__ == "__main__":
    main()
