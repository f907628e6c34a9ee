"""What the Cloudflare modules share: the published ranges, token permissions, the envelope's pieces.

A module of its own so that app.py (routing, auth, validation) and the resource modules (zones, dns, access,
lists) import it rather than each other.
"""

from __future__ import annotations

import time

from ..web import ApiError

# The ranges https://www.cloudflare.com/ips publishes (GET /ips answers them; origins allow only these).
CLOUDFLARE_IPV4 = [
    "173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22", "141.101.64.0/18", "108.162.192.0/18",
    "190.93.240.0/20", "188.114.96.0/20", "197.234.240.0/22", "198.41.128.0/17", "162.158.0.0/15", "104.16.0.0/13",
    "104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22",
]
CLOUDFLARE_IPV6 = [
    "2400:cb00::/32", "2606:4700::/32", "2803:f800::/32", "2405:b500::/32", "2405:8100::/32", "2a06:98c0::/29",
    "2c0f:f248::/32",
]

# Token permissions, named as the dashboard names them (the module's 403 message names the missing one).
PERM_ZONE_READ = "Zone Read"
PERM_DNS = "DNS"
PERM_ACCESS_APPS = "Access: Apps and Policies"
PERM_SERVICE_TOKENS = "Access: Service Tokens"
PERM_ZT = "Zero Trust"
PERM_ACCESS_IDP = "Access: Organizations, Identity Providers, and Groups"

# The error code of a refused request body or query, per area of the API.
VALIDATION_CODE = {"dns": 9207, "access": 12130, "gateway": 2001, "zones": 1001, "ips": 1001}


def now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def cf_error(status, code, message, headers=None):
    return ApiError(status, message, headers=headers, cf_code=code)


class Page:
    """A collection result with its page info."""

    def __init__(self, items, page=1, per_page=None, total=None):
        self.items = items
        self.page = page
        self.per_page = per_page if per_page is not None else max(len(items), 1)
        self.total = len(items) if total is None else total
