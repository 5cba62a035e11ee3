#!/usr/bin/env bash
# pg_ctl for pytest-postgresql. PostgreSQL refuses to run as root, so when the tests run as
# root this hands the server's directories to an unprivileged user (PG_TEST_USER, default
# "postgres") and runs pg_ctl as that user. Otherwise it is plain pg_ctl.
set -euo pipefail
bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$bindir" ] || bindir=$(dirname "$(command -v pg_ctl)")
if [ "$(id -u)" != 0 ]; then
    exec "$bindir/pg_ctl" "$@"
fi
user=${PG_TEST_USER:-postgres}
# The data directory and log file live in a directory pytest-postgresql made for this
# server alone: give it to the user and let the user pass through its (root-owned) parents.
prev=""
for arg in "$@"; do
    case "$prev" in
        -D|--pgdata|-l|--log)
            dir=$(dirname "$arg")
            if [ -d "$dir" ] && [ "$(stat -c %U "$dir")" != "$user" ]; then
                chown "$user" "$dir"
                up=$(dirname "$dir")
                while [ "$up" != / ]; do chmod o+x "$up"; up=$(dirname "$up"); done
            fi
            ;;
    esac
    prev=$arg
done
exec runuser -u "$user" -- "$bindir/pg_ctl" "$@"
