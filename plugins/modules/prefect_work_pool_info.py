#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: prefect_work_pool_info
short_description: Read a Prefect work pool and the workers polling it
version_added: 0.1.0
description:
  - Returns the work pool and its workers with their status, and can wait until a number of them are online.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.prefect
  - skyforge.prefect_platform.attributes.info_module
options:
  name:
    description: The work pool name.
    type: str
    required: true
  wait_for_online:
    description: Wait until at least this many workers report C(ONLINE); V(0) does not wait.
    type: int
    default: 0
  timeout:
    description: Seconds to wait for O(wait_for_online).
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: The worker has come online in its pool
  skyforge.prefect_platform.prefect_work_pool_info:
    api_url: https://prefect.example.com/api
    name: cloud-run
    wait_for_online: 1
"""

RETURN = r"""
exists:
  description: Whether the pool exists.
  returned: always
  type: bool
work_pool:
  description: The work pool as the server returns it.
  returned: when the pool exists
  type: dict
workers:
  description: The pool's workers with C(name), C(status) and C(last_heartbeat_time).
  returned: when the pool exists
  type: list
  elements: dict
online:
  description: How many workers are online.
  returned: when the pool exists
  type: int
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import WaitTimeout, wait_for
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.prefect import PrefectModule


def main():
    module = PrefectModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            wait_for_online=dict(type="int", default=0),
            timeout=dict(type="int", default=300),
        ),
    )
    p = module.params

    def read():
        status, pool = module.request("GET", "/work_pools/%s" % p["name"], allow=(404,))
        if status == 404:
            return None, [], 0
        workers = module.request("POST", "/work_pools/%s/workers/filter" % p["name"], {})[1] or []
        slim = [dict((k, w.get(k)) for k in ("name", "status", "last_heartbeat_time")) for w in workers]
        return pool, slim, sum(1 for w in slim if w["status"] == "ONLINE")

    def done(state):
        pool, _workers, online = state
        return not p["wait_for_online"] if pool is None else online >= p["wait_for_online"]

    try:
        pool, workers, online = wait_for(
            read, done, p["timeout"],
            lambda state: "work pool %s to have %d online worker(s); it has %s" % (
                p["name"], p["wait_for_online"], "%d" % state[2] if state[0] is not None else "not been created"),
            hint="check the worker release's logs and that its API URL and pool name are right", first=1.0,
            maximum=15.0)
    except WaitTimeout as exc:
        pool, workers, online = exc.last
        if pool is None:
            module.exit_json(changed=False, exists=False)
        module.fail_json(msg=exc.msg, workers=workers)
    if pool is None:
        module.exit_json(changed=False, exists=False)
    module.exit_json(changed=False, exists=True, work_pool=pool, workers=workers, online=online)


if __name__ == "__main__":
    one_exit(main)()
