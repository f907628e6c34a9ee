#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: prefect_work_pool
short_description: Manage a Prefect work pool and its base job template
version_added: 0.1.0
description:
  - Creates, updates or deletes a work pool on a self-hosted Prefect server, found by name.
  - The base job template is compared as data, not as text, so key order and formatting never cause a change.
  - Without O(base_job_template) the server's default template for O(type) is the starting point, the one the
    Prefect UI offers; O(job_variables) and O(job_configuration) are then applied on top of it.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.prefect
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The work pool name.
    type: str
    required: true
  type:
    description:
      - The worker type, for example V(cloud-run-v2), V(kubernetes) or V(process). It cannot change once created.
    type: str
    default: process
  description:
    description: A description of the pool.
    type: str
  base_job_template:
    description:
      - The whole base job template (C(job_configuration) and C(variables)).
      - When omitted, the server's default template for O(type).
    type: dict
  job_variables:
    description:
      - Defaults for the template's variables, by variable name (for example C(region), C(service_account_name),
        C(env)). A name the template does not declare fails and lists the ones it does.
    type: dict
    default: {}
  job_configuration:
    description:
      - Deep-merged into the template's C(job_configuration); a null value removes that key. This is how a
        cloud-run-v2 pool gets direct VPC egress in C(job_body.template.template.vpcAccess).
    type: dict
    default: {}
  concurrency_limit:
    description: Most flow runs the pool runs at once; V(0) means no limit.
    type: int
    default: 0
  paused:
    description: Whether the pool is paused.
    type: bool
    default: false
  state:
    description: Whether the pool should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Cloud Run pool whose flow runs leave through Cloud NAT
  skyforge.prefect_platform.prefect_work_pool:
    api_url: https://prefect.example.com/api
    auth_string: "{{ prefect_auth_string }}"
    name: cloud-run
    type: cloud-run-v2
    job_variables:
      region: europe-west1
      service_account_name: prefect-runs@my-project.iam.gserviceaccount.com
      env:
        PREFECT_API_URL: https://prefect.example.com/api
    job_configuration:
      job_body:
        template:
          template:
            vpcAccess:
              connector: null
              egress: ALL_TRAFFIC
              networkInterfaces:
                - network: prefect-vpc
                  subnetwork: prefect-subnet
"""

RETURN = r"""
work_pool:
  description: The work pool as the server returns it (predicted in check mode); empty when O(state=absent).
  returned: success
  type: dict
  sample: {"name": "cloud-run", "type": "cloud-run-v2", "is_paused": false}
changes:
  description: The fields that differed and were updated.
  returned: when an existing pool changed
  type: list
  elements: str
"""

import copy
import json

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.prefect import PrefectModule, PrefectResource

MANAGED = ("type", "description", "base_job_template", "concurrency_limit", "is_paused")


def overlay(base, patch):
    """JSON merge patch (RFC 7386): dicts merge, null removes, anything else replaces."""
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = overlay(out.get(key), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_template(module, kind):
    _status, view = module.request("GET", "/collections/views/aggregate-worker-metadata")
    for workers in (view or {}).values():
        if kind in workers:
            return copy.deepcopy(workers[kind].get("default_base_job_configuration") or {})
    module.fail_json(msg="the server knows no default base job template for work pool type %r: pass "
                         "base_job_template" % kind)


def desired_template(module):
    p = module.params
    template = copy.deepcopy(p["base_job_template"]) if p["base_job_template"] is not None \
        else default_template(module, p["type"])
    props = template.setdefault("variables", {}).setdefault("properties", {})
    unknown = sorted(set(p["job_variables"]) - set(props))
    if unknown:
        module.fail_json(msg="job_variables %s are not variables of the %s base job template; it declares: %s"
                             % (", ".join(unknown), p["type"], ", ".join(sorted(props))))
    for name, value in p["job_variables"].items():
        props[name]["default"] = value
    if p["job_configuration"]:
        template["job_configuration"] = overlay(template.get("job_configuration"), p["job_configuration"])
    # Round-trip through JSON so the comparison sees the data the server stores, not Python types.
    return json.loads(json.dumps(template))


class WorkPool(PrefectResource):
    """Returned whole as the server has it; compared, predicted and diffed on the MANAGED fields."""

    kind = "work_pool"
    returns_resource = True

    @property
    def path(self):
        return "/work_pools/%s" % self.name

    def get(self):
        return self.fetch(self.path)

    def desired(self):
        p = self.params
        if p["concurrency_limit"] < 0:
            self.module.fail_json(msg="concurrency_limit=%d: use 0 for no limit or a positive number"
                                      % p["concurrency_limit"])
        return {"type": p["type"], "description": p["description"], "base_job_template": desired_template(self.module),
                "concurrency_limit": p["concurrency_limit"] or None, "is_paused": p["paused"]}

    def changes(self, desired, current):
        if current.get("type") != desired["type"]:
            self.module.fail_json(msg="work pool %s has type %s, not %s: a pool's type cannot change; delete it first "
                                      "or use another name" % (self.name, current.get("type"), desired["type"]))
        # Whole values, not containment: a template the server holds with more in it is a change.
        return sorted(k for k in MANAGED if k != "type" and desired[k] != current.get(k))

    def predict(self, current, desired):
        return dict(current, **desired) if current is not None else dict(desired, name=self.name)

    def create(self, desired):
        return self.module.request("POST", "/work_pools/", dict(desired, name=self.name))[1]

    def update(self, current, desired, changes):
        self.module.request("PATCH", self.path, dict((k, desired[k]) for k in changes))
        return self.get()

    def delete(self, current):
        self.module.request("DELETE", self.path, allow=(404,))

    def diff_view(self, view):
        return dict((k, view.get(k)) for k in MANAGED) if view else None


def main():
    module = PrefectModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            type=dict(type="str", default="process"),
            description=dict(type="str"),
            base_job_template=dict(type="dict"),
            job_variables=dict(type="dict", default={}),
            job_configuration=dict(type="dict", default={}),
            concurrency_limit=dict(type="int", default=0),
            paused=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
    )
    module.ensure(WorkPool(module))


if __name__ == "__main__":
    one_exit(main)()
