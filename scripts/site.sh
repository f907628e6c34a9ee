#!/usr/bin/env bash
# The main job: install everything, start the local sandbox if it is not up, and run the whole site
# against it, ending with a real smoke flow run, then print the Prefect URL, the NAT IP and what was created.
#   bash scripts/site.sh [extra ansible-playbook args, e.g. --check --diff or --tags cloudsql]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
# shellcheck disable=SC1091
source scripts/env.sh
python -m sandbox up
ansible-playbook site.yml -i inventories/sandbox "$@"
python -m sandbox summary
