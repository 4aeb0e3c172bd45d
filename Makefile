PY := .venv/bin/python
VENV_STAMP := .venv/.installed

.PHONY: run test lint bench dynamodb-local install clean

$(VENV_STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(VENV_STAMP)

node_modules/.installed: package.json
	npm install --no-audit --no-fund --silent
	touch node_modules/.installed

install: $(VENV_STAMP) node_modules/.installed

run: $(VENV_STAMP)
	.venv/bin/concord demo

test: install
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected" >&2; exit 1; fi; exit $$rc

lint: $(VENV_STAMP)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	mkdir -p .local/typecheck/concord
	for d in store orchestrator schema resolvers prompts; do ln -sfn ../../../$$d .local/typecheck/concord/$$d; done
	.venv/bin/mypy

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

dynamodb-local: install
	$(PY) -m tests.services dynamodb-local --port 8100 --db-path .local/dynamodb

clean:
	rm -rf .venv node_modules .pytest_cache
