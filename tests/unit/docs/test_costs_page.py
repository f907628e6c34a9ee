"""The cost page is what scripts/costs.py computes from the dated price table and the inventories' sizing."""

import os
import re
import subprocess
import sys

from tests.unit.conftest import REPO


def test_cost_page_matches_the_script_and_totals_add_up():
    out = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "costs.py"), "inventories/dev",
                          "inventories/prod"], capture_output=True, text=True, cwd=REPO, check=True).stdout
    with open(os.path.join(REPO, "docs", "costs.md")) as fh:
        page = fh.read()
    assert out.strip() in page, "docs/costs.md is stale: regenerate it with python scripts/costs.py"
    for block in out.strip().split("\n\n### "):
        rows = re.findall(r"^\| (?!\*\*|item)(.+?) \| ([\d.]+) \|$", block, re.M)
        total = float(re.search(r"\*\*total\*\* \| \*\*([\d.]+)\*\*", block).group(1))
        assert rows and abs(sum(float(c) for _l, c in rows) - total) < 0.02
    prod = float(re.findall(r"\*\*total\*\* \| \*\*([\d.]+)\*\*", out)[1])
    dev = float(re.findall(r"\*\*total\*\* \| \*\*([\d.]+)\*\*", out)[0])
    assert prod > dev, "production sizing (HA Cloud SQL, bigger pods) must cost more than dev"


def test_the_ha_server_s_extra_pods_and_memorystore_are_counted_where_ha_is_on():
    out = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "costs.py"), "inventories/dev",
                          "inventories/prod"], capture_output=True, text=True, cwd=REPO, check=True).stdout
    dev, prod = out.strip().split("\n\n### ")
    assert "prefect-server pods x3 (2 API, 1 background services)" in prod and "Memorystore for Redis STANDARD_HA 1 GB" in prod
    assert "prefect-server pod 500m" in dev and "Memorystore" not in dev
