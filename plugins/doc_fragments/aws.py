# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The AWS region. Falls back to E(AWS_REGION), then E(AWS_DEFAULT_REGION).
    type: str
    aliases: [aws_region]
  endpoint_url:
    description:
      - Send every request to this URL instead of the region's public endpoint (a VPC endpoint, or a local
        stand-in). Falls back to E(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url]
  access_key:
    description:
      - The AWS access key ID. Falls back to E(AWS_ACCESS_KEY_ID); without it boto3's own chain applies
        (profile, instance or task role).
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description:
      - The AWS secret access key. Falls back to E(AWS_SECRET_ACCESS_KEY). Never shown in output.
    type: str
    aliases: [aws_secret_access_key]
  session_token:
    description:
      - The session token of temporary credentials. Falls back to E(AWS_SESSION_TOKEN).
    type: str
    aliases: [aws_session_token]
  profile:
    description:
      - A named profile of the AWS config files. Falls back to E(AWS_PROFILE).
    type: str
    aliases: [aws_profile]
  retries:
    description:
      - How many times a throttled request, a 5xx or a connection error is retried (botocore's standard retry
        mode, jittered exponential backoff).
    type: int
    default: 6
requirements:
  - boto3 >= 1.34.0
  - botocore >= 1.34.0
"""
