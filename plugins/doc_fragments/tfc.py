# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  token:
    description:
      - An HCP Terraform user or team API token. Falls back to E(TFE_TOKEN).
      - Organization tokens cannot queue runs.
    type: str
  address:
    description:
      - The HCP Terraform or Terraform Enterprise address. Falls back to E(TFE_ADDRESS), then
        V(https://app.terraform.io).
    type: str
  organization:
    description:
      - The organization name. Falls back to E(TFE_ORGANIZATION).
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
      - How often a request is retried on 429, 5xx and connection errors, with jittered exponential
        backoff; a 429 waits the C(X-RateLimit-Reset) seconds the API asks for.
    type: int
    default: 6
requirements:
  - python >= 3.10
  - pytfe >= 1.5.0
notes:
  - All modules of this family belong to the C(group/skyforge.prefect_platform.tfc) action group, so
    the token, address and organization can be set once in C(module_defaults).
  - Uses HashiCorp's Python SDK C(pytfe) with its own retries off; this collection retries instead.
"""
