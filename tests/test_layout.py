"""Issue 9's size limits: no function over 60 lines, no file over 400, in the package's folders
and in bench/ and deploy/ (their validation included). Also the CLI convention: building the
whole `clippings` parser imports nothing heavy (each command imports its own when it runs)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("clippings", "services", "models", "training", "export", "bench", "deploy")
MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 400
HEAVY = ("torch", "numpy", "onnxruntime", "faiss", "confluent_kafka", "redis", "PIL", "sklearn", "scipy")


def python_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.name}() {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def long_files() -> list[str]:
    out = []
    for path in python_files():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_FILE_LINES:
            out.append(f"{path.relative_to(ROOT)} {n} lines")
    return out


def test_no_file_over_400_lines():
    offenders = long_files()
    assert not offenders, f"files over {MAX_FILE_LINES} lines (split them):\n  " + "\n  ".join(offenders)


def test_no_function_over_60_lines():
    offenders = [line for path in python_files() for line in long_functions(path)]
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines:\n  " + "\n  ".join(offenders)


def test_the_cli_registers_every_command_without_heavy_imports():
    code = ("import sys; from clippings.cli import build_parser; build_parser(); "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "", f"building the parser imported {out.stdout.strip()}"
