#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_run_job
short_description: Delete Cloud Run jobs, by name or all that one identity created
version_added: 0.2.0
description:
  - Removes Cloud Run (run v2) jobs of one region, with their executions, and waits for each delete to finish.
  - The platform never creates jobs itself. The Prefect C(cloud-run-v2) worker does, one per flow run, and deletes
    each a poll after its run ends. A teardown that removes the worker within that window would leave the job behind;
    O(created_by) finds every job the worker's account created.
  - Only O(state=absent) is supported. Jobs of other identities are never touched.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  region:
    description: The Cloud Run region.
    type: str
    required: true
  name:
    description: One job's ID. Exactly one of O(name) and O(created_by).
    type: str
  created_by:
    description: The e-mail of the identity whose jobs go (the job's C(creator)), for example the Prefect worker's
      service account.
    type: str
  state:
    description: Only V(absent).
    type: str
    choices: [absent]
    default: absent
"""

EXAMPLES = r"""
- name: The Cloud Run jobs the Prefect worker left behind
  skyforge.prefect_platform.gcp_run_job:
    project: my-project
    region: europe-west1
    created_by: prefect-worker@my-project.iam.gserviceaccount.com
    state: absent
"""

RETURN = r"""
jobs:
  description: The IDs of the jobs deleted (that would be deleted in check mode); empty when there were none.
  returned: success
  type: list
  elements: str
  sample: ["tangerine-lemur-abc12"]
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import Member
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import location_path


class RunJobs(Member):
    """The region's jobs are the parent; the members are the jobs this module is asked about."""

    kind = "jobs"

    def client(self):
        return self.module.client("run", "v2").projects().locations().jobs()

    @property
    def name(self):
        return self.params["name"] or "created by %s" % self.params["created_by"]

    def parent_label(self):
        return "Cloud Run jobs in %s" % self.params["region"]

    def read(self):
        parent = location_path(self.params["project"], self.params["region"])
        jobs, token = [], None
        while True:
            page = self.module.execute(self.client().list(parent=parent, pageToken=token, pageSize=100),
                                       action="list", resource=self.parent_label())
            jobs.extend(page.get("jobs", []))
            token = page.get("nextPageToken")
            if not token:
                return jobs

    def find(self, parent):
        p = self.params
        names = sorted(job["name"].rsplit("/", 1)[-1] for job in parent or []
                       if job["name"].rsplit("/", 1)[-1] == p["name"] or job.get("creator") == p["created_by"])
        return {"jobs": names} if names else None

    def target(self, current, state):
        return None

    def write(self, parent, current, target):
        base = location_path(self.params["project"], self.params["region"])
        for name in current["jobs"]:
            label = "Cloud Run job %s" % name
            op = self.module.execute(self.client().delete(name="%s/jobs/%s" % (base, name)), action="delete",
                                     resource=label, allow_404=True)
            if op is not None:
                self.module.wait("run", op, resource=label)
        return None

    def result(self, parent, before, after, changes):
        return {"jobs": (before or {}).get("jobs", [])}


def main():
    module = GcpModule(
        argument_spec=dict(
            region=dict(type="str", required=True),
            name=dict(type="str"),
            created_by=dict(type="str"),
            state=dict(type="str", choices=["absent"], default="absent"),
        ),
        required_one_of=[("name", "created_by")],
        mutually_exclusive=[("name", "created_by")],
    )
    module.ensure(RunJobs(module), state="absent")


if __name__ == "__main__":
    main()
