# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A GKE cluster as gcp_autopilot_cluster manages it and gcp_gke_kubeconfig reads it: one read, one settle step."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpResource


class GkeCluster(GcpResource):
    """Reads the cluster `name` in the module's project and location; a cluster PROVISIONING or RECONCILING (one
    started or changed with wait=false) settles through the runner's one settle step (EnsureMixin.settled)."""

    api = "container"
    kind = "cluster"
    settling = ("PROVISIONING", "RECONCILING")

    def path(self):
        return "projects/%s/locations/%s/clusters/%s" % (self.params["project"], self.params["location"], self.name)

    def clusters(self):
        return self.client().projects().locations().clusters()

    def get(self):
        return self.module.get(self.clusters().get(name=self.path()), resource=self.label())
