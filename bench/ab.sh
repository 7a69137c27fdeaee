#!/usr/bin/env bash
# Before and after: the reference server built at two revisions, on SQLite,
# under wrk in rounds alternated A B B A (so that the host's drift falls on
# both alike), GET /v1/bookings with an API key; requests/s and the
# server's CPU per request, each round and the means. Loopback only,
# bounded: 4 × N rounds of DURATION.
#
#   bench/ab.sh 4b47158 HEAD
#   N=6 DURATION=8s bench/ab.sh main~3 main
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: bench/ab.sh REV_A REV_B"; exit 2; }
command -v wrk >/dev/null || { echo "ab.sh needs wrk (apt-get install wrk)"; exit 1; }
N="${N:-4}" DURATION="${DURATION:-5s}"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; git worktree remove --force "$work/src" 2>/dev/null || true; rm -rf "$work"' EXIT
names=(a b) revs=("$1" "$2")
for i in 0 1; do
  git worktree add -q --detach "$work/src" "${revs[$i]}"
  (cd "$work/src" && go build -o "$work/server-${names[$i]}" ./examples/server)
  git worktree remove --force "$work/src"
done
start() { # name port
  local d="$work/d$1" db
  mkdir "$d"; db="sqlite:$d/g.db"
  "$work/server-$1" -addr "127.0.0.1:$2" -db "$db" >"$d/out" 2>"$d/err" &
  echo $! >"$d/pid"
  for _ in $(seq 1 100); do grep -q "listening on" "$d/out" 2>/dev/null && break; sleep 0.1; done
  "$work/server-$1" admin org create -db "$db" --prefix load --name Load --plan "1000000000/h,100000000/m" >/dev/null
  "$work/server-$1" admin key create -db "$db" --org load --name load --scopes "bookings:read" --env live --rate-limit "1000000000/h,100000000/m" |
    sed -E 's/.*"key":"([^"]+)".*/\1/' >"$d/key"
  echo "$2" >"$d/port"
}
start a 18301
start b 18302
sleep 1
one() { # name
  local d="$work/d$1" pid before after out
  pid=$(cat "$d/pid")
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  out=$(wrk -t2 -c32 -d"$DURATION" -H "Authorization: Bearer $(cat "$d/key")" "http://127.0.0.1:$(cat "$d/port")/v1/bookings")
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  awk -v s="$1" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" '/Requests\/sec/ {rps = $2} /requests in/ {n = $1} /Non-2xx/ {bad = $NF}
    END {printf "%s %s req/s %.2f µs/req non-2xx %d\n", s, rps, t / hz * 1e6 / n, bad}' <<<"$out" | tee -a "$work/rounds"
}
echo "A = ${revs[0]} ($(git rev-parse --short "${revs[0]}")), B = ${revs[1]} ($(git rev-parse --short "${revs[1]}")); wrk -t2 -c32 -d$DURATION, $(date -u +%Y-%m-%dT%H:%MZ)"
for _ in $(seq 1 "$N"); do one a; one b; one b; one a; done
awk '{rps[$1] += $2; cpu[$1] += $4; bad[$1] += $7; n[$1]++}
  END {printf "means of %d runs each: A %.0f req/s, %.2f µs/req; B %.0f req/s (%+.1f %%), %.2f µs/req (%+.1f %%); non-2xx A %d, B %d\n",
    n["a"], rps["a"] / n["a"], cpu["a"] / n["a"], rps["b"] / n["b"], 100 * (rps["b"] / rps["a"] - 1), cpu["b"] / n["b"], 100 * (cpu["b"] / cpu["a"] - 1), bad["a"], bad["b"]}' "$work/rounds"
