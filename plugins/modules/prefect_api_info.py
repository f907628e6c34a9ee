#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: prefect_api_info
short_description: Read whether a Prefect API answers healthy, and what it answers a caller without credentials
version_added: 0.1.0
description:
  - Sends C(GET /health) with the credentials given (basic auth, Cloudflare Access service token) and reports the
    status and body it answered; with O(wait_healthy), retries until the answer is C(200) and C(true) or that many
    seconds have passed (a release still starting answers 502 or 503 for a while).
  - With O(check_anonymous), also sends C(GET /admin/version) with no credentials at all and reports its status,
    retrying while it is neither C(200), C(401) nor C(403) (throttling, 5xx, no connection).
  - It never fails on what the API answers. The caller asserts on the result and says what to fix, since each status
    has its own fix (Access, basic auth, the release, the DNS record).
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.prefect
  - skyforge.prefect_platform.attributes.info_module
options:
  wait_healthy:
    description: Seconds to keep asking C(/health) until it answers C(200) and C(true); V(0) asks once.
    type: int
    default: 0
  check_anonymous:
    description: Also ask C(/admin/version) without credentials and return its status in RV(anonymous_status).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The API answers healthy through Access, and refuses a caller without credentials
  skyforge.prefect_platform.prefect_api_info:
    api_url: https://prefect.example.com/api
    auth_string: "{{ prefect_auth_string }}"
    access_client_id: "{{ cf_access_client_id }}"
    access_client_secret: "{{ cf_access_client_secret }}"
    wait_healthy: 30
    check_anonymous: true
  register: api

- name: Healthy, and closed to anonymous callers
  ansible.builtin.assert:
    that:
      - api.healthy
      - api.anonymous_status in [401, 403]
"""

RETURN = r"""
healthy:
  description: Whether C(/health) answered C(200) with the body C(true).
  returned: always
  type: bool
health_status:
  description: The status C(/health) last answered; absent when no answer came (see RV(health_error)).
  returned: when the API answered
  type: int
health_body:
  description: The body C(/health) last answered, at most 200 characters.
  returned: always
  type: str
health_error:
  description: Why C(/health) gave no answer (connection refused, TLS, timeout), or the HTTP reason of an error status.
  returned: when it did not answer 200
  type: str
anonymous_status:
  description: The status C(/admin/version) answered a caller without credentials; absent when no answer came.
  returned: when O(check_anonymous) and the API answered
  type: int
"""

import socket

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import WaitTimeout, wait_for
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.prefect import PrefectModule

ANONYMOUS_ANSWERS = (200, 401, 403)


def healthy(answer):
    return answer[0] == 200 and answer[1].strip() == "true"


def ask(module, path, headers):
    """(status or None, body text, error text) of one GET; never raises for what the server answers."""
    try:
        resp = open_url(module.api_url + path, method="GET", headers=headers,
                        validate_certs=module.params["validate_certs"], timeout=module.params["request_timeout"])
        return resp.getcode(), resp.read().decode("utf-8", "replace")[:200], ""
    except HTTPError as err:
        try:
            body = err.read().decode("utf-8", "replace")[:200]
        except (OSError, AttributeError):
            body = ""
        return err.code, body, "HTTP Error %s: %s" % (err.code, err.reason)
    except (URLError, socket.error, ValueError) as err:
        return None, "", str(getattr(err, "reason", err))


def until(read, done, seconds):
    """read() until done(value) or `seconds` have passed; the last value either way."""
    try:
        return wait_for(read, done, seconds, "the API", first=1.0, maximum=3.0)
    except WaitTimeout as exc:
        return exc.last


def main():
    module = PrefectModule(
        argument_spec=dict(
            wait_healthy=dict(type="int", default=0),
            check_anonymous=dict(type="bool", default=False),
        ),
    )
    p = module.params
    status, body, error = until(lambda: ask(module, "/health", module.headers()), healthy, max(p["wait_healthy"], 0))
    result = dict(changed=False, healthy=healthy((status, body, error)), health_body=body)
    if status is not None:
        result["health_status"] = status
    if error:
        result["health_error"] = error
    if p["check_anonymous"]:
        anonymous = {"Accept": "application/json"}
        status = until(lambda: ask(module, "/admin/version", anonymous), lambda a: a[0] in ANONYMOUS_ANSWERS,
                       max(10, p["request_timeout"]))[0]
        if status is not None:
            result["anonymous_status"] = status
    module.exit_json(**result)


if __name__ == "__main__":
    one_exit(main)()
