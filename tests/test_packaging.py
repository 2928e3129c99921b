"""The wheel carries templates, the model and the example config, and works from any folder."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    return next(out.glob("monitor-*.whl"))


def test_wheel_contains_resources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "monitor/_bundled/config/monitor.toml" in names
    assert any(n.startswith("monitor/_bundled/templates/") for n in names) or not list((ROOT / "templates").glob("*"))
    for page in ("base.html.j2", "list.html.j2", "item.html.j2", "app.css"):    # monitor serve's pages
        assert f"monitor/_bundled/templates/web/{page}" in names
    if (ROOT / "models" / "classifier.skops").exists():
        assert "monitor/_bundled/models/classifier.skops" in names
        assert "monitor/_bundled/models/classifier.card.json" in names
        assert "monitor/_bundled/models/classifier.linear.npz" in names     # classified without sklearn
    assert "monitor/_bundled/models/corpus/en.jsonl" in names        # `monitor train` installed
    assert any(n.startswith("monitor/_bundled/models/labels/") for n in names)


def test_installed_wheel_works_from_another_folder(wheel, tmp_path):
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("MONITOR_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "monitor", "config", "check"], cwd=tmp_path,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert str(target / "monitor" / "_bundled" / "config" / "monitor.toml") in proc.stdout


def test_installed_wheel_trains_from_its_bundled_corpus(wheel, tmp_path):
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    for name in ("MONITOR_CONFIG", "MONITOR_POOL", "MONITOR_STORE_URL"):
        env.pop(name, None)
    out = tmp_path / "model.skops"
    proc = subprocess.run([sys.executable, "-m", "monitor", "train", "--out", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "no real items (no pool given or found)" in proc.stdout and out.exists()
