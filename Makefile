# Gatehouse developer targets. CI runs .ci/run; these are the longer runs.
FUZZTIME ?= 60s
BENCHTIME ?= 2s

SOAK_SECONDS ?= 600

.PHONY: test fuzz bench load soak ab ci

test:
	go test -race ./...

# Every fuzz target of the module, one after another, for FUZZTIME each.
fuzz:
	@for pkg in $$(go list ./...); do \
	  dir=$$(go list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do \
	    echo "== $$pkg $$t"; go test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The library's micro-benchmarks, the peer comparisons of bench/, and the
# wrk load tests (bench/load.sh; PG_URL and REDIS_URL add PostgreSQL +
# Redis). BENCHMARKS.md gives the exact command of each figure.
bench:
	go test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...
	cd bench && BENCHTIME=$(BENCHTIME) ./run.sh
	bench/load.sh

# The wrk load tests alone.
load:
	bench/load.sh

# Ten minutes of wrk against the server on PostgreSQL + Redis; fails on a
# 5xx or on RSS/goroutine growth (docs/SOAK.md has the latest figures).
soak:
	DURATION=$(SOAK_SECONDS) bench/soak.sh

# Before and after: the reference server built at A and at B under wrk,
# rounds alternated (make ab A=4b47158 B=HEAD).
A ?= HEAD~1
B ?= HEAD
ab:
	bench/ab.sh $(A) $(B)

ci:
	CI=true bash .ci/run
