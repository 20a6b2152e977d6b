#!/usr/bin/env bash
# Shopify's toxiproxy (MIT), a TCP proxy that injects network faults (latency, resets, stalls,
# slow links) between tally and FerretDB in tests/faults.rs.
#
#   scripts/toxiproxy.sh install           builds its server once, prints the binary's path
#
# Built from its Go module with `go install` (the Go module proxy and checksum database), at a
# pinned version, into the same cache as FerretDB. The version is stamped into the binary so
# `--version` names it (a plain `go install` says "git").
set -euo pipefail

VERSION=v2.12.0
MODULE=github.com/Shopify/toxiproxy/v2
CACHE=${TALLY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tally}
BIN=$CACHE/toxiproxy-$VERSION

install() {
  if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "$BIN"
    return
  fi
  command -v go >/dev/null || { echo "toxiproxy needs Go to build: install Go first" >&2; exit 1; }
  echo "building toxiproxy $VERSION (once; cached in $CACHE)..." >&2
  mkdir -p "$CACHE"
  local gobin
  gobin=$(mktemp -d)
  GOBIN=$gobin GOFLAGS=-buildvcs=false go install -trimpath \
    -ldflags "-X $MODULE.Version=$VERSION" "$MODULE/cmd/server@$VERSION" >&2
  mv "$gobin/server" "$BIN"
  rm -rf "$gobin"
  "$BIN" --version | grep -q "$VERSION"
  echo "$BIN"
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
