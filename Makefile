# One command to serve, one to test. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Token auth turns itself on once ~/.ray/auth_token exists; a local single-user setup runs without it.
export RAY_AUTH_MODE ?= disabled
# llama.cpp builds from source: use both cores. pip's cache keeps the built wheel between runs.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
# llama.cpp's AMX kernels crash (SIGSEGV in the first decode) on VMs whose CPU reports AMX but whose hypervisor
# does not keep the tile state, as on these machines (Firecracker on Sapphire Rapids). Build without them; the
# AVX-512/AVX2 kernels that -march=native picks remain. Only x86-64 compilers know the flags.
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
export CFLAGS := $(strip $(CFLAGS) $(NO_AMX))
export CXXFLAGS := $(strip $(CXXFLAGS) $(NO_AMX))
endif

.PHONY: install install-dev install-browser check-ui serve test test-unit lint bench-serving bench-accuracy clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

install: $(PY)
	$(PIP) install -e ".[llamacpp,embedded,postgres,mysql,s3]"
	$(PY) -m deployments.embedded_models prepare qwen2.5-coder-0.5b qwen2.5-coder-1.5b

# The transformers extra pins torch==2.13.0, the CPU wheel pip finds on these machines (never a CUDA build).
# modelscope installs SPACE-T's pipeline, so CI runs its engine's tests.
install-dev: $(PY)
	$(PIP) install -e ".[llamacpp,embedded,transformers,training,modelscope,dev]"
	$(PY) -m deployments.embedded_models prepare qwen2.5-coder-0.5b qwen2.5-coder-1.5b

# Quick start: install, then serve serve_config.yaml on http://localhost:8000.
# serve run starts a local Ray on a random free port, clear of Redis on 6379.
serve: install
	$(VENV)/bin/serve run serve_config.yaml

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
install-browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get install -y --no-install-recommends chromium chromium-driver \
	  || { apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; } \
	  || echo "chromium could not be installed: tests/browser will be skipped"; }

# Two workers: the model tests each keep about one core busy. A module stays on one worker, and the modules that
# use the live PostgreSQL and MariaDB run on one worker in turn (tests/conftest.py).
TEST_WORKERS ?= 2
test: install-dev install-browser
	$(PY) -m pytest -n $(TEST_WORKERS) --no-loadscope-reorder -v --durations=40 tests

test-unit:
	$(PY) -m pytest -v tests/unit

# CI: the committed playground build must be what build.sh makes from src/ and package-lock.json.
check-ui:
	deployments/ui/build.sh > /dev/null
	rm -rf deployments/ui/node_modules
	git diff --exit-code --stat -- deployments/ui/dist
	@test -z "$$(git status --porcelain -- deployments/ui/dist)" || { echo "untracked files in deployments/ui/dist"; exit 1; }

lint:
	$(VENV)/bin/ruff check .

bench-serving:
	$(PY) -m bench.bench_serving

bench-accuracy:
	$(PY) -m bench.bench_accuracy

clean:
	rm -rf $(VENV) .pytest_cache
