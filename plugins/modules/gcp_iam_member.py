#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_iam_member
short_description: Grant or revoke roles for members on a project or a service account
version_added: 0.1.0
description:
  - Adds or removes members of role bindings, leaving every other binding and member alone.
  - One call manages any number of role/member pairs of one policy (O(roles) or O(bindings)); it reads the policy once
    and writes it once, only when a pair is missing (or, with O(state=absent), still present).
  - Reads the policy, changes it and writes it back with the etag it read; when someone else changed the policy in
    between, the write is refused and the module reads again and retries.
  - On a service account, this is how Workload Identity is granted, for example role
    C(roles/iam.workloadIdentityUser) to C(serviceAccount:PROJECT.svc.id.goog[NAMESPACE/KSA]).
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  resource_type:
    description: Where the bindings live.
    type: str
    choices: [project, service_account]
    default: project
  service_account:
    description: The service account email, with O(resource_type=service_account).
    type: str
  role:
    description:
      - The role, for example C(roles/run.developer), granted to O(member).
      - Exactly one of O(role), O(roles) and O(bindings) is required.
    type: str
  roles:
    description: Several roles, each granted to O(member).
    type: list
    elements: str
  member:
    description:
      - The member, for example C(serviceAccount:worker@my-project.iam.gserviceaccount.com). Required with O(role) or
        O(roles).
    type: str
  bindings:
    description: Role/member pairs of the one policy, when the members differ.
    type: list
    elements: dict
    suboptions:
      role:
        description: The role.
        type: str
        required: true
      member:
        description: The member.
        type: str
        required: true
  state:
    description: Whether the members should hold the roles.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Let the worker's Kubernetes service account act as its GCP service account
  skyforge.prefect_platform.gcp_iam_member:
    project: my-project
    resource_type: service_account
    service_account: prefect-worker@my-project.iam.gserviceaccount.com
    role: roles/iam.workloadIdentityUser
    member: serviceAccount:my-project.svc.id.goog[prefect/prefect-worker]

- name: What a VM may do, in one read and at most one write of the project policy
  skyforge.prefect_platform.gcp_iam_member:
    project: my-project
    roles: [roles/secretmanager.secretAccessor, roles/storage.admin]
    member: serviceAccount:agent@my-project.iam.gserviceaccount.com

- name: Two members of the project policy
  skyforge.prefect_platform.gcp_iam_member:
    project: my-project
    bindings:
      - role: roles/run.developer
        member: serviceAccount:worker@my-project.iam.gserviceaccount.com
      - role: roles/secretmanager.secretAccessor
        member: serviceAccount:runtime@my-project.iam.gserviceaccount.com
"""

RETURN = r"""
members:
  description: The role's members after the run (predicted in check mode).
  returned: with O(role)
  type: list
  elements: str
bindings:
  description: Every named role with its members after the run (predicted in check mode), sorted by role.
  returned: success
  type: list
  elements: dict
  contains:
    role:
      description: The role.
      type: str
    members:
      description: Its members.
      type: list
      elements: str
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import CONFLICT, GcpModule, PolicyBindings
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import (
    project_path,
    service_account_path,
)

MEMBER_RE = re.compile(r"^(user|serviceAccount|group|domain|principal|principalSet):.+$")


def wanted_pairs(module):
    """The (role, member) pairs asked for, checked, grouped by role in the order given."""
    p = module.params
    if p["bindings"] is not None:
        pairs = [(b["role"], b["member"]) for b in p["bindings"]]
    else:
        if not p["member"]:
            module.fail_json(msg="member is required with role or roles: name who gets them, for example "
                                 "serviceAccount:x@p.iam.gserviceaccount.com")
        pairs = [(role, p["member"]) for role in ([p["role"]] if p["role"] is not None else p["roles"])]
    if not pairs:
        module.fail_json(msg="no role/member pair given: set role, a non-empty roles or bindings")
    wanted = {}
    for role, member in pairs:
        if not role.startswith(("roles/", "projects/", "organizations/")):
            module.fail_json(msg="role=%r is not a role name: use roles/<name> or a custom role path" % role)
        if not MEMBER_RE.match(member):
            module.fail_json(msg="member=%r needs a type prefix, for example serviceAccount:x@p.iam.gserviceaccount.com "
                                 "or user:someone@example.com" % member)
        wanted.setdefault(role, set()).add(member)
    return wanted


class Bindings(PolicyBindings):
    """The named roles' members in a project's or a service account's IAM policy."""

    def __init__(self, module, wanted):
        super(Bindings, self).__init__(module, wanted)
        p = self.params
        if p["resource_type"] == "project":
            self.api = self.module.client("cloudresourcemanager", "v3").projects()
            self.resource = project_path(p["project"])
        else:
            self.api = self.module.client("iam").projects().serviceAccounts()
            self.resource = service_account_path(p["project"], p["service_account"])

    def parent_label(self):
        return "IAM policy of %s" % self.resource

    def read(self):
        # Resource Manager v3 takes its options in a body, IAM's service accounts take none.
        body = dict(body={}) if self.params["resource_type"] == "project" else {}
        return self.module.execute(self.api.getIamPolicy(resource=self.resource, **body), "getIamPolicy",
                                   self.parent_label())

    def set_policy(self, policy):
        self.module.execute(self.api.setIamPolicy(resource=self.resource, body={"policy": policy}), "setIamPolicy",
                            self.parent_label(), allow=CONFLICT)


def main():
    module = GcpModule(
        argument_spec=dict(
            resource_type=dict(type="str", choices=["project", "service_account"], default="project"),
            service_account=dict(type="str"),
            role=dict(type="str"),
            roles=dict(type="list", elements="str"),
            member=dict(type="str"),
            bindings=dict(type="list", elements="dict", options=dict(role=dict(type="str", required=True),
                                                                     member=dict(type="str", required=True))),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("resource_type", "service_account", ["service_account"])],
        required_one_of=[("role", "roles", "bindings")],
        mutually_exclusive=[("role", "roles", "bindings"), ("member", "bindings")],
    )
    module.ensure(Bindings(module, wanted_pairs(module)))


if __name__ == "__main__":
    one_exit(main)()
