#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cloudflare_ip_ranges_info
short_description: Cloudflare's published edge IP ranges
version_added: 0.1.0
description:
  - Reads the IPv4 and IPv6 ranges Cloudflare's edge connects from (C(GET /ips)), for an origin firewall that
    admits only Cloudflare, so that Access cannot be bypassed.
  - The endpoint is public; O(api_token) is optional.
author:
  - Skyforge platform team (@skyforge)
extends_documentation_fragment:
  - skyforge.prefect_platform.cloudflare
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: This module only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
"""

EXAMPLES = r"""
- name: Cloudflare's ranges, for the origin firewall
  skyforge.prefect_platform.cloudflare_ip_ranges_info:
  register: cf_ranges
"""

RETURN = r"""
ipv4_cidrs:
  description: Cloudflare's IPv4 ranges.
  returned: success
  type: list
  elements: str
  sample: ["173.245.48.0/20", "103.21.244.0/22"]
ipv6_cidrs:
  description: Cloudflare's IPv6 ranges.
  returned: success
  type: list
  elements: str
  sample: ["2400:cb00::/32"]
etag:
  description: A digest of the ranges; it changes when they change.
  returned: success
  type: str
"""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.cloudflare import CloudflareModule
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import one_exit


def main():
    module = CloudflareModule(argument_spec=dict(), needs_token=False)
    out = module.call(module.client.ips.list, extra_headers=module.public_headers(), action="read",
                      resource="Cloudflare IP ranges").to_dict(mode="json")
    if not out.get("ipv4_cidrs"):
        module.fail_json(msg="Cloudflare: GET /ips answered no IPv4 ranges; refusing to build an empty allow-list. "
                         "Fix: retry later")
    module.exit_json(changed=False, ipv4_cidrs=out.get("ipv4_cidrs", []), ipv6_cidrs=out.get("ipv6_cidrs", []),
                     etag=out.get("etag"))


if __name__ == "__main__":
    one_exit(main)()
