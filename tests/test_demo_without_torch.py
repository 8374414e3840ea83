"""`clippings up --demo` (what scripts/demo.sh runs after `install.sh demo`) needs no torch: the
demo runs with torch unimportable, in the command and in every service process it starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clippings.data.dataset import load_dataset

pytestmark = pytest.mark.integration

# Loaded by every Python process that has this folder on PYTHONPATH (the stack's children inherit it).
BLOCK_TORCH = '''
import sys


class NoTorch:
    """Refuse torch (and what imports it) as an environment without it would."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "transformers"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: the demo must not need it)", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
'''


def test_the_demo_runs_without_torch(redis_url, news_model, sample_feed, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_TORCH)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    blocked = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert blocked.returncode != 0 and "blocked" in blocked.stderr  # the block holds in a child process
    done = subprocess.run([sys.executable, "-m", "clippings.cli", "up", "--demo", "--quiet", "--redis", redis_url,
                           "--model", str(news_model), "--workdir", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = dict(part.split("=", 1) for part in done.stdout.strip().splitlines()[-1].split())
    n = len(load_dataset(sample_feed).records)
    assert summary["events"] == str(n) and summary["flags_correct"] == f"{n}/{n}"
