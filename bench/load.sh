#!/usr/bin/env bash
# Load test of the reference server with wrk, on loopback only, bounded in
# time: GET /v1/bookings with an API key and with an OAuth token, on SQLite
# (and on PostgreSQL + Redis when PG_URL and REDIS_URL are set), beside a
# bare Go server returning the same body and that server behind Gatehouse's
# middleware alone (bench/gated). Prints requests/s, p50/p99
# latency, non-2xx responses and the server's peak RSS.
#
#   bench/load.sh                         # SQLite only
#   ONLY_MIDDLEWARE=1 ROUNDS=5 bench/load.sh   # the middleware rounds alone
#   PG_URL=postgres://postgres@127.0.0.1/test REDIS_URL=redis://127.0.0.1:6379/0 bench/load.sh
#   PIN=1 ONLY_MIDDLEWARE=1 bench/load.sh     # wrk on CPU 0, each server on CPU 1
#
# Beside requests/s, each line gives the server's own CPU time per request
# (user + system, from /proc/PID/stat over the run): what the server spends,
# apart from what wrk spends on the same cores parsing a longer response.
# With PIN=1, wrk (one thread) runs on CPU 0 and every server on CPU 1 with
# GOMAXPROCS=1, so a server's requests/s is what one core of its own gives
# it, as when clients are on other machines.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10s}" CONNS="${CONNS:-32}" THREADS="${THREADS:-2}" ROUNDS="${ROUNDS:-3}"
SRV=() WRK=(wrk)
if [ -n "${PIN:-}" ]; then
  command -v taskset >/dev/null || { echo "PIN=1 needs taskset (util-linux)"; exit 1; }
  SRV=(taskset -c 1 env GOMAXPROCS=1) WRK=(taskset -c 0 wrk) THREADS=1
