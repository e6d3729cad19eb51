# The two commands of the README's quick start, and the setup both share.
.PHONY: setup demo test bench soak

setup:
	@scripts/setup.sh

demo: setup
	@npx tsx scripts/demo.ts

test:
	@scripts/setup.sh --test
	@npx vitest run $(VITEST_ARGS)

# Every scenario of bench/README.md, one table (about 12 minutes on 2 cores). BENCH_ARGS passes flags,
# e.g. BENCH_ARGS="--scale 0.2 --rate-seconds 10" for a quick run.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
bench: setup bench/peers/gcp/gcp-peer
	@npx tsc -p tsconfig.bench.json
	@node dist/bench/convergence.js $(BENCH_ARGS)

# The go-control-plane peer, built from the Go module proxy at the versions pinned in its go.mod.
bench/peers/gcp/gcp-peer: bench/peers/gcp/main.go bench/peers/gcp/go.mod
	@cd bench/peers/gcp && $(GO) build -o gcp-peer .

# Not in CI: 30 minutes of a change every 100 ms, 200 ADS streams (20 reconnecting, 20 slow readers) and
# real Envoys carrying tunnels (bench/soak.ts). SOAK_MINUTES shortens it; it stops by itself.
soak: setup
	@npx tsx bench/soak.ts
