# Sourced by the scripts: the venv, and where Ansible finds this collection and the bundled ones.
SKYFORGE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$SKYFORGE_ROOT/.venv/bin/activate"
ANSIBLE_BUNDLED="$(python -c 'import ansible_collections, os; print(os.path.dirname(list(ansible_collections.__path__)[0]))')"
export ANSIBLE_COLLECTIONS_PATH="$SKYFORGE_ROOT/.cache/collections:$ANSIBLE_BUNDLED"
export ANSIBLE_ROLES_PATH="$SKYFORGE_ROOT/roles"
export SKYFORGE_SPECS_DIR="${SKYFORGE_SPECS_DIR:-$(cd "$SKYFORGE_ROOT/.." && pwd)/shared/specs}"
export PATH="$SKYFORGE_ROOT/sandbox/helm/bin:$PATH"
export ANSIBLE_FORCE_COLOR=0
export SKYFORGE_SANDBOX_DIR="${SKYFORGE_SANDBOX_DIR:-$SKYFORGE_ROOT/.sandbox}"
