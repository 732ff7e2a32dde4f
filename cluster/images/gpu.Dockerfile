# The GPU image for `backend: vllm`: Ray's official CUDA image with this package and its [vllm] extra (vLLM
# brings its own CUDA torch), plus PostgreSQL, MySQL and S3. The CPU stack (llama.cpp, the embedded models,
# the CPU torch of [transformers]) stays out of it; CI never installs vllm.
#
#   docker build -f cluster/images/gpu.Dockerfile -t text2sql-serve:gpu .
#   docker run --gpus all --shm-size 8g -p 8000:8000 -e HF_TOKEN -v "$HOME/models:/models" text2sql-serve:gpu
#
# It serves configs/gpu-vllm.yaml (two vLLM models, one GPU each); to serve another config, mount it and name
# it: ... -v "$PWD/my.yaml:/app/my.yaml:ro" text2sql-serve:gpu serve run /app/my.yaml
# As a KubeRay head or worker image, KubeRay's own `ray start` command replaces the default.
ARG RAY_VERSION=2.60.0
# CUDA 12.8, as in gpu-train.Dockerfile. Ray's CUDA images keep g++, which Triton needs to compile its kernels.
FROM rayproject/ray:${RAY_VERSION}-py311-cu128

# Root only to make the directories the app writes, owned by the ray user.
USER 0
RUN mkdir -p /app /models /var/cache/text2sql \
    && chown 1000:100 /app /models /var/cache/text2sql
# The base image's `ray` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:100

WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    HF_HOME=/models/huggingface \
    TEXT2SQL_MODEL_CACHE=/var/cache/text2sql/models \
    TEXT2SQL_DATA_DIR=/var/cache/text2sql/data

COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 text2sql ./text2sql
COPY --chown=1000:100 deployments ./deployments

# DL3013 asks to pin versions; this is the local package, whose own pyproject pins its dependencies.
# hadolint ignore=DL3013
RUN python -m pip install --no-cache-dir ".[vllm,postgres,mysql,s3]" \
    && python -c "import vllm, deployments.engines.vllm; print('vllm', vllm.__version__)"

# The configs come last, so that editing one does not redo the install.
COPY --chown=1000:100 configs ./configs

EXPOSE 8000
# Docker's check only; Kubernetes ignores it and probes /health itself. Loading a 7-8B model takes minutes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=900s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/health', timeout=4)"]
CMD ["serve", "run", "/app/configs/gpu-vllm.yaml"]
