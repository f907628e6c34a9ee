#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_artifact_registry_repository
short_description: Manage an Artifact Registry repository and its cleanup policies
version_added: 0.1.0
description:
  - Creates, updates or deletes a standard Artifact Registry repository (artifactregistry.googleapis.com v1), by
    default a Docker repository for the platform's flow and model-serving images.
  - The description, labels, cleanup policies, their dry-run switch and Docker's immutable tags are changed in place.
    The format and the CMEK key cannot change; the module fails naming the field.
  - Deleting a repository deletes the images in it, as Artifact Registry does.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The repository ID (1 to 63 lowercase letters, digits and hyphens, starting with a letter).
    type: str
    required: true
  location:
    description: The repository's region (or multi-region such as C(europe)).
    type: str
    required: true
  format:
    description: The package format. Cannot change.
    type: str
    choices: [DOCKER, PYTHON, KFP, GENERIC]
    default: DOCKER
  description:
    description: A description of the repository.
    type: str
    default: ""
  labels:
    description: Labels of the repository (all of them; labels not listed are removed).
    type: dict
    default: {}
  immutable_tags:
    description: For C(DOCKER), forbid moving or deleting a tag once pushed.
    type: bool
    default: false
  cleanup_policies:
    description:
      - The repository's cleanup policies, all of them (at most 10; policies not listed are removed). A policy has
        conditions (O(cleanup_policies[].tag_state), prefixes, ages) or, only with O(cleanup_policies[].action=KEEP),
        O(cleanup_policies[].keep_count).
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: The policy ID, unique in the repository.
        type: str
        required: true
      action:
        description: Delete matching versions, or keep them whatever a DELETE policy says.
        type: str
        required: true
        choices: [DELETE, KEEP]
      tag_state:
        description: Match tagged, untagged or any versions.
        type: str
        choices: [TAGGED, UNTAGGED, ANY]
      tag_prefixes:
        description: Tag prefixes to match (required with O(cleanup_policies[].tag_state=TAGGED)).
        type: list
        elements: str
      version_name_prefixes:
        description: Version name prefixes to match.
        type: list
        elements: str
      package_name_prefixes:
        description: Package (image) name prefixes to match.
        type: list
        elements: str
      older_than:
        description: Match versions older than this, C(<n>d), C(<n>h) or C(<n>s).
        type: str
      newer_than:
        description: Match versions newer than this, C(<n>d), C(<n>h) or C(<n>s).
        type: str
      keep_count:
        description: Keep this many most recent versions of each package (only with O(cleanup_policies[].action=KEEP),
          instead of conditions).
        type: int
  cleanup_policy_dry_run:
    description: Evaluate the cleanup policies without deleting anything.
    type: bool
    default: false
  kms_key_name:
    description: The Cloud KMS key (C(projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>)) that encrypts the
      repository (CMEK), in the repository's location. Set at creation only. Omitted, an existing repository's key is
      not compared.
    type: str
  state:
    description: Whether the repository should exist.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: Wait for the create or delete operation to finish (up to O(wait_timeout) seconds).
    type: bool
    default: true
notes:
  - Needs roles/artifactregistry.admin. The Artifact Registry service agent needs
    roles/cloudkms.cryptoKeyEncrypterDecrypter on O(kms_key_name).
"""

EXAMPLES = r"""
- name: The platform's images; untagged ones older than 30 days go, the 10 newest always stay
  skyforge.prefect_platform.gcp_artifact_registry_repository:
    project: my-project
    name: ml-images
    location: europe-west1
    cleanup_policies:
      - id: delete-untagged
        action: DELETE
        tag_state: UNTAGGED
        older_than: 30d
      - id: keep-recent
        action: KEEP
        keep_count: 10
"""

RETURN = r"""
repository:
  description: The repository as the API returns it (predicted in check mode).
  returned: success
  type: dict
  sample: {"name": "projects/p/locations/europe-west1/repositories/ml-images", "format": "DOCKER",
           "registryUri": "europe-west1-docker.pkg.dev/p/ml-images"}
