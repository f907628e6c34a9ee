# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CIDR checks for role input validation, without netaddr (the roles validate before any API call)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress


def cidr_valid(value):
    """True for an IPv4 network in CIDR form with no host bits set."""
    try:
        return isinstance(value, str) and "/" in value and ipaddress.ip_network(value).version == 4
    except ValueError:
        return False


def cidr_overlaps(named):
    """{'name': 'cidr', ...} -> ['a (10.0.0.0/16) overlaps b (10.0.128.0/20)', ...]."""
    nets = [(name, ipaddress.ip_network(cidr)) for name, cidr in sorted(named.items()) if cidr_valid(cidr)]
    out = []
    for i, (na, a) in enumerate(nets):
        for nb, b in nets[i + 1:]:
            if a.overlaps(b):
                out.append("%s (%s) overlaps %s (%s)" % (na, a, nb, b))
    return out


def cidr_private(value):
    """True when the range lies in RFC 1918 or RFC 6598 space (what GCP subnetworks take)."""
    if not cidr_valid(value):
        return False
    net = ipaddress.ip_network(value)
    private = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
    return any(net.subnet_of(ipaddress.ip_network(p)) for p in private)


def cidr_contains(outer, inner):
    """True when the network `outer` contains the address or network `inner`."""
    try:
        inner_net = ipaddress.ip_network(inner if "/" in inner else inner + "/32")
        return inner_net.subnet_of(ipaddress.ip_network(outer))
    except ValueError:
        return False


def uncovered_addresses(addresses, cidrs):
    """The addresses no valid CIDR of `cidrs` contains (an allow-list that would lock them out)."""
    nets = [c for c in cidrs or [] if cidr_valid(c)]
    return [a for a in addresses or [] if not any(cidr_contains(n, a) for n in nets)]


def host_cidrs(values):
    """Addresses as /32 (or /128) networks; CIDRs unchanged."""
    return [v if "/" in v else "%s/%d" % (v, 128 if ":" in v else 32) for v in values or []]


def described_items(cidrs, described, description, other_description, more=None):
    """Zero Trust list items: each CIDR once, described by whether it is in `described` (or in one of the lists of
    `more`, a mapping of description to CIDRs)."""
    groups = [(description, described or [])] + sorted((more or {}).items())
    seen, out = set(), []
    for cidr in cidrs or []:
        if cidr in seen:
            continue
        seen.add(cidr)
        text = next((text for text, members in groups if cidr in (members or [])), other_description)
        out.append({"value": cidr, "description": text})
    return out


# The cloudflare_access_policy rule for a group of each identity provider type (a generic OIDC provider has none).
_GROUP_RULE = {"okta": "okta", "azureAD": "azure_ad", "google-apps": "gsuite"}


def idp_group_rules(groups, providers):
    """cloudflare_access_policy include rules admitting the members of `groups` ({identity_provider, group,
    attribute}) of `providers` ({name, type}); a group of an unknown provider or of an OIDC one is an error."""
    kinds = dict((p.get("name"), p.get("type")) for p in providers or [])
    out = []
    for item in groups or []:
        name = item.get("identity_provider")
        kind = kinds.get(name)
        if kind == "saml":
            out.append({"saml": {"attribute": item.get("attribute") or "groups", "value": item.get("group")}})
        elif kind in _GROUP_RULE:
            out.append({_GROUP_RULE[kind]: {"identity_provider": name, "group": item.get("group")}})
        else:
            raise ValueError("group %s: identity provider %s %s" % (
                item.get("group"), name, "is oidc, which has no group rule" if kind else "is not configured"))
    return out


class FilterModule(object):
    def filters(self):
        return {
            "cidr_overlaps": cidr_overlaps,
            "cidr_contains": cidr_contains,
            "host_cidrs": host_cidrs,
            "uncovered_addresses": uncovered_addresses,
            "described_items": described_items,
            "idp_group_rules": idp_group_rules,
        }
