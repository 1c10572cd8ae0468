# County epidemic supply system (疫情保供物资发放). `make demo` and `make test` work on a fresh
# machine: they install what they need (venv, Python deps from the lock file, Debian's influxdb)
# and start the servers that are not running.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROTOS := $(wildcard proto/supply/v1/*.proto)
SCENARIO ?= simulators/scenarios/county_day.yaml
PYTEST_ARGS ?=

.PHONY: setup proto up down status test unit integration browser bench demo down-demo lint up-services down-services services-status clean

setup: $(VENV)/.deps $(BIN)/supplyctl gen/.stamp

$(VENV)/.deps: requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==0.13.9
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	$(BIN)/python -c 'import sysconfig; open(sysconfig.get_paths()["purelib"] + "/county-supply.pth", "w").write("$(CURDIR)\n$(CURDIR)/gen\n")'  # processes import services/ and gen/ from anywhere
	touch $@

# the project itself, editable, for its console script (pyproject's [project.scripts]); after
# every sync, since `uv pip sync` removes what the lock does not name
$(BIN)/supplyctl: $(VENV)/.deps pyproject.toml
	$(BIN)/uv pip install -q --no-deps --no-build-isolation --python $(BIN)/python -e .  # setuptools from the lock: no download
	touch $@

proto gen/.stamp: $(PROTOS) $(VENV)/.deps
	rm -rf gen.new && mkdir -p gen.new
	$(BIN)/python -m grpc_tools.protoc -I proto --python_out=gen.new --pyi_out=gen.new --grpc_python_out=gen.new $(PROTOS)
	touch gen.new/supply/__init__.py gen.new/supply/v1/__init__.py gen.new/.stamp
	rm -rf gen.old && { ! test -d gen || mv gen gen.old; } && mv gen.new gen && rm -rf gen.old  # swapped whole: running processes never see an empty gen/

up: setup
	deploy/scripts/servers.sh up

down:
	-$(BIN)/python -m services.cli down
	deploy/scripts/servers.sh down

status:
	deploy/scripts/servers.sh status
	-$(BIN)/python -m services.cli status

test: up browser
	$(BIN)/python -m pytest --durations=12 $(PYTEST_ARGS)  # the slowest tests, to keep the suite well under 15 min

browser:
	deploy/scripts/browser.sh

unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: up browser
	$(BIN)/python -m pytest tests/integration tests/e2e tests/browser $(PYTEST_ARGS)

bench: up
	-bench/loadgen/build.sh  # the native gRPC load generator; without it the bench uses its Python client
	$(BIN)/python -m bench $(BENCH_ARGS)

demo: up
	$(BIN)/python -m simulators.county_day --scenario $(SCENARIO) $(if $(KEEP),--keep)

down-demo:  # what `make demo KEEP=1` left running
	-test -f var/demo/demo.pids && for p in $$(cat var/demo/demo.pids); do kill -TERM -- -$$p 2>/dev/null; done; rm -f var/demo/demo.pids

up-services: up
	$(BIN)/python -m services.cli up

down-services:
	$(BIN)/python -m services.cli down

services-status:
	$(BIN)/python -m services.cli status

lint: setup
	$(BIN)/ruff check services simulators tests bench

clean:
	rm -rf gen var/*.db var/log
