# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  project:
    description:
      - The GCP project ID. Falls back to E(GCP_PROJECT) or E(GOOGLE_CLOUD_PROJECT).
    type: str
  auth_kind:
    description:
      - How to authenticate. V(application) uses application default credentials,
        V(serviceaccount) a key file or its contents, V(accesstoken) a ready OAuth2 access token.
      - Falls back to E(GCP_AUTH_KIND).
    type: str
    choices: [application, serviceaccount, accesstoken]
    default: application
  service_account_file:
    description:
      - Path to a service-account key JSON. Falls back to E(GCP_SERVICE_ACCOUNT_FILE).
    type: path
  service_account_contents:
    description:
      - The key JSON itself (for AWX credentials). Falls back to E(GCP_SERVICE_ACCOUNT_CONTENTS).
    type: jsonarg
  access_token:
    description:
      - An OAuth2 access token. Falls back to E(GCP_ACCESS_TOKEN).
    type: str
  scopes:
    description:
      - OAuth2 scopes requested for the credentials.
    type: list
    elements: str
    default: ['https://www.googleapis.com/auth/cloud-platform']
  api_endpoints:
    description:
      - Root URL per API name (for example C(sqladmin)), for private or restricted endpoints.
        The API's service path is appended.
    type: dict
    default: {}
  api_endpoint_template:
    description:
      - Root URL for every API, with C({api}) replaced by the API name; used for the local sandbox.
        Falls back to E(GCP_API_ENDPOINT_TEMPLATE).
    type: str
  request_timeout:
    description:
      - Seconds to wait for one HTTP response.
    type: int
    default: 60
  retries:
    description:
      - How often a request is retried on 429, 5xx and connection errors, with jittered exponential
        backoff that honours C(Retry-After).
    type: int
    default: 6
  wait_timeout:
    description:
      - Seconds to wait for a long-running operation before failing. A re-run picks up an operation
        that is still running.
    type: int
    default: 1800
  poll_interval:
    description:
      - Seconds between the first polls of a long-running operation; later polls are a tenth of the time
        waited so far, up to O(poll_max_interval).
      - When not set, the E(SKYFORGE_POLL_FIRST) environment variable is used if set (the test sandbox, whose
        operations are scaled down in time, sets it).
    type: float
    default: 0.5
  poll_max_interval:
    description:
      - Most seconds between two polls of a long-running operation.
      - When not set, the E(SKYFORGE_POLL_MAX) environment variable is used if set.
    type: float
    default: 10.0
requirements:
  - python >= 3.9
  - google-auth
  - google-auth-httplib2
  - google-api-python-client
notes:
  - All modules of this family belong to the C(group/skyforge.prefect_platform.gcp) action group, so
    credentials can be set once in C(module_defaults).
"""
