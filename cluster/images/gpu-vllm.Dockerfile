# The GPU image for `backend: vllm`. vLLM pins its own CUDA torch, so it gets an image of its own: vLLM's
# official one (CUDA, torch and vllm as vLLM builds them), with this package and its [vllm] extra on top.
# The CPU stack (llama.cpp, Transformers) stays out of it; CI never installs vllm.
#
#   docker build -f cluster/images/gpu-vllm.Dockerfile -t text2sql-serve:gpu-vllm .
#   docker run --gpus all --shm-size 8g -p 8000:8000 -e HF_TOKEN -v "$HOME/models:/models" \
#       -v "$PWD/gpu_config.yaml:/app/config/serve_config.yaml:ro" text2sql-serve:gpu-vllm
#
# gpu_config.yaml is a serve_config.yaml whose models use `backend: vllm`: serve_config.yaml's commented
# GPU examples, uncommented, with the llama.cpp models taken out (this image has no llama.cpp).
ARG VLLM_VERSION=v0.33.0
FROM vllm/vllm-openai:${VLLM_VERSION}

WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    HF_HOME=/models/huggingface \
    RAY_USAGE_STATS_ENABLED=0

COPY pyproject.toml README.md ./
COPY text2sql ./text2sql
COPY deployments ./deployments

# vllm comes from the base image and satisfies the extra's range, so pip keeps it and its CUDA torch; the
# extra is named so that the resolver holds the shared dependencies to versions vllm accepts.
# DL3013 asks to pin versions; this is the local package, whose own pyproject pins its dependencies.
# hadolint ignore=DL3013
RUN python3 -m pip install --no-cache-dir ".[vllm]" \
    && python3 -c "import vllm, deployments.engines.vllm; print('vllm', vllm.__version__)"

EXPOSE 8000
# The base image's entrypoint is vLLM's own OpenAI server; this image runs the Ray Serve app instead.
ENTRYPOINT ["serve", "run"]
CMD ["/app/config/serve_config.yaml"]
