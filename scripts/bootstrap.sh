#!/usr/bin/env bash
# Shared set-up for scripts/demo and scripts/test: a virtualenv in .venv with the package
# and the given extras installed. Usage: source scripts/bootstrap.sh EXTRAS
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${ALEMBIC_VERSIONING_VENV:-$root/.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[$1]"
PYTHON=$venv/bin/python
