"""One poll cycle in a fresh process, for the memory cases of the hostile suite.

stdin: the config as JSON (``Config.model_dump(mode="json", by_alias=True)``).
stdout, last line: JSON with the per-feed reports, the number of stored articles, and
the peak RSS (VmHWM) in MB after imports and store set-up ("baseline") and after
the cycle ("peak"). Not a test module; run by tests/hostile/hostile_kit.py.
"""

import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # tests/, for storeview

from storeview import count_articles  # noqa: E402


def peak_mb() -> float:
    """This process's peak RSS: VmHWM, not ru_maxrss, which Linux carries over exec from
    the parent (so a child of a large pytest process would report pytest's peak)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from monitor.config import parse_config
    from monitor.pipeline import Poller
    from monitor.service import open_configured_store

    config = parse_config(json.loads(sys.stdin.read()), "probe.json")
    with open_configured_store(config) as store:
        import feedparser  # noqa: F401  (imported lazily by parse; count it in the baseline)

        baseline = peak_mb()
        report = Poller(store, config).run_cycle(include_all=True)
        peak = peak_mb()
        articles = count_articles(store)
    feeds = [{"name": f.name, "status": f.status, "http_status": f.http_status, "new": f.new,
              "error": f.error} for f in report.feeds]
    print(json.dumps({"feeds": feeds, "articles": articles, "baseline_mb": round(baseline, 1),
                      "peak_mb": round(peak, 1), "duration": round(report.duration, 2)}))


if __name__ == "__main__":
    main()
