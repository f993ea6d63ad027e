"""Synthesize the CDK app (cached by a hash of its sources) and read the cloud assembly.

Synth costs seconds (jsii starts Node); the runtime reuses an assembly whose inputs are
unchanged, so a second start skips it. The app is run as ``<this python> app.py`` with
``CDK_OUTDIR`` pointing at the cache, which is what ``cdk synth`` does minus the CLI.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What the synthesized template depends on; a change to any of these triggers a new synth.
SYNTH_INPUTS = ("app.py", "cdk.json", "infra", "functions")
_IGNORED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
# The qualifier of the default CDK bootstrap ("hnb659fds") and its bucket/parameter names.
BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"


def source_hash(project_dir: Path, inputs: tuple[str, ...] = SYNTH_INPUTS) -> str:
    """A digest of every input file's path and content (missing inputs are simply absent)."""
    digest = hashlib.sha256()
    for name in inputs:
        root = project_dir / name
        files = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for path in files:
            relative = path.relative_to(project_dir)
            if not path.is_file() or _IGNORED_PARTS & set(relative.parts):
                continue
            if path.suffix == ".pyc":
                continue
            digest.update(relative.as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def synthesize(project_dir: Path, cache_dir: Path, inputs: tuple[str, ...] = SYNTH_INPUTS) -> Path:
    """Return a cloud assembly directory for the app's current sources, synthesizing if needed."""
    target = cache_dir / f"cdk.out-{source_hash(project_dir, inputs)}"
    if (target / "manifest.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="synth-", dir=cache_dir))
    env = {
        **os.environ,
        "CDK_OUTDIR": str(staging),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    completed = subprocess.run(  # our interpreter runs the project's app.py
        [sys.executable, "app.py"],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"cdk synth of {project_dir} failed:\n{completed.stderr[-4000:]}")
    for stale in cache_dir.glob("cdk.out-*"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:  # another process (pytest-xdist worker) finished the same synth first
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass(frozen=True)
class FileAsset:
    """One file asset of the stack: where it is in the assembly and where CDK uploads it."""

    source: Path
    packaging: str  # "zip" (a directory, zipped on upload) or "file"
    bucket_name: str  # may hold ${AWS::AccountId} / ${AWS::Region} placeholders
    object_key: str

    def content(self) -> bytes:
        if self.packaging == "file":
            return self.source.read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(self.source.rglob("*")):
                relative = path.relative_to(self.source)
                if path.is_file() and "__pycache__" not in relative.parts:
                    # A fixed timestamp keeps the zip (and its digest) stable across runs.
                    info = zipfile.ZipInfo(relative.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                    info.external_attr = 0o644 << 16
                    archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        return buffer.getvalue()


@dataclass(frozen=True)
class StackArtifact:
    """A synthesized stack: its name, its template and the assets the template refers to."""

    name: str
    template: dict[str, Any]
    assets: tuple[FileAsset, ...]

    @classmethod
    def load(cls, assembly_dir: Path, stack_name: str | None = None) -> "StackArtifact":
        manifest = json.loads((assembly_dir / "manifest.json").read_text())
        stacks = {
            name: artifact
            for name, artifact in manifest["artifacts"].items()
            if artifact["type"] == "aws:cloudformation:stack"
        }
        if stack_name is None:
            if len(stacks) != 1:
                raise ValueError(f"pick one of the stacks {sorted(stacks)} with stack_name")
            stack_name = next(iter(stacks))
        artifact = stacks[stack_name]
        template_file = artifact["properties"]["templateFile"]
        template = json.loads((assembly_dir / template_file).read_text())
        assets: list[FileAsset] = []
        for dependency in artifact.get("dependencies", []):
            dependency_artifact = manifest["artifacts"].get(dependency, {})
            if dependency_artifact.get("type") != "cdk:asset-manifest":
                continue
            asset_manifest = json.loads(
                (assembly_dir / dependency_artifact["properties"]["file"]).read_text()
            )
            for entry in asset_manifest.get("files", {}).values():
                if entry["source"]["path"] == template_file:
                    continue
                for destination in entry["destinations"].values():
                    assets.append(
                        FileAsset(
                            source=assembly_dir / entry["source"]["path"],
                            packaging=entry["source"].get("packaging", "file"),
                            bucket_name=destination["bucketName"],
                            object_key=destination["objectKey"],
                        )
                    )
        return cls(name=stack_name, template=template, assets=tuple(assets))
