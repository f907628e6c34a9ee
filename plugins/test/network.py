# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests for role input validation: `x is skyforge.prefect_platform.cidr_valid`."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.skyforge.prefect_platform.plugins.filter.network import cidr_private, cidr_valid


class TestModule(object):
    def tests(self):
        return {"cidr_valid": cidr_valid, "cidr_private": cidr_private}
