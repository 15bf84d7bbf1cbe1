# The two commands a newcomer needs:
#   make demo   set everything up, then run a spoken conversation into demo-out/
#   make test   set everything up, then run the tests
.PHONY: setup demo test test-unit lint bench clean

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/voxloop demo --out demo-out

test: setup
	bash scripts/test.sh

test-unit: setup
	.venv/bin/pytest tests/unit -q

lint: setup
	.venv/bin/ruff check src tests
	.venv/bin/ruff format --check src tests
	.venv/bin/mypy

bench: setup
	.venv/bin/voxloop bench latency --corpus ../shared/corpus --out bench-out

clean:
	rm -rf demo-out run-out bench-out .pytest_cache .mypy_cache .ruff_cache
