#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_gke_kubeconfig
short_description: Write a kubeconfig for a GKE cluster without gcloud
version_added: 0.1.0
description:
  - Reads the cluster's endpoint and CA from the GKE API and writes a kubeconfig (mode 0600) holding an access token
    from google-auth, so no C(gcloud) or C(gke-gcloud-auth-plugin) is needed (AWX execution environments rarely have
    them).
  - Given the cluster a playbook already read (O(cluster_resource)), it takes the endpoint and CA from there and makes
    no GKE call.
  - A cluster still C(PROVISIONING) or C(RECONCILING) (one started with C(wait=false)) is waited for, up to
    O(wait_timeout) seconds; V(0) fails at once. Check mode never waits.
  - The token is refreshed into the file on every run, but the module reports a change only when the endpoint, the
    CA, the proxy or the context differ; the token is never returned or shown in a diff. Tokens last about an hour,
    so run this module again before later Kubernetes tasks of a long play.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  cluster:
    description: The cluster name.
    type: str
    required: true
  location:
    description: The cluster's region.
    type: str
    required: true
  path:
    description: Where to write the kubeconfig.
    type: path
    required: true
  use_private_endpoint:
    description: Point at the control plane's private endpoint instead of its public one.
    type: bool
    default: false
  proxy_url:
    description:
      - Written as the cluster's C(proxy-url), how a private endpoint is reached through a bastion or, in the local
        sandbox, through its CONNECT proxy.
    type: str
  cluster_resource:
    description:
      - The cluster as M(skyforge.prefect_platform.gcp_autopilot_cluster) returned it (its C(cluster) result).
      - When it names this cluster, is C(RUNNING) and has an endpoint, the module uses it instead of reading the
        cluster; otherwise (for example a cluster still provisioning, or predicted in check mode) it reads the cluster.
    type: dict
"""

EXAMPLES = r"""
- name: Kubeconfig for the Helm releases
  skyforge.prefect_platform.gcp_gke_kubeconfig:
    project: my-project
    cluster: prefect
    location: europe-west1
    path: "{{ playbook_dir }}/.kube/prefect.json"

- name: The same, from the cluster the create task returned (no second read)
  skyforge.prefect_platform.gcp_gke_kubeconfig:
    project: my-project
    cluster: prefect
    location: europe-west1
    path: "{{ playbook_dir }}/.kube/prefect.json"
    cluster_resource: "{{ created.cluster }}"
"""

RETURN = r"""
path:
  description: The kubeconfig's path.
  returned: always
  type: str
context:
  description: The context name in the kubeconfig.
  returned: always
  type: str
server:
  description: The API server URL written.
  returned: always
  type: str
"""

import json
import os
import tempfile

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import (
    InputError,
    SkyforgeError,
    WaitTimeout,
    one_exit,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_container import GkeCluster


class KubeCluster(GkeCluster):
    """The cluster this kubeconfig points at (the option is `cluster`, not `name`)."""

    @property
    def name(self):
        return self.params["cluster"]


def _without_token(config):
    if not config:
        return None
    out = json.loads(json.dumps(config))
    for user in out.get("users", []):
        user.get("user", {}).pop("token", None)
    return out


def cluster_to_use(module):
    """The cluster the task returned when it is RUNNING with an endpoint, else the cluster read and settled by the
    cluster resource's settle step (not in check mode); None when it does not exist."""
    p = module.params
    given = p["cluster_resource"] or None
    if given and (given.get("name", p["cluster"]) != p["cluster"] or given.get("location", p["location"]) != p["location"]):
        raise InputError("cluster_resource is cluster %s in %s, not %s in %s" % (
            given.get("name"), given.get("location"), p["cluster"], p["location"]),
            "pass the result of the task that manages %s" % p["cluster"])
    if given and given.get("status") == "RUNNING" and given.get("endpoint"):
        return given
    resource = KubeCluster(module)
    try:
        cluster = module.settled(resource, resource.get())
    except WaitTimeout as exc:
        cluster = exc.last
    if cluster is not None and cluster.get("status") != "RUNNING" and not module.check_mode:
        settling = cluster.get("status") in resource.settling
        raise SkyforgeError("%s is %s, not RUNNING%s" % (resource.label(), cluster.get("status"), " after waiting %ss "
                                                         "(wait_timeout)" % p["wait_timeout"] if settling else ""),
                            "raise wait_timeout, or look at the cluster's operations in the console" if settling
                            else "look at the cluster's status message (gcloud container clusters describe), repair "
                                 "or re-create it")
    return cluster


def kubeconfig(params, context, cluster):
    """(the kubeconfig without its token, the API server URL)."""
    endpoint = cluster.get("endpoint")
    if params["use_private_endpoint"]:
        endpoint = (cluster.get("privateClusterConfig") or {}).get("privateEndpoint", endpoint)
    server = "https://%s" % endpoint
    entry = {"server": server,
             "certificate-authority-data": (cluster.get("masterAuth") or {}).get("clusterCaCertificate", "")}
    if params["proxy_url"]:
        entry["proxy-url"] = params["proxy_url"]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": entry}],
        "users": [{"name": context, "user": {}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }, server


def read_existing(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path) as fh:
            return json.load(fh)
    except ValueError:
        return {"unreadable": True}


def write_with_token(module, path, config):
    """Write the kubeconfig with a fresh access token, mode 0600, replacing the file at once."""
    import google.auth.transport.requests

    creds = module.credentials()
    creds.refresh(google.auth.transport.requests.Request())
    config["users"][0]["user"]["token"] = creds.token
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kubeconfig-")
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def main():
    module = GcpModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            location=dict(type="str", required=True),
            path=dict(type="path", required=True),
            use_private_endpoint=dict(type="bool", default=False),
            proxy_url=dict(type="str"),
            cluster_resource=dict(type="dict"),
        ),
    )
    p = module.params
    context = "gke_%s_%s_%s" % (p["project"], p["location"], p["cluster"])
    cluster = cluster_to_use(module)
    if cluster is None:
        if module.check_mode:
            module.exit_json(changed=True, path=p["path"], context=context, server="(cluster not created yet)")
        raise InputError("cluster %s does not exist in %s" % (p["cluster"], p["location"]),
                         "create it first (gke_autopilot role)")
    desired, server = kubeconfig(p, context, cluster)
    existing = read_existing(p["path"])
    changed = _without_token(existing) != _without_token(desired)
    if not module.check_mode:
        write_with_token(module, p["path"], desired)
    module.exit_json(changed=changed, path=p["path"], context=context, server=server,
                     diff={"before": _without_token(existing) or {}, "after": _without_token(desired)})


if __name__ == "__main__":
    one_exit(main)()
