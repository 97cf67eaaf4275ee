"""`bentoml build` produces a Bento with the service code, the chain and the model (the image build itself runs
in scripts/build_image.sh, not in CI)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import REPO

pytestmark = pytest.mark.slow
BENTOML = str(Path(sys.executable).parent / "bentoml")
NOT_SERVED = {"training", "batch", "drift", "dashboard", "scripts", "experiments", "tools", "tests"}
FIRST_PARTY = NOT_SERVED | {"sentiment", "fallback", "runners", "api", "service"}


def first_party_imports(src: Path) -> dict[str, set[str]]:
    """Every first-party module each Python file of the Bento imports, at any depth (lazy imports included)."""
    found: dict[str, set[str]] = {}
    for path in src.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(src))] = {n for n in names if n.split(".")[0] in FIRST_PARTY}
    return found


def test_bentoml_build_packages_code_and_model(tmp_path: Path) -> None:
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    tiny = subprocess.run(
        [sys.executable, "-m", "tests.support.tiny_model"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    registered = json.loads(tiny.stdout.splitlines()[-1])["tag"]
    out = subprocess.run(
        [BENTOML, "build", "-o", "tag", "."], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    tag = out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    bento = tmp_path / "bentoml" / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())

    assert info["service"] == "service:SentimentService"
    # Exactly one version, the one the transformer runner declares (bentofile.yaml lists none of its own).
    packaged = [m["tag"] for m in info["models"]] + [m["tag"] for s in info["services"] for m in s["models"]]
    assert packaged == [registered]
    assert sorted(s["name"] for s in info["services"]) == ["language", "review-sentiment", "rules", "transformer"]
    src = bento / "src"
    for path in ("service.py", "api/request.py", "fallback/chain.py", "sentiment/contract.py"):
        assert (src / path).is_file(), path
    assert not any((src / package).exists() for package in NOT_SERVED | {"var"})
    # What serving ships imports nothing from training or batch code, and every module it imports is shipped.
    imports = first_party_imports(src)
    assert not {f: m for f, m in imports.items() if any(n.split(".")[0] in NOT_SERVED for n in m)}
    shipped = {f.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for f in imports}
    assert {n for m in imports.values() for n in m} - shipped == set()
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    for package in ("tokenizers==", "onnxruntime==", "fastapi==", "langdetect==", "bentoml=="):
        assert package in requirements, package
    for package in ("torch", "transformers", "onnx="):  # the model serves from the ONNX stored at registration
        assert f"\n{package}" not in f"\n{requirements}", package
    # The version the Bento references (containerize copies it from the store) carries its verified int8 export.
    stored = tmp_path / "bentoml" / "models" / "review-sentiment" / registered.split(":")[1]
    assert (stored / "onnx" / "model.int8.onnx").is_file()
    assert "onnx" in yaml.safe_load((stored / "model.yaml").read_text())["metadata"]
