# Thin wrappers over scripts/: every target sets up what it needs first.
.PHONY: setup run demo test lint bench clean

setup:
	bash scripts/setup.sh

run:
	bash scripts/run.sh

demo:
	bash scripts/run.sh --reset-demo

test:
	bash scripts/test.sh

lint:
	bash scripts/lint.sh

bench:
	bash scripts/bench.sh

clean:
	rm -rf .state
