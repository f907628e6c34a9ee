#!/usr/bin/env bash
# HCP Terraform agent VM (Container-Optimized OS), run at every boot by the metadata script runner.
# It installs /run/tfc-agent/agent.sh as a systemd service that systemd restarts whenever the agent exits. Each start
# reads the agent token from Secret Manager as this VM's own service account (metadata server token + REST), so a
# rotated token (the old one is revoked, the agent exits) is picked up by the next start. The token is never in
# metadata, in this script or on disk: it lives only in the environment of the docker client and the container.
set -euo pipefail

install -d -m 0700 /run/tfc-agent
cat > /run/tfc-agent/agent.sh <<'AGENT'
#!/usr/bin/env bash
set -euo pipefail
MD=http://metadata.google.internal/computeMetadata/v1
md() { curl -sSf --retry 10 --retry-connrefused -H 'Metadata-Flavor: Google' "${MD}/$1"; }
project="$(md project/project-id)"
secret="$(md instance/attributes/tfc-agent-token-secret)"
image="$(md instance/attributes/tfc-agent-image)"
TFC_AGENT_NAME="$(md instance/attributes/tfc-agent-name)"
TFC_ADDRESS="$(md instance/attributes/tfc-agent-address)"
access="$(md instance/service-accounts/default/token | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')"
data="$(curl -sSf --retry 10 -H "Authorization: Bearer ${access}" \
  "https://secretmanager.googleapis.com/v1/projects/${project}/secrets/${secret}/versions/latest:access" \
  | sed -n 's/.*"data" *: *"\([^"]*\)".*/\1/p')"
if [ -z "${data}" ]; then
  echo "tfc-agent: secret ${secret} has no readable version (roles/secretmanager.secretAccessor?)" >&2
  exit 1
fi
TFC_AGENT_TOKEN="$(printf '%s' "${data}" | base64 -d)"
export TFC_AGENT_TOKEN TFC_AGENT_NAME TFC_ADDRESS
docker rm -f tfc-agent >/dev/null 2>&1 || true
exec docker run --rm --name tfc-agent -e TFC_AGENT_TOKEN -e TFC_AGENT_NAME -e TFC_ADDRESS "${image}"
AGENT
chmod 0700 /run/tfc-agent/agent.sh

systemctl stop tfc-agent.service >/dev/null 2>&1 || true
systemctl reset-failed tfc-agent.service >/dev/null 2>&1 || true
systemd-run --unit=tfc-agent --description="HCP Terraform agent" \
  --property=Restart=always --property=RestartSec=15 /bin/bash /run/tfc-agent/agent.sh
