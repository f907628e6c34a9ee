# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of GCP names and values for the roles' validations: each returns what is wrong, naming the variable."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.gcp_names import (
    address_problem, bucket_name_problem, cidr_problems, iam_role_problems, label_problems, not_strings,
    service_problems, sql_flag_problems, sql_max_connections, sql_tier_problem)


def _list(value):
    return [value] if value else []


class FilterModule(object):
    def filters(self):
        return {
            "gcp_not_strings": not_strings,
            "gcp_label_problems": label_problems,
            "gcp_iam_role_problems": iam_role_problems,
            "gcp_service_problems": service_problems,
            "gcp_sql_tier_problems": lambda tier, var="cloudsql_tier": _list(sql_tier_problem(tier, var)),
            "gcp_sql_flag_problems": sql_flag_problems,
            "gcp_sql_max_connections": sql_max_connections,
            "gcp_cidr_problems": cidr_problems,
            "gcp_address_problems": lambda value, var, subnet=None: _list(address_problem(value, var, subnet)),
            "gcp_bucket_name_problems": lambda value, var="name": _list(bucket_name_problem(value, var)),
        }
