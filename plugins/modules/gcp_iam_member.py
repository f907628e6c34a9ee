#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_iam_member
short_description: Grant or revoke one role for one member on a project or a service account
version_added: 0.1.0
description:
  - Adds or removes a single member of a single role binding, leaving every other binding alone.
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
    description: Where the binding lives.
    type: str
    choices: [project, service_account]
    default: project
  service_account:
    description: The service account email, with O(resource_type=service_account).
    type: str
  role:
    description: The role, for example C(roles/run.developer).
    type: str
    required: true
  member:
    description: The member, for example C(serviceAccount:worker@my-project.iam.gserviceaccount.com).
    type: str
    required: true
  state:
    description: Whether the member should hold the role.
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
"""

RETURN = r"""
members:
  description: The role's members after the run (predicted in check mode).
  returned: success
  type: list
  elements: str
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import diff_dict
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpApiError, GcpModule

MEMBER_RE = re.compile(r"^(user|serviceAccount|group|domain|principal|principalSet):.+$")


def main():
    module = GcpModule(
        argument_spec=dict(
            resource_type=dict(type="str", choices=["project", "service_account"], default="project"),
            service_account=dict(type="str"),
            role=dict(type="str", required=True),
            member=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("resource_type", "service_account", ["service_account"])],
    )
    p = module.params
    if not p["role"].startswith(("roles/", "projects/", "organizations/")):
        module.fail_json(msg="role=%r is not a role name: use roles/<name> or a custom role path" % p["role"])
    if not MEMBER_RE.match(p["member"]):
        module.fail_json(msg="member=%r needs a type prefix, for example serviceAccount:x@p.iam.gserviceaccount.com "
                             "or user:someone@example.com" % p["member"])
    if p["resource_type"] == "project":
        api = module.client("cloudresourcemanager", "v3").projects()
        resource = "projects/%s" % p["project"]
    else:
        api = module.client("iam").projects().serviceAccounts()
        resource = "projects/%s/serviceAccounts/%s" % (p["project"], p["service_account"])
    label = "IAM policy of %s" % resource

    for _attempt in range(5):
        if p["resource_type"] == "project":
            policy = module.execute(api.getIamPolicy(resource=resource, body={}), "getIamPolicy", label)
        else:
            policy = module.execute(api.getIamPolicy(resource=resource), "getIamPolicy", label)
        bindings = policy.get("bindings", [])
        binding = next((b for b in bindings if b["role"] == p["role"] and not b.get("condition")), None)
        before = sorted(binding["members"]) if binding else []
        if p["state"] == "present":
            after = sorted(set(before) | {p["member"]})
        else:
            after = [m for m in before if m != p["member"]]
        changed = after != before
        if not changed or module.check_mode:
            break
        if binding is None:
            bindings.append({"role": p["role"], "members": after})
        else:
            binding["members"] = after
        new_policy = {"bindings": [b for b in bindings if b.get("members")], "etag": policy.get("etag"),
                      "version": policy.get("version", 1)}
        try:
            module.execute(api.setIamPolicy(resource=resource, body={"policy": new_policy}), "setIamPolicy", label,
                           allow_409=True)
            break
        except GcpApiError:
            continue  # concurrent change: read again and redo
    else:
        module.fail_json(msg="%s kept changing under us (5 etag conflicts). Fix: run again when other IAM changes "
                             "have settled." % label)
    module.exit_json(changed=changed, members=after,
                     diff=diff_dict({"role": p["role"], "members": before}, {"role": p["role"], "members": after}))


if __name__ == "__main__":
    main()
