# The GPU image for fine-tuning jobs (training/): Ray's CUDA image with this package and its [training] extra
# (torch, transformers, peft, trl, bitsandbytes, Ray Train). k8s/training/rayjob-qlora-sqlcoder-8b.yaml runs it.
#
#   docker build -f cluster/images/gpu-train.Dockerfile -t text2sql-serve:gpu-train .
#
# The extra pins torch==2.13.0; on Linux x86_64 PyPI's wheel of that version is the CUDA build, which is what
# this image wants (on the project's CPU machines pip takes the local CPU wheel of the same version instead).
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-cu128
FROM ${RAY_IMAGE}

WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    HF_HOME=/models/huggingface \
    RAY_USAGE_STATS_ENABLED=0

COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users text2sql ./text2sql
COPY --chown=ray:users deployments ./deployments
COPY --chown=ray:users training ./training

# DL3013 asks to pin versions; this is the local package, whose own pyproject pins its dependencies.
# hadolint ignore=DL3013
RUN python -m pip install --no-cache-dir ".[training,s3]" \
    && python -c "import trl, peft, bitsandbytes, training.train; print('trl', trl.__version__)"
