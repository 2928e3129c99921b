"""The digest HTML as a mail client would show it: a headless Chromium screenshot.

Skipped with a message where Chromium is not installed (.ci/run installs Debian's
chromium). UPDATE_SCREENSHOT=1 also refreshes docs/digest.png, shown in the README.
"""

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "digest.html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_digest_screenshot(tmp_path):
    out = tmp_path / "digest.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
                    "--window-size=800,1400", f"--screenshot={out}", GOLDEN.as_uri()],
                   check=True, capture_output=True, timeout=120)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (800, 1400) and len(data) > 20_000     # a rendered page, not blank
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(out, ROOT / "docs" / "digest.png")
