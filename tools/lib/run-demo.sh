#!/usr/bin/env bash
# Started by tools/run once build/bin/fieldsyncd exists: creates a small demo district in
# data/demo (first time only), adds demo logins and an enrolment code, and runs fieldsyncd on
# https://127.0.0.1:8443 in the foreground (Ctrl-C stops it gracefully).
#   FIELDSYNC_DEMO_DIR  the data folder (default data/demo)
#   FIELDSYNC_LISTEN    the address (default 127.0.0.1:8443)
#   FIELDSYNC_BIN_DIR   the binaries (default build/bin)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${FIELDSYNC_BIN_DIR:-$root/build/bin}
data=${FIELDSYNC_DEMO_DIR:-$root/data/demo}
listen=${FIELDSYNC_LISTEN:-127.0.0.1:8443}
url="https://$listen"
fs() { "$bin/fieldsync" "$@"; }

if [ ! -f "$data/fieldsync.db" ]; then
    if { fs help 2>&1 || true; } | grep -q '^  demo '; then
        echo "== creating the demo district in $data (fieldsync demo)"
        fs demo --data "$data"
    else
        echo "== creating a minimal district in $data"
        fs init --data "$data"
        fs divisions add --data "$data" --code 500101 --name "示范区" >/dev/null
        fs divisions add --data "$data" --code 500101001 --name "示范镇" >/dev/null
        fs divisions add --data "$data" --code 500101001001 --name "示范村" >/dev/null
    fi
fi

db="$data/fieldsync.db"
township=$(sqlite3 "$db" "SELECT code FROM divisions WHERE level = 9 ORDER BY code LIMIT 1")
township_name=$(sqlite3 "$db" "SELECT name FROM divisions WHERE code = '$township'")
add_user() { # username role password [township]
    # The list is read whole first: `fs users list | grep -q` let grep quit at the first match,
    # and the SIGPIPE of the list's next write failed the pipeline (pipefail) now and then.
    local users
    users=$(fs users list --data "$data")
    if ! grep -q "^$1 " <<<"$users"; then
        local scope=()
        [ -n "${4:-}" ] && scope=(--township "$4")
        printf '%s\n' "$3" | fs users add --data "$data" --username "$1" --role "$2" \
            "${scope[@]}" --password-stdin >/dev/null
    fi
}
add_user admin district_admin demo-admin-2026
add_user head township_head demo-head-2026 "$township"
add_user worker field_worker demo-worker-2026 "$township"

# A test build without record types of its own still serves the test collection.
collections=()
if [ -z "$(fs collections)" ]; then
    collections=(--collections "$root/tests/data/test_collections.json")
fi

code=$(fs tablets code --data "$data" --username worker --ttl-minutes 60 --no-qr |
    sed -n 's/^enrolment code for worker: //p')

cat <<EOT

== fieldsync demo district: $db
Web page for township heads and district admins: $url/
  (the certificate is self-signed: accept it in the browser, or compare its SHA-256
   fingerprint with the one fieldsyncd prints below)
Logins (for the web page; tablets use enrolment codes):
  admin   district_admin                        password demo-admin-2026
  head    township_head of $township $township_name  password demo-head-2026
  worker  field_worker  of $township $township_name  password demo-worker-2026

Try, in another terminal (the certificate is generated in $data on first start):
  curl --cacert $data/dev-cert.pem $url/v1/healthz
  curl --cacert $data/dev-cert.pem $url/v1/enrol -H 'Content-Type: application/json' \\
       -d '{"code":"$code","label":"my tablet"}'          # one-time code for worker, 60 min
  curl --cacert $data/dev-cert.pem $url/v1/sync/pull -H 'Content-Type: application/json' \\
       -H 'Authorization: Bearer <token from enrol>' -d '{"cursor":null,"limit":5}'
  curl --cacert $data/dev-cert.pem $url/metrics
Administration (works while the server runs):
  build/bin/fieldsync tablets code --data $data --username worker     # with a QR code
  build/bin/fieldsync tablets list --data $data
  build/bin/fieldsync users list --data $data
  build/bin/fieldsync backup --data $data --out /tmp/district-backup.db
Protocol: docs/protocol.md

EOT
exec "$bin/fieldsyncd" --data "$data" --listen "$listen" "${collections[@]}"
