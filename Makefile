# The two commands of the README's quick start, and the setup both share.
.PHONY: setup demo test lint format bench image fuzz fuzz-inputs fuzz-xds fuzz-incremental soak

setup:
	@scripts/setup.sh

demo: setup
	@npx tsx scripts/demo.ts

test:
	@scripts/setup.sh --test
	@npx vitest run $(VITEST_ARGS)

# House style: Prettier formats (make format), ESLint checks correctness, line length and import directions.
lint: setup
	@npx prettier --check --log-level warn .
	@npx eslint .

format: setup
	@npx prettier --write --log-level warn .

# The container image (Containerfile) with podman; deploy/shim.yaml runs this name. BASE=IMAGE picks the
# base (default: the public Node 20 image, else a Debian one made here); PODMAN=podman uses your own
# podman settings instead of scripts/podman.sh's.
IMAGE ?= localhost/tunnel-shim:dev
image:
	@scripts/setup.sh --containers
	@scripts/image.sh $(IMAGE)

# The ADS request decoder: random and mutated DiscoveryRequest/DeltaDiscoveryRequest bytes, directly
# and through real gRPC streams (a quarter as many). FUZZ_XDS_SEED picks another seed.
FUZZ_XDS_RUNS ?= 20000
fuzz-xds: setup
	@FUZZ_XDS_RUNS=$(FUZZ_XDS_RUNS) npx vitest run test/protocol/fuzz-ads.test.ts

# Every scenario of bench/README.md, one table, pinned and shared cores side by side (about 90 minutes on
# 2 cores; --cores pinned halves it). The Kubernetes scenario needs the API server binaries, hence
# scripts/k8s-binaries.sh. BENCH_ARGS passes flags, e.g. BENCH_ARGS="--scale 0.2 --rate-seconds 10".
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
bench: setup bench/peers/gcp/gcp-peer
	@scripts/k8s-binaries.sh >/dev/null
	@npx tsc -p tsconfig.bench.json
	@node dist/bench/convergence.js $(BENCH_ARGS)

# The go-control-plane peer, built from the Go module proxy at the versions pinned in its go.mod.
bench/peers/gcp/gcp-peer: bench/peers/gcp/*.go bench/peers/gcp/go.mod
	@cd bench/peers/gcp && $(GO) build -o gcp-peer .

# Property-based fuzzing, longer than the suite's fixed-seed runs, with a fresh seed each time (FUZZ_SEED=N
# repeats one; FUZZ_RUNS cases per property, FUZZ_BATCHES batches through envoy --mode validate).
fuzz: fuzz-inputs fuzz-xds fuzz-incremental

# Annotation parsers and the file source: prints its case counts; a few minutes on 2 cores.
fuzz-inputs: setup
	@npx tsx test/fuzz/run-inputs.ts

# Incremental builds against builds from scratch, every view byte for byte (test/unit/incremental.test.ts):
# FUZZ_RUNS sequences of object changes (default 1000, about 4 minutes on 2 cores; at most an hour).
fuzz-incremental: setup
	@FUZZ_RUNS=$${FUZZ_RUNS:-1000} npx vitest run test/unit/incremental.test.ts

# Not in CI: 30 minutes of a change every 100 ms, 200 ADS streams (20 reconnecting, 20 slow readers) and
# real Envoys carrying tunnels (bench/soak.ts). SOAK_MINUTES shortens it; it stops by itself.
soak: setup
	@npx tsx bench/soak.ts
