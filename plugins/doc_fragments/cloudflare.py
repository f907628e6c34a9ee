# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  api_token:
    description:
      - A Cloudflare API token (not the global API key). Falls back to E(CLOUDFLARE_API_TOKEN).
      - docs/permissions.md lists the permissions each module needs; a missing one fails with its name.
    type: str
  base_url:
    description:
      - The API root, C(https://api.cloudflare.com/client/v4) by default. Falls back to E(CLOUDFLARE_BASE_URL);
        used for the local sandbox.
    type: str
  account_id:
    description:
      - The account that owns Access and Zero Trust objects (and narrows zone look-ups).
        Falls back to E(CLOUDFLARE_ACCOUNT_ID).
    type: str
  request_timeout:
    description:
      - Seconds to wait for one HTTP response.
    type: int
    default: 60
  retries:
    description:
      - How often a request is retried on 429, 5xx and connection errors, with jittered exponential
        backoff that honours C(Retry-After). The SDK's own retries are off.
    type: int
    default: 6
requirements:
  - python >= 3.9
  - cloudflare >= 4.0
notes:
  - All modules of this family belong to the C(group/skyforge.prefect_platform.cloudflare) action group, so
    credentials can be set once in C(module_defaults).
"""
