# Benchmarks against MLflow (see bench/README.md). ARGS="--quick" or ARGS="--suite embedded" to narrow it.
ARGS ?= --all

.PHONY: bench
bench:
	python -m bench $(ARGS)
