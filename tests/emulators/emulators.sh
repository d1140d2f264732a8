#!/usr/bin/env bash
# Local object-store emulators for HubDr's store tests.
#   emulators.sh start <workdir>   start S3 (s3rver, :54569) and Azurite blob (:54570)
#                                  on 127.0.0.1 with data under <workdir>, wait until both answer, write
#                                  <workdir>/emulators.env and pid files. Calling start twice is harmless.
#   emulators.sh stop <workdir>    stop both and remove <workdir>. Calling stop twice is harmless.
# Ports can be moved with HUBDR_EMU_S3_PORT / HUBDR_EMU_AZURE_PORT.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmd="${1:-}"
work="${2:-}"
if [[ -z "$cmd" || -z "$work" ]]; then
  echo "usage: $0 start|stop <workdir>" >&2
  exit 2
fi
s3_port="${HUBDR_EMU_S3_PORT:-54569}"
az_port="${HUBDR_EMU_AZURE_PORT:-54570}"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_http() { # url name logfile
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null --max-time 2 "$1"; then return 0; fi
    sleep 0.2
  done
  echo "emulators: $2 did not answer on $1 within 30 s; its log:" >&2
  tail -n 30 "$3" >&2 || true
  return 1
}

stop_one() { # pidfile
  local pf="$1"
  if alive "$pf"; then
    local pid; pid="$(cat "$pf")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
}

case "$cmd" in
  start)
    mkdir -p "$work"
    work="$(cd "$work" && pwd)"
    if [[ ! -d "$here/node_modules/s3rver" || ! -d "$here/node_modules/azurite" ]]; then
      echo "emulators: $here/node_modules is missing; 'build.ps1 Test' installs it (npm ci, tools/prerequisites.psd1)" >&2
      exit 1
    fi
    mkdir -p "$work/s3-data" "$work/azurite-data"
    if ! alive "$work/s3.pid"; then
      # s3rver signs ListObjectsV2 continuation tokens with DES: needs the OpenSSL legacy provider on Node 17+.
      nohup node --openssl-legacy-provider "$here/s3-server.js" --directory "$work/s3-data" --address 127.0.0.1 --port "$s3_port" \
        >"$work/s3.log" 2>&1 </dev/null &
      echo $! >"$work/s3.pid"
    fi
    if ! alive "$work/azurite.pid"; then
      nohup node "$here/node_modules/azurite/dist/src/blob/main.js" --blobHost 127.0.0.1 --blobPort "$az_port" \
        --location "$work/azurite-data" --silent --skipApiVersionCheck --loose --disableProductStyleUrl \
        >"$work/azurite.log" 2>&1 </dev/null &
      echo $! >"$work/azurite.pid"
    fi
    wait_http "http://127.0.0.1:$s3_port/" "S3 emulator" "$work/s3.log"
    wait_http "http://127.0.0.1:$az_port/devstoreaccount1?comp=list" "Azurite" "$work/azurite.log"
    # Well-known public development credentials of s3rver and Azurite (not secrets).
    az_key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    # Values are single-quoted: the connection string contains ';' (the file is meant for `set -a; . file`).
    cat >"$work/emulators.env" <<ENV
HUBDR_TEST_S3_ENDPOINT='http://127.0.0.1:$s3_port'
HUBDR_TEST_S3_ACCESS_KEY='S3RVER'
HUBDR_TEST_S3_SECRET_KEY='S3RVER'
HUBDR_TEST_AZURE_BLOB_ENDPOINT='http://127.0.0.1:$az_port/devstoreaccount1'
HUBDR_TEST_AZURE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$az_key;BlobEndpoint=http://127.0.0.1:$az_port/devstoreaccount1;'
HUBDR_TEST_EMULATOR_DIR='$work'
HUBDR_TEST_EMULATOR_SCRIPT='$here/emulators.sh'
ENV
    echo "emulators: S3 on 127.0.0.1:$s3_port, Azurite blob on 127.0.0.1:$az_port; env in $work/emulators.env"
    ;;
  stop)
    if [[ -d "$work" ]]; then
      stop_one "$work/s3.pid"
      stop_one "$work/azurite.pid"
      rm -rf "$work"
    fi
    echo "emulators: stopped"
    ;;
  *)
    echo "usage: $0 start|stop <workdir>" >&2
    exit 2
    ;;
esac
