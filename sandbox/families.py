"""The API families the sandbox serves, in port order (port_base + index)."""

from .cloudflare.app import CloudflareApp
from .gcp.app import GcpApp
from .kube.app import KubeApp
from .tfc.app import TfcApp

FAMILIES = [
    ("gcp", GcpApp),
    ("cloudflare", CloudflareApp),
    ("tfc", TfcApp),
    ("kube", KubeApp),
]
