#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_storage_bucket
short_description: Manage a Cloud Storage bucket for ML artifacts
version_added: 0.1.0
description:
  - Creates, updates or deletes a Cloud Storage bucket (the storage.googleapis.com JSON API v1) locked down for
    artifacts, by default with uniform bucket-level access and public access prevention enforced.
  - The storage class, access settings, versioning, lifecycle rules, default CMEK key and labels are changed in
    place. The location cannot change; the module fails naming it.
  - Cloud Storage refuses to delete a bucket that still holds objects (or noncurrent versions of them); the module
    then fails saying so and leaves the bucket, and its data, alone.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.gcp
  - skyforge.prefect_platform.attributes
options:
  name:
    description: The bucket name, by Cloud Storage's naming rules (3 to 63 lowercase letters, digits, C(-), C(_) and
      C(.), starting and ending with a letter or digit; not starting with C(goog)). Bucket names are global.
    type: str
    required: true
  location:
    description: The bucket's location, a region (C(europe-west1)), dual-region or multi-region (C(EU)). Required
      with O(state=present). Cannot change.
    type: str
  storage_class:
    description: The default storage class of new objects.
    type: str
    choices: [STANDARD, NEARLINE, COLDLINE, ARCHIVE]
    default: STANDARD
  uniform_bucket_level_access:
    description: Control access by IAM only (no object ACLs). Cloud Storage lets it be turned off only within 90 days
      of turning it on.
    type: bool
    default: true
  public_access_prevention:
    description: C(enforced) refuses any public grant on the bucket or its objects; C(inherited) follows the
      organisation policy.
    type: str
    choices: [enforced, inherited]
    default: enforced
  versioning:
    description: Keep overwritten and deleted objects as noncurrent versions.
    type: bool
    default: false
  lifecycle_rules:
    description:
      - The bucket's lifecycle rules, all of them (rules not listed are removed). Each needs an action and at least
        one condition.
    type: list
    elements: dict
    default: []
    suboptions:
      action:
        description: What to do to matching objects.
        type: str
        required: true
        choices: [Delete, SetStorageClass, AbortIncompleteMultipartUpload]
      storage_class:
        description: The class to move objects to; only, and required, with O(lifecycle_rules[].action=SetStorageClass).
        type: str
        choices: [NEARLINE, COLDLINE, ARCHIVE]
      age:
        description: Days since the object was created.
        type: int
      num_newer_versions:
        description: Versions newer than this one (versioned buckets).
        type: int
      is_live:
        description: Only live (true) or only noncurrent (false) versions.
        type: bool
      days_since_noncurrent_time:
        description: Days since the version became noncurrent.
        type: int
      matches_prefix:
        description: Object name prefixes the rule applies to.
        type: list
        elements: str
      matches_suffix:
        description: Object name suffixes the rule applies to.
        type: list
        elements: str
  kms_key_name:
    description: The Cloud KMS key (C(projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>)) that encrypts new
      objects by default (CMEK). It must be in the bucket's location, and the project's Cloud Storage service agent
      needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it. Omitted, objects use Google-managed encryption.
    type: str
  labels:
    description: Labels of the bucket (all of them; labels not listed are removed).
    type: dict
    default: {}
  state:
    description: Whether the bucket should exist. V(absent) deletes only an empty bucket.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs roles/storage.admin.
"""

EXAMPLES = r"""
- name: Model artifacts, CMEK-encrypted, old objects deleted after 90 days
  skyforge.prefect_platform.gcp_storage_bucket:
    project: my-project
    name: my-project-ml-artifacts
    location: europe-west1
    versioning: true
    kms_key_name: projects/my-project/locations/europe-west1/keyRings/ml-artifacts/cryptoKeys/ml-artifacts
    lifecycle_rules:
      - action: Delete
        age: 90
      - action: Delete
        is_live: false
        num_newer_versions: 3