fi
command -v wrk >/dev/null || { echo "load.sh needs wrk (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/server" ./examples/server
(cd bench && go build -o "$work/bare" ./bare && go build -o "$work/gated" ./gated)

peak_rss() { awk '/VmHWM/ {print $2 " kB"}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks

run_wrk() { # name server-pid url header...
  local name=$1 pid=$2 url=$3; shift 3
  local out before after
  before=$(cpu_ticks "$pid")
  out=$("${WRK[@]}" -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url")
  after=$(cpu_ticks "$pid")
  local rps p50 p99 non2xx reqs cpu
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(awk -v t=$((after - before)) -v n="${reqs:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else printf "n/a" }')
  printf '%-44s %10s req/s   p50 %-8s p99 %-8s non-2xx %-4s server CPU %s µs/req\n' "$name" "$rps" "$p50" "$p99" "$non2xx" "$cpu"
}

serve() { # db [extra flags]: starts the server, sets PID, BASE, KEY, DEMOKEY, TOKEN
  local db=$1; shift
  "${SRV[@]}" "$work/server" -addr 127.0.0.1:0 -db "$db" "$@" >"$work/out" 2>"$work/err" &
  PID=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
  BASE=$(awk '/listening on/ {print $NF}' "$work/out")
  # OAuth tokens are limited by their organisation's plan: a custom plan
  # large enough that the load test measures the API, not 429s. KEY and
  # TOKEN read the same (empty) page of that organisation, so their rows
  # differ only by the credential; DEMOKEY reads the demo organisation's
  # sandbox bookings, a page with rows.
  "$work/server" admin org create -db "$db" --prefix load --name Load --plan "1000000000/h,100000000/m" >/dev/null
  KEY=$("$work/server" admin key create -db "$db" --org load --name load --scopes "bookings:read" --env live --rate-limit "1000000000/h,100000000/m" | sed -E 's/.*"key":"([^"]+)".*/\1/')
  DEMOKEY=$("$work/server" admin key create -db "$db" --org demo --name load --scopes "bookings:read" --env test --rate-limit "1000000000/h,100000000/m" | sed -E 's/.*"key":"([^"]+)".*/\1/')
  "$work/server" admin user create -db "$db" --org load --email load@example.com --password "load-test-password" >/dev/null
  local client cid csec
  client=$("$work/server" admin client create -db "$db" --org load --name load --grants password --scopes "bookings:read")
  cid=$(sed -E 's/.*"client_id":"([^"]+)".*/\1/' <<<"$client"); csec=$(sed -E 's/.*"client_secret":"([^"]+)".*/\1/' <<<"$client")
  TOKEN=$(curl -s -d "grant_type=password&domain_prefix=load&client_id=$cid&client_secret=$csec&username=load%40example.com&password=load-test-password" "$BASE/oauth/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION, $(nproc) cores${PIN:+, wrk pinned to CPU 0 and servers to CPU 1}, $(date -u +%Y-%m-%dT%H:%MZ)"
# The bare server, the bare server with the same headers, and the same body
# behind Gatehouse's middleware alone (memory store and limiter), started
# once and measured round-robin for ROUNDS rounds, so that the machine's
# drift hits all three alike; the means and ratios close the section.
"${SRV[@]}" "$work/bare" -addr 127.0.0.1:18090 & BARE=$!
"${SRV[@]}" "$work/bare" -addr 127.0.0.1:18092 -headers & BAREH=$!
"${SRV[@]}" "$work/bare" -addr 127.0.0.1:18093 -seed-headers & BARES=$!
"${SRV[@]}" "$work/gated" -addr 127.0.0.1:18091 >"$work/gated.out" & GATED=$!
for _ in $(seq 1 50); do grep -q '^key ' "$work/gated.out" 2>/dev/null && break; sleep 0.1; done
GKEY=$(awk '/^key / {print $2}' "$work/gated.out")
sleep 0.5
: >"$work/rounds"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round"
  run_wrk "bare net/http" $BARE "http://127.0.0.1:18090/v1/bookings" | tee -a "$work/rounds"
  run_wrk "bare net/http + seed headers" $BARES "http://127.0.0.1:18093/v1/bookings" | tee -a "$work/rounds"
  run_wrk "bare net/http + the same headers" $BAREH "http://127.0.0.1:18092/v1/bookings" | tee -a "$work/rounds"
  run_wrk "gatehouse middleware only" $GATED "http://127.0.0.1:18091/v1/bookings" -H "Authorization: Bearer $GKEY" | tee -a "$work/rounds"
done
awk '{ n = $0; sub(/ +[0-9.]+ req\/s.*/, "", n); for (i = 1; i <= NF; i++) { if ($(i+1) == "req/s") { sum[n] += $i; cnt[n]++ } if ($(i+1) == "µs/req") cpu[n] += $i } }
  END {
    b = sum["bare net/http"] / cnt["bare net/http"]; h = sum["bare net/http + the same headers"] / cnt["bare net/http + the same headers"]
    s = sum["bare net/http + seed headers"] / cnt["bare net/http + seed headers"]
    g = sum["gatehouse middleware only"] / cnt["gatehouse middleware only"]
    printf "mean of %d rounds: bare %.0f, bare + seed headers %.0f (%.1f %%), bare + headers %.0f (%.1f %%), middleware only %.0f req/s; middleware / bare %.1f %%, middleware / bare + headers %.1f %%\n", cnt["bare net/http"], b, s, 100 * s / b, h, 100 * h / b, g, 100 * g / b, 100 * g / h
    printf "server CPU per request, mean: bare %.2f, bare + seed headers %.2f, bare + headers %.2f, middleware only %.2f µs (%.2f µs above bare)\n", cpu["bare net/http"] / cnt["bare net/http"], cpu["bare net/http + seed headers"] / cnt["bare net/http + seed headers"], cpu["bare net/http + the same headers"] / cnt["bare net/http + the same headers"], cpu["gatehouse middleware only"] / cnt["gatehouse middleware only"], (cpu["gatehouse middleware only"] - cpu["bare net/http"]) / cnt["bare net/http"]
  }' "$work/rounds"
echo "  peak RSS bare: $(peak_rss $BARE), bare + seed headers: $(peak_rss $BARES), bare + headers: $(peak_rss $BAREH), middleware only: $(peak_rss $GATED)"
kill $BARE $BARES $BAREH $GATED
[ -n "${ONLY_MIDDLEWARE:-}" ] && exit 0

serve "sqlite:$work/gatehouse.db"
run_wrk "gatehouse sqlite, API key, demo page" $PID "$BASE/v1/bookings" -H "Authorization: Bearer $DEMOKEY"
run_wrk "gatehouse sqlite, API key" $PID "$BASE/v1/bookings" -H "Authorization: Bearer $KEY"
[ -n "$TOKEN" ] && run_wrk "gatehouse sqlite, OAuth token" $PID "$BASE/v1/bookings" -H "Authorization: Bearer $TOKEN"
echo "  peak RSS gatehouse (sqlite): $(peak_rss $PID)"
kill $PID; wait $PID 2>/dev/null || true

if [ -n "${PG_URL:-}" ] && [ -n "${REDIS_URL:-}" ]; then
  schema="load_$$"
  psql "$PG_URL" -qc "CREATE SCHEMA $schema" >/dev/null
  trap 'kill $(jobs -p) 2>/dev/null || true; psql "$PG_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1; rm -rf "$work"' EXIT
  sep='?'; case "$PG_URL" in *\?*) sep='&';; esac
  serve "${PG_URL}${sep}search_path=$schema" -redis "$REDIS_URL"
  run_wrk "gatehouse postgres+redis, API key, demo page" $PID "$BASE/v1/bookings" -H "Authorization: Bearer $DEMOKEY"
  run_wrk "gatehouse postgres+redis, API key" $PID "$BASE/v1/bookings" -H "Authorization: Bearer $KEY"
  [ -n "$TOKEN" ] && run_wrk "gatehouse postgres+redis, OAuth" $PID "$BASE/v1/bookings" -H "Authorization: Bearer $TOKEN"
  echo "  peak RSS gatehouse (postgres+redis): $(peak_rss $PID)"
  kill $PID; wait $PID 2>/dev/null || true
fi
