# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - The Prefect server's API URL, ending in C(/api). Falls back to E(PREFECT_API_URL).
    type: str
    required: true
  auth_string:
    description:
      - The server's basic-auth string C(user:password). Falls back to E(PREFECT_API_AUTH_STRING).
      - Never shown in output or diffs.
    type: str
  access_client_id:
    description:
      - Cloudflare Access service-token client ID, sent as C(CF-Access-Client-Id) when the API sits behind Access.
        Falls back to E(CF_ACCESS_CLIENT_ID).
    type: str
  access_client_secret:
    description:
      - Cloudflare Access service-token client secret, sent as C(CF-Access-Client-Secret).
        Falls back to E(CF_ACCESS_CLIENT_SECRET).
    type: str
  validate_certs:
    description:
      - Whether to verify the server's TLS certificate.
    type: bool
    default: true
  request_timeout:
    description:
      - Seconds to wait for one HTTP response.
    type: int
    default: 30
  retries:
    description:
      - How many times a request that failed with 429, 5xx or a connection error is retried, with jittered backoff.
    type: int
    default: 6
"""
