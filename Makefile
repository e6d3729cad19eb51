# The two commands of the README's quick start, and the setup both share.
.PHONY: setup demo test bench

setup:
	@scripts/setup.sh

demo: setup
	@npx tsx scripts/demo.ts

test: setup
	@npx vitest run $(VITEST_ARGS)

bench: setup
	@npx tsx bench/convergence.ts
