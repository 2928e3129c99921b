"""Bundles the checkout's templates/, config/ and models/ (the model, the written corpus
and our labels of real news, so `monitor train` works from an installed package) into the wheel.

The package looks for these folders next to itself first (a checkout or an editable
install) and falls back to the copies under ``monitor/_bundled`` that this build step
writes into the wheel (see monitor/resources.py).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
BUNDLED = {
    "templates": ("*.html", "*.txt", "*.j2", "web/*.j2", "web/*.css"),
    "config": ("monitor.toml", "monitor.service"),
    "models": ("classifier.skops", "classifier.card.json", "classifier.linear.npz", "corpus/*.jsonl", "corpus/README.md",
               "labels/*.jsonl", "labels/README.md", "labels/second-pass/*.jsonl"),
}

# what the installed package cannot work without (the model is optional: a checkout may
# hold none yet, and the service then says so and flags by keywords)
REQUIRED = ("config/monitor.toml", "templates/digest.html.j2", "templates/digest.txt.j2",
            "templates/web/base.html.j2", "models/corpus/en.jsonl")


class BuildWithResources(build_py):
    def run(self):
        # a build folder left by an earlier build (pip builds in the tree) would still hold
        # files deleted since, and they would ship: start from an empty package folder
        shutil.rmtree(Path(self.build_lib) / "monitor", ignore_errors=True)
        super().run()
        target = Path(self.build_lib) / "monitor" / "_bundled"
        missing = [name for name in REQUIRED if not (HERE / name).is_file()]
        if missing:
            # an sdist made without MANIFEST.in's lines, or a partial copy of the tree: a
            # wheel built from it would install, then find no templates, config or model
            raise SystemExit("cannot build monitor: " + ", ".join(missing) + " missing from "
                             f"{HERE} (an sdist must carry what MANIFEST.in lists)")
        for folder, patterns in BUNDLED.items():
            for pattern in patterns:
                for path in (HERE / folder).glob(pattern):
                    dest = target / folder / path.relative_to(HERE / folder)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, dest)


setup(cmdclass={"build_py": BuildWithResources})
