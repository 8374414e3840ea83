"""Where a command cannot write (or read) a path the user gave, it says so in one line naming
the path, as it does for bad input; `-v` keeps the traceback for a bug report."""

import subprocess
import sys

import pytest


def clippings(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clippings.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("a file where a folder was meant\n")
    return path


@pytest.mark.parametrize("command", [
    ["synth", "news", "{out}", "--task", "dedup", "--entities", "4"],
    ["eval", "{data}", "--model", "news", "--out", "{out}"],
    ["calibrate", "news", "--data", "{data}", "--out", "{out}"],
])
def test_an_output_folder_under_a_file_is_one_line_naming_it(command, a_file, tmp_path):
    from clippings.data.synth.generate import generate

    data = tmp_path / "set"
    generate("news", data, task="dedup", entities=8, seed=5, progress=False)
    out = a_file / "out"  # a folder cannot be made inside a file
    proc = clippings(*[a.format(out=out, data=data) for a in command])
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"clippings {command[0]}: error:") and str(a_file) in last, last
    assert "Traceback" not in proc.stderr


def test_verbose_keeps_the_traceback(a_file):
    proc = clippings("-v", "synth", "news", str(a_file / "out"), "--task", "dedup", "--entities", "4")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "NotADirectoryError" in proc.stderr