"""

RETURN = r"""
bucket:
  description: The bucket as the API returns it (predicted in check mode).
  returned: success
  type: dict
  sample: {"name": "my-project-ml-artifacts", "location": "EUROPE-WEST1", "storageClass": "STANDARD",
           "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}, "publicAccessPrevention": "enforced"}}
url:
  description: The bucket's C(gs://) URL.
  returned: when the bucket exists
  type: str
  sample: gs://my-project-ml-artifacts
changes:
  description: The fields that differed and were updated.
  returned: when an existing bucket changed
  type: list
  elements: str
"""

import re

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpApiError, GcpModule, GcpResource
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import bucket_name_problem

KMS_KEY_RE = re.compile(r"^projects/[^/]+/locations/([^/]+)/keyRings/[^/]+/cryptoKeys/[^/]+$")
# Module suboption -> lifecycle condition field.
CONDITIONS = (("age", "age"), ("num_newer_versions", "numNewerVersions"), ("is_live", "isLive"),
              ("days_since_noncurrent_time", "daysSinceNoncurrentTime"), ("matches_prefix", "matchesPrefix"),
              ("matches_suffix", "matchesSuffix"))
FIELDS = ("storageClass", "iamConfiguration", "versioning", "lifecycle", "encryption", "labels")


def lifecycle_rule(rule):
    action = {"type": rule["action"]}
    if rule.get("storage_class"):
        action["storageClass"] = rule["storage_class"]
    condition = dict((api, rule[opt]) for opt, api in CONDITIONS if rule.get(opt) is not None)
    return {"action": action, "condition": condition}


class Bucket(GcpResource):
    api = "storage"
    kind = "bucket"
    immutable = ("location",)
    # Left out of a read when empty or off: what the comparison takes them as.
    read_defaults = {"labels": {}, "lifecycle": {"rule": []}, "versioning": {"enabled": False}, "encryption": {}}

    def _buckets(self):
        return self.client().buckets()

    def label(self):
        return "bucket %s" % self.name

    def get(self):
        current = self.module.get(self._buckets().get(bucket=self.name), resource=self.label())
        if current is not None and self.params["state"] == "absent":
            # Known before the delete, so check mode predicts the refusal too.
            listing = self.module.get(self.client().objects().list(bucket=self.name, versions=True, maxResults=1),
                                      resource=self.label()) or {}
            if listing.get("items"):
                self.not_empty()
        return self.fill_defaults(current)

    def desired(self):
        p = self.params
        return {
            "location": p["location"].upper(),
            "storageClass": p["storage_class"],
            "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": p["uniform_bucket_level_access"]},
                                 "publicAccessPrevention": p["public_access_prevention"]},
            "versioning": {"enabled": p["versioning"]},
            "lifecycle": {"rule": [lifecycle_rule(r) for r in p["lifecycle_rules"]]},
            "encryption": {"defaultKmsKeyName": p["kms_key_name"]} if p["kms_key_name"] else {},
            "labels": p["labels"],
        }

    def changes(self, desired, current):
        # Whole maps: a label or key the user dropped is removed too.
        maps = ("labels", "encryption")
        out = [c for c in super(Bucket, self).changes(desired, current) if c.split(".")[0] not in maps]
        return sorted(out + [f for f in maps if desired[f] != current.get(f, {})])

    def predict(self, current, desired):
        out = dict(current or {}, name=self.name)
        for field, value in desired.items():
            if field == "iamConfiguration" and current:
                iam = dict(current.get(field) or {})
                iam.update(value)
                out[field] = iam
            else:
                out[field] = value
        return out

    def body(self, desired, fields):
        body = {}
        for field in fields:
            value = desired[field]
            if field == "labels" and self.current is not None:
                # PATCH merges labels key by key: a dropped key is sent as null.
                value = dict(value, **dict((k, None) for k in self.current.get("labels", {}) if k not in value))
            elif field == "encryption" and not value:
                value = None
            elif field == "lifecycle" and not value["rule"]:
                value = None
            body[field] = value
        return body

    current = None

    def create(self, desired):
        body = dict((k, v) for k, v in self.body(desired, FIELDS).items() if v is not None)
        body.update(name=self.name, location=desired["location"])
        return self.module.execute(self._buckets().insert(project=self.params["project"], body=body), "create",
                                   self.label(), allow_409=True)

    def update(self, current, desired, changes):
        self.current = current
        fields = [f for f in FIELDS if any(c == f or c.startswith(f + ".") or c.startswith(f + "[") for c in changes)]
        self.module.execute(self._buckets().patch(bucket=self.name, ifMetagenerationMatch=current["metageneration"],
                                                  body=self.body(desired, fields)), "patch", self.label())

    def delete(self, current):
        try:
            self.module.execute(self._buckets().delete(bucket=self.name), "delete", self.label(), allow=(409,))
        except GcpApiError as exc:
            self.not_empty(exc.status)

    def not_empty(self, status=None):
        self.module.fail_json(msg="%s is not empty: Cloud Storage deletes only an empty bucket (noncurrent versions "
                                  "count). Fix: delete its objects first (gcloud storage rm --recursive gs://%s/**), "
                                  "or keep the bucket." % (self.label(), self.name), status=status)


def main():
    module = GcpModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            location=dict(type="str"),
            storage_class=dict(type="str", choices=["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"], default="STANDARD"),
            uniform_bucket_level_access=dict(type="bool", default=True),
            public_access_prevention=dict(type="str", choices=["enforced", "inherited"], default="enforced"),
            versioning=dict(type="bool", default=False),
            lifecycle_rules=dict(type="list", elements="dict", default=[], options=dict(
                action=dict(type="str", required=True, choices=["Delete", "SetStorageClass",
                                                                "AbortIncompleteMultipartUpload"]),
                storage_class=dict(type="str", choices=["NEARLINE", "COLDLINE", "ARCHIVE"]),
                age=dict(type="int"),
                num_newer_versions=dict(type="int"),
                is_live=dict(type="bool"),
                days_since_noncurrent_time=dict(type="int"),
                matches_prefix=dict(type="list", elements="str"),
                matches_suffix=dict(type="list", elements="str"),
            )),
            kms_key_name=dict(type="str", no_log=False),
            labels=dict(type="dict", default={}),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["location"])],
    )
    p = module.params
    problem = bucket_name_problem(p["name"])
    if problem:
        module.fail_json(msg="%s (Cloud Storage's bucket naming rules)" % problem)
    for idx, rule in enumerate(p["lifecycle_rules"]):
        where = "lifecycle_rules[%d]" % idx
        if (rule["action"] == "SetStorageClass") != bool(rule["storage_class"]):
            module.fail_json(msg="%s: storage_class is required with action SetStorageClass and only with it" % where)
        conditions = [opt for opt, _api in CONDITIONS if rule.get(opt) is not None]
        if not conditions:
            module.fail_json(msg="%s: a rule needs at least one condition (age, num_newer_versions, is_live, "
                                 "days_since_noncurrent_time, matches_prefix or matches_suffix)" % where)
        negative = [opt for opt in ("age", "num_newer_versions", "days_since_noncurrent_time")
                    if rule.get(opt) is not None and rule[opt] < 0]
        if negative:
            module.fail_json(msg="%s: %s must not be negative" % (where, negative[0]))
    if p["kms_key_name"]:
        m = KMS_KEY_RE.match(p["kms_key_name"])
        if not m:
            module.fail_json(msg="kms_key_name=%r is not a key path projects/<p>/locations/<l>/keyRings/<r>/"
                                 "cryptoKeys/<k>" % p["kms_key_name"])
        if p["location"] and m.group(1).upper() != p["location"].upper():
            module.fail_json(msg="kms_key_name is in location %s but the bucket is in %s: Cloud Storage needs the CMEK "
                                 "key in the bucket's location" % (m.group(1), p["location"]))
    module.ensure(Bucket(module), extra=lambda after: {"url": "gs://%s" % p["name"]} if after else {})


if __name__ == "__main__":
    one_exit(main)()
