"""Docs stay true: generated pages match what their scripts write now."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_diagnostics_page_is_current():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, 'docs'); import make_diagnostics as m; print(m.page(), end='')",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout == (ROOT / "docs" / "diagnostics.md").read_text(), "run: python docs/make_diagnostics.py"


def test_readme_lists_every_diagnostic_code():
    from modelgen.diagnostics import CODES

    readme = (ROOT / "README.md").read_text()
    missing = [code for code in CODES if code not in readme]
    assert not missing, f"README does not mention {missing}"
