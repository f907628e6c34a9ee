# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a Kubernetes Secret must be written, decided on one read and without putting its content anywhere."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii


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


class FilterModule(object):
    def filters(self):
        return {"secret_differs": secret_differs}
