# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a Kubernetes Secret must be written, and whether a Helm release must be upgraded, each decided on one read
and without putting the objects' content anywhere."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import gzip
import json


def secret_differs(resources, name, secret_type, string_data):
    """True unless `resources` (a k8s_info list) holds Secret `name` of `secret_type` whose data has every key of
    `string_data` with that value. Keys the Secret has beyond those are left alone, as a merge patch leaves them."""
    current = None
    for obj in resources or []:
        if (obj.get("metadata") or {}).get("name") == name:
            current = obj
            break
    if current is None or current.get("type", "Opaque") != secret_type:
        return True
    data = current.get("data") or {}
    for key, value in (string_data or {}).items():
        if key not in data:
            return True
        try:
            if base64.b64decode(data[key], validate=True).decode("utf-8") != str(value):
                return True
        except (binascii.Error, TypeError, ValueError):
            return True
    return False


def _release_record(obj):
    """The release Helm keeps in a Secret's `release` key: base64 (Secret data) of base64 of gzip (or plain) JSON."""
    try:
        raw = base64.b64decode(base64.b64decode((obj.get("data") or {})["release"], validate=True), validate=True)
        if raw[:3] == b"\x1f\x8b\x08":
            raw = gzip.decompress(raw)
        return json.loads(raw.decode("utf-8"))
    except (KeyError, TypeError, ValueError, binascii.Error, OSError, EOFError):
        return None


def helm_release_differs(resources, chart, version, values):
    """True unless `resources` (the release Secrets of one release whose status is not `superseded`, as Helm labels
    them) is exactly one deployed revision of chart `chart` at `version` with user-supplied values equal to `values`.

    That is the comparison kubernetes.core.helm makes without the helm-diff plugin (`helm list`, `helm get values`,
    chart name and version), made stricter: a failed or pending revision beside the deployed one, or a record this
    filter cannot read, means the module must run and decide."""
    records = [obj for obj in resources or [] if isinstance(obj, dict)]
    if len(records) != 1:
        return True
    release = _release_record(records[0])
    if not isinstance(release, dict):
        return True
    meta = (release.get("chart") or {}).get("metadata") or {}
    if (release.get("info") or {}).get("status") != "deployed":
        return True
    if meta.get("name") != chart or str(meta.get("version")) != str(version):
        return True
    return _plain(release.get("config") or {}) != _plain(values or {})


def _plain(value):
    """Values as JSON sees them: Helm stored them through JSON, and Ansible's templated values may be tagged types."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class FilterModule(object):
    def filters(self):
        return {"secret_differs": secret_differs, "helm_release_differs": helm_release_differs}
