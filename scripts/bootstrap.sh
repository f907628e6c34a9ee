#!/usr/bin/env bash
# Installs everything the collection, its tests and the sandbox need, from this repo's files only.
# Idempotent: a second call with unchanged requirements does nothing but checks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${SKYFORGE_PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV="$ROOT/.venv"
STAMP="$VENV/.skyforge-stamp"
want="$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" ]] || [[ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]]; then
  echo "bootstrap: creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade "pip<26" >/dev/null
  "$VENV/bin/python" -m pip install -q -r requirements-dev.txt -c constraints.txt 2>&1 | grep -v "^WARNING: Location" || true; "$VENV/bin/python" -m pip check >/dev/null || { "$VENV/bin/python" -m pip check; exit 1; }
  echo "$want" > "$STAMP"
fi

# The sandbox's helm is real Helm (v4, through helm-sdkpy's Go library). The wheel declares Python >= 3.12 but
# loads and runs on 3.11; its only dependencies (cffi, pycparser) come pinned from requirements-dev.txt.
HELM_SDKPY="$(grep -E '^helm-sdkpy==' constraints.txt | cut -d= -f3)"
if [[ "$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("helm-sdkpy"))' 2>/dev/null)" != "$HELM_SDKPY" ]]; then
  echo "bootstrap: installing helm-sdkpy $HELM_SDKPY"
  "$VENV/bin/python" -m pip install -q --no-deps --ignore-requires-python "helm-sdkpy==$HELM_SDKPY" 2>&1 | grep -v "^WARNING: Location" || true
fi

# PostgreSQL backs the sandbox's Cloud SQL instances: take the machine's binaries or Debian's package.
if ! "$VENV/bin/python" -c 'import sys; sys.path.insert(0, "."); from sandbox.postgres import find_pg_bin; find_pg_bin()' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "bootstrap: installing PostgreSQL (Debian package)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "bootstrap: PostgreSQL server binaries not found; install the 'postgresql' package (see bindep.txt)" >&2
    exit 1
  fi
fi

# redis-server backs the sandbox's Memorystore instances (one process each).
if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "bootstrap: installing redis-server (Debian package)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "bootstrap: redis-server not found; install the 'redis-server' package (see bindep.txt)" >&2
    exit 1
  fi
fi

# ansible-test --venv downloads get-pip.py, which cannot be reached here: serve it from ensurepip.
mkdir -p "$HOME/.ansible/test/cache"
cat > "$HOME/.ansible/test/cache/get_pip_24_2.py" <<'PYEOF'
"""Stand-in for get-pip.py: bootstrap pip with ensurepip, then pip-install the arguments."""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PYEOF

# Ansible finds this collection (and the ones shipped in the `ansible` package) through this path.
mkdir -p "$ROOT/.cache/collections/ansible_collections/skyforge"
ln -sfn "$ROOT" "$ROOT/.cache/collections/ansible_collections/skyforge/prefect_platform"
