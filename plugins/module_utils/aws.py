# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base for the AWS modules this collection writes itself (what amazon.aws and community.aws do not ship).

`AwsModule` owns boto3 client creation (region, credentials, an endpoint override for a stand-in or a VPC endpoint),
retries (botocore's standard mode: throttling and 5xx with jittered backoff) and clear one-line errors; a module
declares what it manages as an `AwsResource` and hands it to `AwsModule.ensure()` (check mode and diff).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import (
    EnsureMixin,
    Resource,
    Waiter,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import ApiError

BOTO3_IMPORT_ERROR = None
try:
    import boto3
    import botocore.config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    BOTO3_IMPORT_ERROR = traceback.format_exc()

    class ClientError(Exception):
        pass

    class BotoCoreError(Exception):
        pass

AWS_ARGS = dict(
    region=dict(type="str", aliases=["aws_region"], fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
    endpoint_url=dict(type="str", aliases=["aws_endpoint_url"], fallback=(env_fallback, ["AWS_ENDPOINT_URL"])),
    access_key=dict(type="str", aliases=["aws_access_key_id"], no_log=False,
                    fallback=(env_fallback, ["AWS_ACCESS_KEY_ID"])),
    secret_key=dict(type="str", aliases=["aws_secret_access_key"], no_log=True,
                    fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY"])),
    session_token=dict(type="str", aliases=["aws_session_token"], no_log=True,
                       fallback=(env_fallback, ["AWS_SESSION_TOKEN"])),
    profile=dict(type="str", aliases=["aws_profile"], fallback=(env_fallback, ["AWS_PROFILE"])),
    retries=dict(type="int", default=6),
)


def error_code(exc):
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None


class AwsResource(Resource):
    """One AWS object: subclasses implement get/create/update/delete and desired() with `self.module.call()`."""


class AwsModule(EnsureMixin, AnsibleModule):
    common_args = AWS_ARGS

    def __init__(self, argument_spec=None, **kwargs):
        super(AwsModule, self).__init__(argument_spec, **kwargs)
        if BOTO3_IMPORT_ERROR:
            self.fail_json(msg=missing_required_lib("boto3 and botocore"), exception=BOTO3_IMPORT_ERROR)
        if not self.params.get("region"):
            self.fail_json(msg="no AWS region: set region (or AWS_REGION) to the region the resources live in.")
        self._clients = {}

    def client(self, service):
        if service not in self._clients:
            session = boto3.session.Session(
                aws_access_key_id=self.params.get("access_key"),
                aws_secret_access_key=self.params.get("secret_key"),
                aws_session_token=self.params.get("session_token"),
                profile_name=self.params.get("profile"),
                region_name=self.params["region"],
            )
            config = botocore.config.Config(retries={"max_attempts": self.params["retries"] + 1, "mode": "standard"},
                                            user_agent_extra="skyforge.prefect_platform")
            self._clients[service] = session.client(service, endpoint_url=self.params.get("endpoint_url"),
                                                    config=config)
        return self._clients[service]

    def call(self, service, operation, allow=(), **params):
        """client(service).<operation>(**params); an error whose code is in `allow` returns None instead of failing."""
        try:
            return getattr(self.client(service), operation)(**params)
        except ClientError as exc:
            code = error_code(exc)
            if code in allow:
                return None
            message = exc.response.get("Error", {}).get("Message") or str(exc)
            raise ApiError("%s %s failed (%s): %s" % (service, operation, code, message), family="aws",
                           action=operation, resource=service, reason=code, error_code=code)
        except BotoCoreError as exc:
            raise ApiError("%s %s failed: %s" % (service, operation, exc),
                           "check region, endpoint_url and the network path to AWS", family="aws")

    def paginate(self, service, operation, key, **params):
        try:
            pages = self.client(service).get_paginator(operation).paginate(**params)
            return [item for page in pages for item in page.get(key, [])]
        except (ClientError, BotoCoreError) as exc:
            raise ApiError("%s %s failed: %s" % (service, operation, exc), family="aws", error_code=error_code(exc))

    def wait(self, read, done, timeout, what, option="wait_timeout"):
        return Waiter(timeout, option, first=0.2, maximum=5.0).until(read, done, what)