registry_uri:
  description: Where images are pushed (C(<location>-docker.pkg.dev/<project>/<repository>) for Docker).
  returned: when the repository exists and the API reports it
  type: str
  sample: europe-west1-docker.pkg.dev/my-project/ml-images
changes:
  description: The fields that differed and were updated.
  returned: when an existing repository changed
  type: list
  elements: str
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpModule, GcpResource
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import location_path

ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
DURATION_RE = re.compile(r"^(\d+)([dhs])$")
UNITS = {"d": 86400, "h": 3600, "s": 1}
KMS_KEY_RE = re.compile(r"^projects/[^/]+/locations/([^/]+)/keyRings/[^/]+/cryptoKeys/[^/]+$")
# Whole maps: an entry the user dropped is removed.
MAPS = ("labels", "cleanupPolicies")
PATCHABLE = ("description", "labels", "dockerConfig", "cleanupPolicies", "cleanupPolicyDryRun")


def duration(value):
    m = DURATION_RE.match(value or "")
    return "%ds" % (int(m.group(1)) * UNITS[m.group(2)]) if m else None


def cleanup_policy(policy):
    out = {"id": policy["id"], "action": policy["action"]}
    if policy.get("keep_count") is not None:
        recent = {"keepCount": policy["keep_count"]}
        if policy.get("package_name_prefixes"):
            recent["packageNamePrefixes"] = policy["package_name_prefixes"]
        out["mostRecentVersions"] = recent
        return out
    condition = {}
    for opt, field in (("tag_state", "tagState"), ("tag_prefixes", "tagPrefixes"),
                       ("version_name_prefixes", "versionNamePrefixes"),
                       ("package_name_prefixes", "packageNamePrefixes")):
        if policy.get(opt):
            condition[field] = policy[opt]
    for opt, field in (("older_than", "olderThan"), ("newer_than", "newerThan")):
        if policy.get(opt):
            condition[field] = duration(policy[opt])
    out["condition"] = condition
    return out


