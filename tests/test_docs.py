"""The documentation builds with warnings as errors, and every tutorial executes with its
checks (a failing ``assert`` in a tutorial fails the build)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strictly_with_their_tutorials_executed(tmp_path):
    if not (ROOT / "mkdocs.yml").is_file():
        pytest.skip("not a source checkout (no mkdocs.yml)")
    try:
        import markdown_exec  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip('the docs need the docs extra: pip install ".[docs]"')
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                           str(site)], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    for page in ("tutorials/lmp-dlmp", "tutorials/penetration", "tutorials/hosting-capacity",
                 "reference/scenario", "reference/cli", "reference/api", "concepts",
                 "formulations"):
        assert (site / page / "index.html").is_file(), page
    tutorial = (site / "tutorials" / "lmp-dlmp" / "index.html").read_text(encoding="utf-8")
    assert "DLMPs x demand" in tutorial and "Traceback" not in tutorial
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "tsodso report" in cli and "tsodso run" in cli and "--report" in cli
    scenario = (site / "reference" / "scenario" / "index.html").read_text(encoding="utf-8")
    assert "dso_id" in scenario and "interface_bus" in scenario
