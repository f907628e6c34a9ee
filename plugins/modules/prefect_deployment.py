#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: prefect_deployment
short_description: Manage a Prefect deployment (and its flow) by name
version_added: 0.1.0
description:
  - Creates, updates or deletes the deployment O(name) of flow O(flow_name) on a self-hosted Prefect server.
  - The flow is registered when missing. Only the fields given are compared, so a second run changes nothing.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.prefect
  - skyforge.prefect_platform.attributes
options:
  flow_name:
    description: The flow's name.
    type: str
    required: true
  name:
    description: The deployment's name.
    type: str
    required: true
  entrypoint:
    description: Where the flow function is, C(path/to/file.py:function), relative to the working directory.
    type: str
  work_pool_name:
    description: The work pool whose workers run this deployment.
    type: str
  work_queue_name:
    description: The queue in that pool.
    type: str
  pull_steps:
    description: Steps a worker runs before the flow, for example C(prefect.deployments.steps.git_clone).
    type: list
    elements: dict
  job_variables:
    description: Overrides of the work pool's job variables for this deployment.
    type: dict
  parameters:
    description: Default flow parameters.
    type: dict
  tags:
    description: Tags of the deployment.
    type: list
    elements: str
  description:
    description: A description of the deployment.
    type: str
  paused:
    description: Whether schedules of this deployment are paused.
    type: bool
  state:
    description: Whether the deployment should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: A smoke deployment the verify role runs
  skyforge.prefect_platform.prefect_deployment:
    api_url: https://prefect.example.com/api
    flow_name: platform-smoke
    name: smoke
    entrypoint: smoke_flow.py:smoke
    work_pool_name: cloud-run
    pull_steps:
      - prefect.deployments.steps.git_clone:
          repository: https://github.com/example/flows.git
"""

RETURN = r"""
deployment:
  description: The deployment as the server returns it (predicted in check mode); empty when O(state=absent).
  returned: success
  type: dict
changes:
  description: The fields that differed and were updated.
  returned: when an existing deployment changed
  type: list
  elements: str
"""

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.prefect import PrefectModule, PrefectResource

FIELDS = ("entrypoint", "work_pool_name", "work_queue_name", "pull_steps", "job_variables", "parameters", "tags",
          "description", "paused")


class Deployment(PrefectResource):
    """Returned whole as the server has it; compared and diffed on the fields given."""

    kind = "deployment"
    returns_resource = True

    @property
    def path(self):
        return "/deployments/name/%s/%s" % (quote(self.params["flow_name"], safe=""), quote(self.name, safe=""))

    def get(self):
        return self.fetch(self.path)

    def desired(self):
        return dict((k, self.params[k]) for k in FIELDS if self.params[k] is not None)

    def changes(self, desired, current):
        return sorted(k for k, v in desired.items() if current.get(k) != v)

    def predict(self, current, desired):
        return dict(current, **desired) if current is not None else dict(desired, name=self.name)

    def create(self, desired):
        flow = self.module.request("POST", "/flows/", {"name": self.params["flow_name"]})[1]
        return self.module.request("POST", "/deployments/", dict(desired, name=self.name, flow_id=flow["id"]))[1]

    def update(self, current, desired, changes):
        self.module.request("PATCH", "/deployments/%s" % current["id"], dict((k, desired[k]) for k in changes))
        return self.get()

    def delete(self, current):
        self.module.request("DELETE", "/deployments/%s" % current["id"], allow=(404,))

    def diff_view(self, view):
        return dict((k, view.get(k)) for k in self.desired()) if view else None


def main():
    module = PrefectModule(
        argument_spec=dict(
            flow_name=dict(type="str", required=True),
            name=dict(type="str", required=True),
            entrypoint=dict(type="str"),
            work_pool_name=dict(type="str"),
            work_queue_name=dict(type="str"),
            pull_steps=dict(type="list", elements="dict"),
            job_variables=dict(type="dict"),
            parameters=dict(type="dict"),
            tags=dict(type="list", elements="str"),
            description=dict(type="str"),
            paused=dict(type="bool"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    module.ensure(Deployment(module))


if __name__ == "__main__":
    one_exit(main)()
