#!/usr/bin/env bash
# GoatCounter v2 (EUPL-1.2, Go + SQLite), the peer analytics server the side-by-side load
# benchmarks compare us with. None of its code is in this repository: it is fetched from the Go
# module proxy and built on this machine, once.
#
#   scripts/bench/goatcounter.sh install                     builds it once, prints the binary's path
#   scripts/bench/goatcounter.sh start DIR PORT [FLAG...]    fresh database in DIR, one site, serves
#                                                            plain HTTP on 127.0.0.1:PORT, prints its pid
#   scripts/bench/goatcounter.sh count DIR                   prints how many pageviews are stored in DIR
#
# Why not `go install zgo.at/goatcounter/v2/cmd/goatcounter@v2.7.0`: some module proxies refuse
# the version-list lookup `go install` makes, and the release's version string is set with
# -ldflags. So the module is fetched with `go mod download` (same proxy, same checksum database)
# into a throw-away module cache and built with `go build`. It needs cgo (SQLite), so a C
# compiler too; the first build takes about three minutes.
#
# start:
#   - DIR/gc.sqlite3 is deleted and created again, with one site for the host $VHOST
#     (stats.localhost) and one user. Send the benchmark's requests to 127.0.0.1:PORT with
#     "Host: stats.localhost" (a port in it is fine). Any other Host still counts for this one
#     site, but each such request then costs two extra database queries.
#   - The site is switched to storing every pageview as a row of `hits` ("collect" bit 256,
#     "individual pageviews" in its settings page). GoatCounter's default stores no rows there:
#     it only keeps hourly totals of first visits, one per session (User-Agent + IP) and path,
#     so repeated views would not show in any count.
#   - The /count rate limit is raised to 1,000,000 a second per IP + User-Agent (the default is
#     4 a second; it is lifted for requests whose address is 127.0.0.1, but not for addresses
#     taken from X-Forwarded-For or X-Real-Ip).
#   - FLAG... go to `goatcounter serve` as well, e.g. `-store-every 1`.
#   - A pageview: GET (or POST) /count?p=/path with a browser's User-Agent; every other
#     parameter (t title, r referrer, s screen, b=0, rnd) is optional. It answers 200 with a GIF
#     and "Connection: close", so clients open a new connection for every pageview.
#   - Its log is DIR/goatcounter.log.
#
# count: the rows of `hits`, i.e. the pageviews written to the database. Requests that answered
# 200 but are not there: bots (recognised by User-Agent, e.g. curl or an empty one, or b=150 and
# up; they go to the `bots` table), browser prefetches, the path /favicon.ico, and referrers on
# its spam list.
#
# Persistence: /count only appends the pageview to a list in memory; a background task writes
# that list to the database every -store-every seconds (default 10, counted from the end of the
# previous write). Before counting, either wait longer than that plus the write's own duration,
# or stop the server with ONE SIGTERM (or SIGINT) and wait until the process has exited: on
# shutdown it writes what is left. A second signal makes it exit at once without writing.
#   kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
set -euo pipefail

VERSION=v2.7.0
CACHE=${TALLY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tally}
BIN=$CACHE/goatcounter-$VERSION
VHOST=stats.localhost

install() {
  if [ -x "$BIN" ] && "$BIN" version >/dev/null 2>&1; then
    echo "$BIN"
    return
  fi
  command -v go >/dev/null || { echo "GoatCounter needs Go to build: install Go first" >&2; exit 1; }
  command -v "${CC:-cc}" >/dev/null || command -v gcc >/dev/null ||
    { echo "GoatCounter needs a C compiler for SQLite (cgo): install gcc first" >&2; exit 1; }
  echo "building GoatCounter $VERSION (once, takes a few minutes; cached in $CACHE)..." >&2
  mkdir -p "$CACHE"
  local tmp src
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064  # expand $tmp now: it is local
  trap "rm -rf '$tmp'" EXIT
  export GOPATH=$tmp/gopath GOMODCACHE=$tmp/gopath/pkg/mod GOFLAGS="-modcacherw -buildvcs=false"
  src=$(go mod download -json "zgo.at/goatcounter/v2@$VERSION" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  # The tags are the ones its own Dockerfile builds with.
  (cd "$src" && CGO_ENABLED=1 go build -trimpath \
    -tags osusergo,netgo,sqlite_omit_load_extension \
    -ldflags "-X zgo.at/goatcounter/v2.Version=$VERSION" \
    -o "$BIN.tmp" ./cmd/goatcounter) >&2
  mv "$BIN.tmp" "$BIN"
  "$BIN" version >/dev/null
  echo "$BIN"
}

# sql DB QUERY: runs one statement, prints the first column of each row.
sql() {
  if command -v sqlite3 >/dev/null; then
    sqlite3 -cmd ".timeout 10000" "$1" "$2"
  else
    python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=10)
for row in con.execute(sys.argv[2]):
    print(row[0])
con.commit()
EOF
  fi
}

# answers PORT: whether this GoatCounter version answers GET /status on 127.0.0.1:PORT (and not
# some other program that holds the port).
answers() (
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET /status HTTP/1.0\r\nHost: %s\r\n\r\n' "$VHOST" >&3
  [[ $(timeout 2 cat <&3) == *"\"version\":\"$VERSION\""* ]]
)

start() {
  local dir=$1 port=$2 bin db
  shift 2
  bin=$(install)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  db=$dir/gc.sqlite3
  rm -f "$db" "$db-wal" "$db-shm" "$db-journal"
  "$bin" db create site -createdb -db "sqlite+$db" -vhost "$VHOST" \
    -user.email bench@example.com -user.password bench-password >"$dir/goatcounter.log" 2>&1 || {
    echo "GoatCounter could not create its site:" >&2
    cat "$dir/goatcounter.log" >&2
    exit 1
  }
  sql "$db" "update sites set settings = json_set(settings, '\$.collect',
               json_extract(settings, '\$.collect') | 256)" >/dev/null
  # cd: it looks for GeoIP files in ./goatcounter-data; without any it uses its built-in one.
  (cd "$dir" && exec "$bin" serve -db "sqlite+$db" -listen "127.0.0.1:$port" -tls http \
    -automigrate -ratelimit count:1000000/1 "$@") >>"$dir/goatcounter.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do
    if answers "$port" 2>/dev/null; then
      echo "$pid"
      return
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "GoatCounter exited at start:" >&2
      cat "$dir/goatcounter.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "GoatCounter did not listen on port $port within 30 s" >&2
  kill "$pid" 2>/dev/null || true
  exit 1
}

count() {
  local db=$1/gc.sqlite3
  [ -f "$db" ] || { echo "no GoatCounter database at $db" >&2; exit 1; }
  sql "$db" "select count(*) from hits"
}

case "${1:-}" in
  install) install ;;
  start) [ $# -ge 3 ] || { echo "usage: $0 start DIR PORT [FLAG...]" >&2; exit 2; }; start "${@:2}" ;;
  count) [ $# -eq 2 ] || { echo "usage: $0 count DIR" >&2; exit 2; }; count "$2" ;;
  *) echo "usage: $0 install | start DIR PORT [FLAG...] | count DIR" >&2; exit 2 ;;
esac
