"""The wheel carries templates, the model and the example config, and works from any folder."""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# What the wheel is built from: the checkout's own files, copied so that the build's
# build/ and egg-info folders and the other test workers' __pycache__ files never meet.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "monitor", "templates", "config", "models")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "_bundled")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=SKIP)
        else:
            shutil.copy2(ROOT / name, src / name)
    built = build(src, tmp_path_factory.mktemp("wheel"))
    # built again after a file is deleted from the tree (pip builds in it, leaving build/):
    # the file must not come back from the earlier build
    (src / "models" / "corpus" / "it.jsonl").unlink()
    again = build(src, tmp_path_factory.mktemp("again"))
    names = zipfile.ZipFile(again).namelist()
    assert "monitor/_bundled/models/corpus/it.jsonl" in zipfile.ZipFile(built).namelist()
    assert "monitor/_bundled/models/corpus/it.jsonl" not in names, "a deleted file shipped"
    return again


def build(src: Path, out: Path) -> Path:
    # No build isolation: setuptools and wheel come with the test extras, so building
    # needs no package index (no test reaches beyond loopback).
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(out), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, f"pip wheel failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
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


def test_the_wheel_built_from_the_sdist_carries_the_resources(tmp_path):
    """`python -m build` builds the wheel from the sdist, and `pip install monitor-*.tar.gz`
    does too: the sdist must carry templates/, config/ and models/, or that wheel installs
    without them (no example config, no templates, no model, no corpus)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in (*SOURCES, "MANIFEST.in"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=SKIP)
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    sdists = tmp_path / "sdist"
    done = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                           "print(build_meta.build_sdist(sys.argv[1]))", str(sdists)],
                          cwd=src, capture_output=True, text=True)
    assert done.returncode == 0, f"sdist failed:\n{done.stdout}\n{done.stderr}"
    with tarfile.open(next(sdists.glob("monitor-*.tar.gz"))) as sdist:
        sdist.extractall(tmp_path / "unpacked", filter="data")
    unpacked = next((tmp_path / "unpacked").glob("monitor-*"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(tmp_path / "wheel"), str(unpacked)],
                          capture_output=True, text=True)
    names = set()
    if done.returncode == 0:
        names = set(zipfile.ZipFile(next((tmp_path / "wheel").glob("monitor-*.whl"))).namelist())
    for needed in ("config/monitor.toml", "templates/digest.html.j2", "templates/web/list.html.j2",
                   "models/classifier.skops", "models/corpus/en.jsonl", "models/labels/en.jsonl"):
        assert f"monitor/_bundled/{needed}" in names, (needed, done.stderr)


def test_building_without_the_resources_fails_naming_them(tmp_path):
    """A tree without templates/ (an sdist made without them) is refused at build time,
    naming what is missing, instead of making a wheel that installs and then cannot work."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "monitor"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=SKIP)
        else:
            shutil.copy2(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(tmp_path / "wheel"), str(src)],
                          capture_output=True, text=True)
    assert done.returncode != 0 and not list((tmp_path / "wheel").glob("*.whl"))
    assert "config/monitor.toml" in done.stdout + done.stderr


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
    # it trains from the bundled corpus; without the pool, its model is refused against the
    # bundled one, trained with real items (--force would write it)
    assert proc.returncode == 1, proc.stderr
    assert "no real items (no pool given or found)" in proc.stdout and not out.exists()
    assert re.search(r"refused: the model in use was trained on [\d,]+ real news items and this one "
                     r"on none", proc.stdout), proc.stdout
    shipped = target / "monitor" / "_bundled" / "models" / "classifier.skops"
    before = shipped.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "monitor", "train"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)      # no --out: the shipped model
    assert proc.returncode == 2 and "with --out PATH" in proc.stderr, proc.stderr
    assert shipped.read_bytes() == before


def test_a_command_started_from_another_folder_runs_this_checkouts_monitor(tmp_path):
    """Tests start `python -m monitor` from their own folders; there the interpreter found
    the monitor it has installed (an editable install of another checkout, when a clone is
    tested with that checkout's virtualenv), so they tested that code, not this one."""
    done = subprocess.run([sys.executable, "-c", "import monitor; print(monitor.__file__)"],
                          cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(done.stdout.strip()).resolve() == ROOT / "monitor" / "__init__.py"
