#!/usr/bin/env bash
# Reproduces the figures of BENCHMARKS.md that compare Gatehouse with its
# peers. Needs Redis on 127.0.0.1:6379 for the Redis rows. Bounded: every
# benchmark runs for -benchtime and stops by itself.
set -euo pipefail
cd "$(dirname "$0")"
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-2s}" -count "${COUNT:-1}" | tee "${OUT:-/dev/stdout}"
