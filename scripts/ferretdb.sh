#!/usr/bin/env bash
# FerretDB v1 (Apache-2.0), the MongoDB-protocol server the tests and benchmarks talk to.
#
#   scripts/ferretdb.sh install            builds it once, prints the binary's path
#   scripts/ferretdb.sh start DIR PORT     starts it on 127.0.0.1:PORT with data in DIR, prints its pid
#
# Why not plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: a binary built
# that way panics at start ("Invalid build/version/version.txt"), because that generated file is
# not in the module download, and some module proxies also refuse the version-list lookup
# `go install` makes. So the module source is fetched with `go mod download` (same proxy, same
# checksum database), the missing version file is written, and it is built with `go build`.
set -euo pipefail

VERSION=v1.24.2
CACHE=${TALLY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tally}
BIN=$CACHE/ferretdb-$VERSION

install() {
  if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
    echo "$BIN"
    return
  fi
  command -v go >/dev/null || { echo "FerretDB needs Go to build: install Go first" >&2; exit 1; }
  echo "building FerretDB $VERSION (once; cached in $CACHE)..." >&2
  mkdir -p "$CACHE"
  local src dir
  src=$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  dir=$(mktemp -d)
  cp -R "$src/." "$dir/"
  chmod -R u+w "$dir"
  echo "$VERSION" > "$dir/build/version/version.txt"
  (cd "$dir" && GOFLAGS=-buildvcs=false go build -trimpath -o "$BIN.tmp" ./cmd/ferretdb) >&2
  rm -rf "$dir"
  mv "$BIN.tmp" "$BIN"
  "$BIN" --version >/dev/null
  echo "$BIN"
}

start() {
  local dir=$1 port=$2 bin
  bin=$(install)
  mkdir -p "$dir"
  "$bin" --handler=sqlite --sqlite-url="file:$dir/" \
    --listen-addr="127.0.0.1:$port" --debug-addr=- \
    --telemetry=disable --state-dir="$dir" --log-level=warn >"$dir/ferretdb.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$pid"
      return
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "FerretDB exited at start:" >&2
      cat "$dir/ferretdb.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "FerretDB did not listen on port $port within 10 s" >&2
  kill "$pid" 2>/dev/null || true
  exit 1
}

case "${1:-}" in
  install) install ;;
  start) start "$2" "$3" ;;
  *) echo "usage: $0 install | start DIR PORT" >&2; exit 2 ;;
esac
