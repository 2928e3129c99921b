"""Re-running the analysis over stored articles: what `monitor keywords test`, the
keywords page of `monitor serve` and `monitor reclassify` share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from monitor.review import VerdictDiff

BATCH = 500


def rerun(store, analyzer, since: datetime | None, batch: int = BATCH,
          write_at: datetime | None = None, progress: Callable[[int], None] | None = None,
          limit: int | None = None, diff: VerdictDiff | None = None) -> VerdictDiff:
    """Analyse the stored articles since ``since`` batch by batch, in id order; the
    VerdictDiff against their stored verdicts. With ``write_at``, each batch's results are
    stored (one transaction per batch); an article a poll rewrote between the batch's read
    and its write keeps the poll's verdict and is counted as skipped, not as a change.
    ``limit``: stop after that many articles. ``diff``: the VerdictDiff to add to, which
    the caller keeps when the run is cut short (Ctrl-C, a locked store): what the batches
    already stored changed."""
    diff = VerdictDiff() if diff is None else diff
    after = 0
    while limit is None or diff.examined < limit:
        size = batch if limit is None else min(batch, limit - diff.examined)
        rows = store.verdict_batch(since, after, size)
        if not rows:
            break
        analyses = analyzer.analyse([(title, text, hint) for _, title, text, hint in rows])
        written = None
        if write_at is not None:
            written = set(store.write_verdicts(
                [(s.id, s.content_hash, a) for (s, *_), a in zip(rows, analyses, strict=True)],
                write_at))
        for (stored, *_), a in zip(rows, analyses, strict=True):
            if written is not None and stored.id not in written:
                diff.skip(stored)
                continue
            diff.add(stored, a.verdict.flagged, a.verdict.topics, a.verdict.reasons,
                     [m.code for m in a.countries], [m.code for m in a.minerals])
        after = rows[-1][0].id
        if progress is not None:
            progress(len(rows))
    return diff
