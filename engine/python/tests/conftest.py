"""Test setup: the package importable without installing it, and the tiny pipelines' helpers."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # stepscope_export, when not pip-installed
sys.path.insert(0, str(HERE))  # tiny_wan

REPO_ROOT = HERE.parents[2]
"""The Stepscope repository (for the fixtures shared with the Rust tests)."""
