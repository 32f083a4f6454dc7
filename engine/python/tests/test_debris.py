"""Killed writers leave no debris: a write sweeps the temporary files of its target whose writer
is gone, whichever writer (this package or the engine, which name them alike) left them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stepscope_export.writer import replace_file

HANGING_WRITER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from stepscope_export.writer import replace_file

def chunks():
    yield b"x" * (1 << 20)
    sys.stdout.write("written\\n"); sys.stdout.flush()
    time.sleep(600)
    yield b""

replace_file(sys.argv[1], chunks)
"""


def entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


@pytest.mark.skipif(os.name != "posix", reason="kill -9 and process lookups are POSIX")
def test_a_writer_killed_mid_write_leaves_nothing_after_the_next_write(tmp_path):
    target = tmp_path / "run.safetensors"
    package = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING_WRITER, str(target), str(package)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "written"
        # The chunk may still sit in the writer's buffer: wait until the file has it.
        deadline = time.monotonic() + 60
        while not any(entry.stat().st_size >= 1 << 20 for entry in tmp_path.iterdir()):
            assert time.monotonic() < deadline, "the writer never wrote"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(entries(tmp_path)) == 1 and entries(tmp_path)[0].endswith(".tmp"), entries(tmp_path)
    replace_file(target, lambda: [b"next"])
    assert entries(tmp_path) == ["run.safetensors"]
    assert target.read_bytes() == b"next"


def test_what_live_writers_and_other_targets_have_is_kept(tmp_path):
    target = tmp_path / "run.safetensors"
    live = tmp_path / f".run.safetensors.{os.getpid()}-999999.tmp"  # this process: a write in progress
    other = tmp_path / ".other.safetensors.4294967000-0.tmp"  # another target's
    dead = tmp_path / ".run.safetensors.4294967000-0.tmp"  # larger than any process id
    for path in (live, other, dead):
        path.write_bytes(b"partial")
    replace_file(target, lambda: [b"new"])
    expected = sorted([live.name, other.name, "run.safetensors"]) if os.name == "posix" else None
    if expected is not None:
        assert entries(tmp_path) == expected
