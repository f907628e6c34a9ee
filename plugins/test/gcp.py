# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests for role input validation: `x is skyforge.prefect_platform.gcp_name`."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import (
    cf_duration_seconds, is_gcp_name, power_of_two, tf_version_valid)


def cf_duration(value, nonzero=True):
    seconds = cf_duration_seconds(value)
    return seconds is not None and (seconds > 0 or not nonzero)


class TestModule(object):
    def tests(self):
        return {
            "gcp_name": is_gcp_name,
            "power_of_two": power_of_two,
            "terraform_version": tf_version_valid,
            "cloudflare_duration": cf_duration,
        }
