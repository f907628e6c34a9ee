#!/usr/bin/env python3
"""Monthly cost of an inventory's sizing from the dated list prices in docs/costs/prices.yml.

    python scripts/costs.py inventories/dev [inventories/prod ...]

Reads the sizing variables the roles use (Cloud SQL tier/availability/disk, Autopilot pod requests, NAT IPs) from the
inventory's group_vars/all/*.yml, falling back to the roles' defaults, and prints one Markdown table per inventory.
Usage-based items (Cloud Run flow runs, NAT data, Cloud SQL backups beyond the disk size) are listed at zero volume.
"""

import functools
import glob
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEM = {"Mi": 1 / 1024, "Gi": 1.0}


def load_vars(inventory):
    out = {}
    for path in sorted(glob.glob(os.path.join(ROOT, inventory, "group_vars", "all", "*.yml"))):
        with open(path) as fh:
            out.update(yaml.safe_load(fh) or {})
    return out


@functools.lru_cache(maxsize=None)
def _role_defaults(role):
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml")) as fh:
        return yaml.safe_load(fh) or {}


def role_default(role, name):
    return _role_defaults(role).get(name)


def cpu(value):
    value = str(value)
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def gib(value):
    m = re.match(r"^([\d.]+)(Mi|Gi)$", str(value))
    return float(m.group(1)) * MEM[m.group(2)] if m else float(value) / 2 ** 30


def estimate(v, prices):
    g, h = prices["gcp"], prices["hours_per_month"]
    lines = []
    tier = v.get("cloudsql_tier", role_default("cloudsql", "cloudsql_tier"))
    m = re.match(r"^db-custom-(\d+)-(\d+)$", tier)
    vcpus, mem = (int(m.group(1)), int(m.group(2)) / 1024) if m else (1, 3.75)
    ha = 2 if v.get("cloudsql_availability_type", "ZONAL") == "REGIONAL" else 1
    disk = int(v.get("cloudsql_disk_size_gb", 10))
    lines.append(("Cloud SQL %s%s, %d vCPU / %.2f GiB" % (tier, " (HA)" if ha == 2 else "", vcpus, mem),
                  ha * h * (vcpus * g["cloudsql_vcpu_hour"] + mem * g["cloudsql_gib_hour"])))
    lines.append(("Cloud SQL SSD %d GiB" % disk, ha * disk * g["cloudsql_ssd_gib_month"]))
    lines.append(("Cloud SQL backups (about the disk size)", disk * g["cloudsql_backup_gib_month"]))
    lines.append(("GKE Autopilot cluster fee (one free per billing account)", h * g["autopilot_cluster_hour"]))
    ha_server = bool(v.get("prefect_server_ha", role_default("prefect_server", "prefect_server_ha")))
    for role, label in (("prefect_server", "prefect-server pod"), ("prefect_worker", "prefect-worker pod")):
        req = (v.get("%s_resources" % role) or role_default(role, "%s_resources" % role))["requests"]
        pods, what = 1, ""
        if role == "prefect_server" and ha_server:
            # HA: the API replicas and the background services' own pods, each with the server's requests.
            api = int(v.get("prefect_server_replicas", role_default(role, "prefect_server_replicas")))
            services = int(v.get("prefect_server_services_replicas", role_default(role, "prefect_server_services_replicas")))
            pods, what = api + services, "s x%d (%d API, %d background services)," % (api + services, api, services)
        lines.append(("%s%s %s vCPU / %s" % (label, what, req["cpu"], req["memory"]),
                      pods * h * (cpu(req["cpu"]) * g["autopilot_vcpu_hour"] + gib(req["memory"]) * g["autopilot_gib_hour"])))
    if ha_server:
        tier = v.get("prefect_server_redis_tier", role_default("prefect_server", "prefect_server_redis_tier"))
        size = int(v.get("prefect_server_redis_memory_gb", role_default("prefect_server", "prefect_server_redis_memory_gb")))
        lines.append(("Memorystore for Redis %s %d GB (HA server's messaging)" % (tier, size),
                      size * h * g["memorystore_%s_gb_hour" % tier.lower()]))
    nat_ips = v.get("cloudrun_nat_ip_names") or role_default("cloudrun_nat", "cloudrun_nat_ip_names") or [1]
    lines.append(("Cloud NAT egress IPs x%d" % len(nat_ips), len(nat_ips) * h * g["static_ip_hour"]))
    lines.append(("Cloud NAT gateway (tfc-agent VM)", h * g["nat_gateway_vm_hour"]))
    lines.append(("Ingress global IP + forwarding rule", h * (g["static_ip_hour"] + g["lb_forwarding_rule_hour"])))
    lines.append(("tfc-agent VM e2-micro + 10 GiB disk", h * g["e2_micro_hour"] + 10 * g["pd_balanced_gib_month"]))
    secrets = 6 if ha_server else 5  # HA keeps the Redis AUTH string too
    lines.append(("Secret Manager (%d secrets)" % secrets, secrets * g["secret_version_month"]))
    lines.append(("Cloudflare Zero Trust (free plan)", 0.0))
    lines.append(("Cloud Run flow runs, NAT data (usage-based)", 0.0))
    return lines


def table(name, lines, prices):
    out = ["### %s (%s, %s list prices as of %s)" % (name, prices["region"], prices["currency"], prices["as_of"]), "",
           "| item | per month |", "|---|---:|"]
    out += ["| %s | %.2f |" % (label, cost) for label, cost in lines]
    out.append("| **total** | **%.2f** |" % sum(c for _l, c in lines))
    return "\n".join(out)


def main(argv):
    with open(os.path.join(ROOT, "docs", "costs", "prices.yml")) as fh:
        prices = yaml.safe_load(fh)
    for inventory in argv or ["inventories/dev", "inventories/prod"]:
        print(table(inventory, estimate(load_vars(inventory), prices), prices))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