class Repository(GcpResource):
    api = "artifactregistry"
    kind = "repository"
    immutable = ("format", "kmsKeyName")
    read_defaults = {"labels": {}, "description": "", "cleanupPolicies": {}, "cleanupPolicyDryRun": False}

    @property
    def path(self):
        return "%s/repositories/%s" % (location_path(self.params["project"], self.params["location"]), self.name)

    def _repos(self):
        return self.client().projects().locations().repositories()

    def label(self):
        return "Artifact Registry repository %s" % self.name

    def get(self):
        current = self.fill_defaults(self.module.get(self._repos().get(name=self.path), resource=self.label()))
        if current is not None and current.get("format") == "DOCKER":
            current.setdefault("dockerConfig", {}).setdefault("immutableTags", False)
        return current

    def desired(self):
        p = self.params
        out = {"format": p["format"], "description": p["description"], "labels": p["labels"],
               "cleanupPolicies": dict((c["id"], cleanup_policy(c)) for c in p["cleanup_policies"]),
               "cleanupPolicyDryRun": p["cleanup_policy_dry_run"]}
        if p["format"] == "DOCKER":
            out["dockerConfig"] = {"immutableTags": p["immutable_tags"]}
        if p["kms_key_name"]:
            out["kmsKeyName"] = p["kms_key_name"]
        return out

    def changes(self, desired, current):
        out = [c for c in super(Repository, self).changes(desired, current) if c.split(".")[0] not in MAPS]
        return sorted(out + [f for f in MAPS if desired[f] != current.get(f, {})])

    def predict(self, current, desired):
        out = dict(current or {}, **desired)
        if current is None:
            out["name"] = self.path
        return out

    def _wait(self, op):
        if self.params["wait"]:
            self.module.wait("artifactregistry", op, resource=self.label())

    @staticmethod
    def _body(desired, fields):
        # Empty and false values are proto3 defaults: leaving them out clears them.
        return dict((f, desired[f]) for f in fields if desired[f] not in ({}, "", False))

    def create(self, desired):
        body = self._body(desired, desired.keys())
        op = self.module.execute(self._repos().create(parent=location_path(self.params["project"],
                                                                           self.params["location"]),
                                                      repositoryId=self.name, body=body),
                                 "create", self.label(), allow_409=True)
        self._wait(op)

    def update(self, current, desired, changes):
        fields = [f for f in PATCHABLE if any(c == f or c.startswith(f + ".") for c in changes)]
        self.module.execute(self._repos().patch(name=self.path, updateMask=",".join(fields),
                                                body=self._body(desired, fields)), "patch", self.label())

    def delete(self, current):
        op = self.module.execute(self._repos().delete(name=self.path), "delete", self.label())
        self._wait(op)


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            location=dict(type="str", required=True),
            format=dict(type="str", choices=["DOCKER", "PYTHON", "KFP", "GENERIC"], default="DOCKER"),
            description=dict(type="str", default=""),
            labels=dict(type="dict", default={}),
            immutable_tags=dict(type="bool", default=False),
            cleanup_policies=dict(type="list", elements="dict", default=[], options=dict(
                id=dict(type="str", required=True),
                action=dict(type="str", required=True, choices=["DELETE", "KEEP"]),
                tag_state=dict(type="str", choices=["TAGGED", "UNTAGGED", "ANY"]),
                tag_prefixes=dict(type="list", elements="str"),
                version_name_prefixes=dict(type="list", elements="str"),
                package_name_prefixes=dict(type="list", elements="str"),
                older_than=dict(type="str"),
                newer_than=dict(type="str"),
                keep_count=dict(type="int"),
            )),
            cleanup_policy_dry_run=dict(type="bool", default=False),
            kms_key_name=dict(type="str", no_log=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            wait=dict(type="bool", default=True),
        ),
    )
    p = module.params
    if not ID_RE.match(p["name"]):
        module.fail_json(msg="name=%r is not a valid repository ID: 1 to 63 lowercase letters, digits and hyphens, "
                             "starting with a letter and ending with a letter or digit" % p["name"])
    if p["immutable_tags"] and p["format"] != "DOCKER":
        module.fail_json(msg="immutable_tags is only for format DOCKER")
    policies = p["cleanup_policies"]
    if len(policies) > 10:
        module.fail_json(msg="cleanup_policies holds %d policies: Artifact Registry allows at most 10" % len(policies))
    ids = [c["id"] for c in policies]
    if len(set(ids)) != len(ids):
        module.fail_json(msg="cleanup_policies: the ids must be unique (got %s)" % ", ".join(ids))
    for idx, policy in enumerate(policies):
        where = "cleanup_policies[%d] (%s)" % (idx, policy["id"])
        conditions = [o for o in ("tag_state", "tag_prefixes", "version_name_prefixes", "older_than", "newer_than")
                      if policy.get(o)]
        if policy["keep_count"] is not None:
            if policy["action"] != "KEEP" or conditions:
                module.fail_json(msg="%s: keep_count is only for action KEEP, without other conditions than "
                                     "package_name_prefixes" % where)
            if policy["keep_count"] < 1:
                module.fail_json(msg="%s: keep_count must be at least 1" % where)
        elif not conditions and not policy.get("package_name_prefixes"):
            module.fail_json(msg="%s: a policy needs a condition (tag_state, a prefix, older_than or newer_than) or "
                                 "keep_count" % where)
        for opt in ("older_than", "newer_than"):
            if policy.get(opt) and duration(policy[opt]) is None:
                module.fail_json(msg="%s: %s=%r is not a duration such as 30d, 12h or 3600s"
                                     % (where, opt, policy[opt]))
        if policy.get("tag_state") == "TAGGED" and not policy.get("tag_prefixes"):
            module.fail_json(msg="%s: tag_state TAGGED needs tag_prefixes" % where)
    if p["kms_key_name"]:
        m = KMS_KEY_RE.match(p["kms_key_name"])
        if not m or m.group(1) != p["location"]:
            module.fail_json(msg="kms_key_name=%r must be a key path projects/<p>/locations/%s/keyRings/<r>/"
                                 "cryptoKeys/<k>, in the repository's location" % (p["kms_key_name"], p["location"]))
    module.ensure(Repository(module),
                  extra=lambda after: {"registry_uri": after["registryUri"]} if after and after.get("registryUri")
                  else {})


if __name__ == "__main__":
    one_exit(main)()
