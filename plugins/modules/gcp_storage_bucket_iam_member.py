#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_storage_bucket_iam_member
short_description: Grant or revoke Cloud Storage roles for a member on one bucket
version_added: 0.1.0
description:
  - Adds or removes a member of role bindings in a bucket's IAM policy, leaving every other binding and member alone,
    so a workload gets object access to its bucket only, not to every bucket of the project.
  - Reads the policy (C(storage.buckets.getIamPolicy)) once and writes it (C(storage.buckets.setIamPolicy)) once, only
    when the member is missing (or, with O(state=absent), still present), with the etag it read; when someone else
    changed the policy in between, the write is refused and the module reads again and retries.
  - Bucket policies take Cloud Storage roles only, for example C(roles/storage.objectAdmin) or
    C(roles/storage.objectViewer) (or a custom role).
  - With O(state=absent), a bucket that does not exist (any more) holds no binding, so there is nothing to do.
  - The caller needs C(storage.buckets.getIamPolicy) and C(storage.buckets.setIamPolicy) on the bucket
    (C(roles/storage.admin)).
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  bucket:
    description: The bucket's name.
    type: str
    required: true
  role:
    description:
      - The role granted to O(member), for example C(roles/storage.objectAdmin).
      - Exactly one of O(role) and O(roles) is required.
    type: str
  roles:
    description: Several roles, each granted to O(member).
    type: list
    elements: str
  member:
    description: The member, for example C(serviceAccount:mlflow@my-project.iam.gserviceaccount.com).
    type: str
    required: true
  state:
    description: Whether the member should hold the roles on the bucket.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Let the MLflow server's service account read and write the objects of its bucket only
  skyforge.prefect_platform.gcp_storage_bucket_iam_member:
    project: my-project
    bucket: my-project-prefect-ml
    role: roles/storage.objectAdmin
    member: serviceAccount:prefect-mlflow@my-project.iam.gserviceaccount.com

- name: Revoke it
  skyforge.prefect_platform.gcp_storage_bucket_iam_member:
    project: my-project
    bucket: my-project-prefect-ml
    role: roles/storage.objectAdmin
    member: serviceAccount:prefect-mlflow@my-project.iam.gserviceaccount.com
    state: absent
"""

RETURN = r"""
members:
  description: The role's members on the bucket after the run (predicted in check mode).
  returned: with O(role)
  type: list
  elements: str
bindings:
  description: Every named role with its members on the bucket after the run (predicted in check mode), sorted by role.
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

MEMBER_RE = re.compile(r"^((user|serviceAccount|group|domain|principal|principalSet):.+|allUsers|allAuthenticatedUsers"
                       r"|(projectOwner|projectEditor|projectViewer):.+)$")
ROLE_RE = re.compile(r"^(roles/storage\.[A-Za-z.]+|(projects|organizations)/[^/]+/roles/.+)$")


class BucketBindings(PolicyBindings):
    """The named roles' member in one bucket's IAM policy."""

    api = "storage"

    def __init__(self, module):
        p = module.params
        roles = [p["role"]] if p["role"] is not None else list(p["roles"])
        super(BucketBindings, self).__init__(module, dict((role, {p["member"]}) for role in roles))
        if not roles:
            module.fail_json(msg="roles is empty: name at least one role, for example roles/storage.objectAdmin")
        for role in roles:
            if not ROLE_RE.match(role):
                module.fail_json(msg="role=%r is not a Cloud Storage role: bucket policies take roles/storage.<name> "
                                     "or a custom role path" % role)
        if not MEMBER_RE.match(p["member"]):
            module.fail_json(msg="member=%r needs a type prefix, for example serviceAccount:x@p.iam.gserviceaccount.com"
                             % p["member"])
        self.buckets = self.client().buckets()

    def parent_label(self):
        return "IAM policy of bucket %s" % self.params["bucket"]

    def read(self):
        request = self.buckets.getIamPolicy(bucket=self.params["bucket"])
        if self.params["state"] == "present" and not self.module.check_mode:
            return self.module.execute(request, "getIamPolicy", self.parent_label())
        # A bucket that is gone holds no binding; in check mode, an earlier task may be about to create it.
        return self.module.get(request, self.parent_label())

    def set_policy(self, policy):
        self.module.execute(self.buckets.setIamPolicy(bucket=self.params["bucket"], body=policy), "setIamPolicy",
                            self.parent_label(), allow=CONFLICT)


def main():
    module = GcpModule(
        argument_spec=dict(
            bucket=dict(type="str", required=True),
            role=dict(type="str"),
            roles=dict(type="list", elements="str"),
            member=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_one_of=[("role", "roles")],
        mutually_exclusive=[("role", "roles")],
    )
    module.ensure(BucketBindings(module))


if __name__ == "__main__":
    one_exit(main)()
