#!/usr/bin/env bash
# Soak test: the reference server on PostgreSQL + Redis under wrk for
# DURATION (default 10 minutes), loopback only, bounded in time. Every 10 s
# it samples the server's RSS and goroutines from /metrics. It fails when
# any response is a 5xx or a transport error, when RSS in the last third of
# the run is more than 15 % above the middle third (a growth trend once warm),
# or when the goroutines' mean grows by more than 20 between those thirds.
#
#   bench/soak.sh                      # 10 minutes
#   DURATION=60 bench/soak.sh          # seconds
#   PG_URL=postgres://… REDIS_URL=redis://… bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-600}" CONNS="${CONNS:-32}" THREADS="${THREADS:-2}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"
command -v wrk >/dev/null || { echo "soak.sh needs wrk (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
schema="soak_$$"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql "$PG_URL" -qc "CREATE SCHEMA $schema"
sep='?'; [[ "$PG_URL" == *\?* ]] && sep='&'
DB="${PG_URL}${sep}search_path=${schema}"
go build -o "$work/server" ./examples/server

"$work/server" -addr 127.0.0.1:0 -metrics-addr 127.0.0.1:0 -db "$DB" -redis "$REDIS_URL" >"$work/out" 2>"$work/err" &
PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
BASE=$(awk '/listening on/ {print $NF}' "$work/out")
METRICS=$(awk '/^metrics on/ {print $NF}' "$work/out")
KEY=$("$work/server" admin key create -db "$DB" --org demo --name soak --scopes "customers:read customers:write bookings:read" --env test \
  --rate-limit "1000000000/h,100000000/m" | sed -E 's/.*"key":"([^"]+)".*/\1/')

# 49 % GET /v1/bookings, 49 % GET /v1/customers?per_page=5, 2 % POST
# /v1/customers; counts 5xx responses itself (wrk reports only non-2xx).
cat >"$work/mix.lua" <<LUA
local n = 0
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function() fivexx = 0 end
request = function()
  n = n + 1
  local h = { ["Authorization"] = "Bearer $KEY" }
  if n % 50 == 0 then
    h["Content-Type"] = "application/json"
    return wrk.format("POST", "/v1/customers", h, '{"first_name":"Soak","last_name":"Test","email":"soak@example.com"}')
  elseif n % 2 == 0 then
    return wrk.format("GET", "/v1/customers?per_page=5", h)
  end
  return wrk.format("GET", "/v1/bookings", h)
end
response = function(status) if status >= 500 then fivexx = fivexx + 1 end end
done = function()
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("fivexx") end
  io.write(string.format("5xx responses: %d\n", total))
end
LUA

sample() {
  local m rss gor
  m=$(curl -s "$METRICS")
  rss=$(awk '/^process_resident_memory_bytes/ {printf "%d", $2}' <<<"$m")
  gor=$(awk '/^go_goroutines/ {print $2}' <<<"$m")
  echo "$(( $(date +%s) - START )) $rss $gor"
}
START=$(date +%s)
echo "soak: wrk -t$THREADS -c$CONNS -d${DURATION}s on $BASE (PostgreSQL + Redis), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$work/mix.lua" "$BASE" >"$work/wrk" 2>&1 &
WRK=$!
: >"$work/samples"
while kill -0 $WRK 2>/dev/null; do sample >>"$work/samples"; sleep 10; done
wait $WRK || true
cat "$work/wrk"
echo "samples (seconds, RSS bytes, goroutines):"
awk '{printf "  %4ds  %6.1f MiB  %s goroutines\n", $1, $2/1048576, $3}' "$work/samples"

fail=0
fivexx=$(awk '/5xx responses/ {print $3}' "$work/wrk")
errors=$(awk '/Socket errors/ {print}' "$work/wrk")
[ "${fivexx:-1}" = "0" ] || { echo "FAIL: ${fivexx:-unknown} responses were 5xx"; fail=1; }
if [ -n "$errors" ]; then echo "FAIL: $errors"; fail=1; fi
# Goroutines follow the connections in flight, so single samples swing by
# dozens; growth is judged, like RSS, on the mean of the last third against
# the middle third.
read -r mid last gmin gmax gmid glast < <(awk '{r[NR]=$2; g[NR]=$3} END {
  a=int(NR/3); b=int(2*NR/3); m=0; l=0; gm=0; gl=0;
  for (i=a+1;i<=b;i++) { m+=r[i]; gm+=g[i] } for (i=b+1;i<=NR;i++) { l+=r[i]; gl+=g[i] }
  gmin=g[a+1]; gmax=g[a+1]; for (i=a+1;i<=NR;i++) { if (g[i]<gmin) gmin=g[i]; if (g[i]>gmax) gmax=g[i] }
  printf "%d %d %d %d %d %d\n", m/(b-a), l/(NR-b), gmin, gmax, gm/(b-a), gl/(NR-b) }' "$work/samples")
growth=$(awk -v m="$mid" -v l="$last" 'BEGIN {printf "%.1f", (l-m)*100/m}')
echo "RSS: middle third $(awk -v m="$mid" 'BEGIN {printf "%.1f", m/1048576}') MiB, last third $(awk -v l="$last" 'BEGIN {printf "%.1f", l/1048576}') MiB ($growth %); goroutines $gmin–$gmax after warm-up, mean $gmid in the middle third, $glast in the last"
awk -v g="$growth" 'BEGIN {exit !(g > 15)}' && { echo "FAIL: RSS grows"; fail=1; }
[ $((glast - gmid)) -le 20 ] || { echo "FAIL: goroutines grow (mean $gmid → $glast)"; fail=1; }
echo "server error log lines: $(grep -c '"level":"ERROR"' "$work/err" || true)"
grep '"level":"ERROR"' "$work/err" | sed -E 's/.*"msg":"([^"]*)".*"err":"([^"]{0,160}).*/  \1: \2/' | sort | uniq -c | head -20 || true
[ $fail -eq 0 ] && echo "soak: ok"
exit $fail
