"""The AWS stand-in: moto's server on a loopback port (EC2/VPC, ECS, IAM, Secrets Manager, Cloud Map, CloudWatch Logs).

moto keeps its state in this process (one account, every region). Clients reach it only through `endpoint_url`
(amazon.aws and community.aws modules take `endpoint_url`; boto3 `AWS_ENDPOINT_URL`) with dummy credentials; the
addresses moto hands out (VPC ranges, Elastic IPs) are data, never dialled.
"""

from __future__ import annotations

import logging
import os

REGION = "eu-west-1"
ACCESS_KEY_ID = "AKIASKYFORGESANDBOX0"
SECRET_ACCESS_KEY = "skyforge-sandbox-dummy-secret"  # not a secret: moto accepts any key
ACCOUNT_ID = "123456789012"  # moto's default account


def _faithful_moto():
    """Where moto 5.2.5 answers differently from AWS in a way the modules see, make it answer as AWS does."""
    from moto.ec2 import utils as ec2_utils

    # DescribeTags names a NAT gateway's resource type "natgateway" (moto: "nat-gateway"), and amazon.aws reads a
    # NAT gateway's tags filtered by it: with moto's name every run would add the tags again.
    ec2_utils.EC2_PREFIX_TO_RESOURCE["nat"] = "natgateway"


class AwsStandIn:
    """moto's ThreadedMotoServer on 127.0.0.1; `port` 0 picks an ephemeral one."""

    def __init__(self, port=0, region=REGION):
        self.requested_port = int(port)
        self.region = region
        self.server = None
        self.url = None

    def start(self):
        _faithful_moto()
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.requested_port, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = "http://%s:%d" % (host, port)
        return self

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def reset(self):
        """Forget every resource (moto's own reset endpoint)."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(self.url + "/moto-api/reset", method="POST"), timeout=30).read()

    def env(self):
        """Environment for a boto3 client or an Ansible run that should reach only the stand-in."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            # No ~/.aws profile, IMDS or SSO lookups: only the values above.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def endpoint_info(self):
        return {
            "aws_endpoint_url": self.url,
            "aws_region": self.region,
            "aws_access_key_id": ACCESS_KEY_ID,
            "aws_secret_access_key": SECRET_ACCESS_KEY,
            "aws_account_id": ACCOUNT_ID,
        }

    def client(self, service):
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)
