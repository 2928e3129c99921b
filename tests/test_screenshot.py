"""The digest HTML as a mail client would show it: a headless Chromium screenshot.

Skipped with a message where Chromium is not installed (.ci/run installs Debian's
chromium), at a desktop and a phone width. The README's picture is made by
docs/screenshot.py from a realistic day.
"""

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "digest.html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
@pytest.mark.parametrize("width", [800, 390], ids=["desktop", "phone"])
def test_digest_screenshot(tmp_path, width):
    out = tmp_path / "digest.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
                    f"--window-size={width},1400", f"--screenshot={out}", GOLDEN.as_uri()],
                   check=True, capture_output=True, timeout=120)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (width, 1400)
    assert len(data) > 20_000                                          # a rendered page, not blank
