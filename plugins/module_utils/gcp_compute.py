# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compute Engine resources on the GCP base: one class per collection, references as full URLs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import uuid

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import InputError
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp import GcpResource

COMPUTE_ROOT = "https://www.googleapis.com/compute/v1/"
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_name(module, value, option="name"):
    if value is not None and not NAME_RE.match(value):
        raise InputError("%s=%r is not a valid GCP resource name: 1-63 characters, lowercase letters, digits and "
                         "hyphens, starting with a letter and not ending with a hyphen" % (option, value))


class ComputeResource(GcpResource):
    """A compute collection (`networks`, `subnetworks`, ...) addressed by project [+ region]."""

    api = "compute"
    collection = None
    name_param = None
    regional = False
    # Fields the server fills in that the module never sends: kept out of the comparison.
    patch_with_fingerprint = False

    def link(self, ref, collection=None, regional=None):
        """A user reference (name, partial path or URL) -> the full URL the API echoes back."""
        if ref is None:
            return None
        if ref.startswith("https://"):
            return ref
        project = self.params["project"]
        if ref.startswith("projects/"):
            return COMPUTE_ROOT + ref
        if "/" in ref:
            return COMPUTE_ROOT + "projects/%s/%s" % (project, ref)
        collection = collection or self.collection
        regional = self.regional if regional is None else regional
        if regional:
            return COMPUTE_ROOT + "projects/%s/regions/%s/%s/%s" % (project, self.params["region"], collection, ref)
        return COMPUTE_ROOT + "projects/%s/global/%s/%s" % (project, collection, ref)

    def _args(self, **extra):
        args = dict(project=self.params["project"])
        if self.regional:
            args["region"] = self.params["region"]
        args.update(extra)
        return args

    def _coll(self):
        return getattr(self.client(), self.collection)()

    def get(self):
        request = self._coll().get(**self._args(**{self.name_param: self.name}))
        return self.module.get(request, resource=self.label())

    def label(self):
        return "%s %s" % (self.kind, self.name)

    def _run(self, request, action):
        op = self.module.execute(request, action=action, resource=self.label(), allow_409=(action == "insert"))
        return self.module.wait("compute", op, resource=self.label())

    def create(self, desired):
        # requestId makes the insert idempotent: a retry after a dropped reply gets the first attempt's operation
        # back (and waits on it), where a plain retry would get 409 and miss that operation failing.
        return self._run(self._coll().insert(body=desired, requestId=str(uuid.uuid4()), **self._args()), "insert")

    def update(self, current, desired, changes):
        body = dict(desired)
        if self.patch_with_fingerprint:
            body["fingerprint"] = current.get("fingerprint")
        return self._run(self._coll().patch(body=body, **self._args(**{self.name_param: self.name})), "patch")

    def delete(self, current):
        return self._run(self._coll().delete(requestId=str(uuid.uuid4()), **self._args(**{self.name_param: self.name})),
                         "delete")

    def view(self, resource):
        if not resource:
            return resource
        return dict((k, v) for k, v in resource.items() if k not in ("kind", "selfLinkWithId"))
