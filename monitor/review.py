"""Analysts' review: the values, checks, diffs and text that `monitor review`,
`monitor keywords test` and `monitor reclassify` show. Pure: no database, no clock, no CLI.

    parse_since("7d", now)            → the start of the period (7d, 24h, 30m, 2w, or a date)
    parse_mark_args(("12", "13", "relevant"))  → ((12, 13), "relevant")
    parse_article_id("12")            → 12 (the ids both commands take)
    review_topics(...)                → the topics a new review records
    diff_verdicts(stored, fresh)      → what a re-classification would change
    format_table / format_detail / format_diff  → the text the commands print
"""

from __future__ import annotations

import difflib
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from monitor import TOPICS
from monitor.exceptions import UsageError
from monitor.numbers import is_whole
from monitor.types import ArticleDetail, ArticleView, Review, StoredVerdict

VERDICTS = ("relevant", "irrelevant")
STATUSES = ("unreviewed", *VERDICTS)
_SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Change:
    """One article whose verdict a re-run changes."""

    article: StoredVerdict
    topics: tuple[str, ...]          # the new topics
    reasons: tuple[str, ...]         # the new reasons


@dataclass
class VerdictDiff:
    """What re-classifying a set of articles changes, accumulated batch by batch."""

    examined: int = 0
    newly_flagged: list[Change] = field(default_factory=list)
    unflagged: list[Change] = field(default_factory=list)
    topic_changes: list[Change] = field(default_factory=list)
    countries_changed: int = 0
    minerals_changed: int = 0
    skipped: int = 0         # examined, but rewritten by a poll before the result was stored

    @property
    def unchanged(self) -> int:
        return (self.examined - self.skipped - len(self.newly_flagged) - len(self.unflagged)
                - len(self.topic_changes))

    def add(self, stored: StoredVerdict, flagged: bool, topics: Sequence[str],
            reasons: Sequence[str], countries: Sequence[str] = (),
            minerals: Sequence[str] = ()) -> None:
        self.examined += 1
        change = Change(stored, tuple(topics), tuple(reasons))
        if flagged and not stored.flagged:
            self.newly_flagged.append(change)
        elif stored.flagged and not flagged:
            self.unflagged.append(change)
        elif flagged and tuple(topics) != stored.topics:
            self.topic_changes.append(change)
        self.countries_changed += tuple(sorted(countries)) != tuple(sorted(stored.countries))
        self.minerals_changed += tuple(sorted(minerals)) != tuple(sorted(stored.minerals))

    def skip(self, stored: StoredVerdict) -> None:
        """An article examined whose result was not stored: a poll rewrote it in between
        (and analysed its new text), so nothing of this re-run applies to it."""
        self.examined += 1
        self.skipped += 1

    def counts(self) -> dict[str, int]:
        return {"articles": self.examined, "newly_flagged": len(self.newly_flagged),
                "no_longer_flagged": len(self.unflagged), "topic_changes": len(self.topic_changes),
                "unchanged": self.unchanged}


# -- checks ----------------------------------------------------------------------------

def parse_since(value: str, now: datetime) -> datetime:
    """``7d``, ``24h``, ``30m``, ``2w`` before ``now``, or a date (``2025-06-01``, midnight
    UTC) or an ISO date-time (UTC unless it says otherwise)."""
    match = _SPAN.match(value)
    if match:
        try:
            return now - timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
        except OverflowError:       # before the year 1: everything
            return datetime.min.replace(tzinfo=timezone.utc)
    try:
        day = date.fromisoformat(value.strip())
        return datetime.combine(day, time(0), tzinfo=timezone.utc)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"--since: expected a span such as 7d, 24h, 30m or a date such as "
                         f"2025-06-01, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def check_mineral(value: str) -> str:
    """A mineral filter's id ("Rare earths" and "rare earths" are "rare-earths"), refused
    with the nearest id when the table has no such mineral (it would match nothing)."""
    from monitor.minerals import mineral_ids

    mineral = "-".join(value.strip().lower().replace("_", " ").split())
    known = mineral_ids()
    if mineral in known:
        return mineral
    close = difflib.get_close_matches(mineral, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(f"no mineral {value!r}: {hint}ids are {', '.join(known)}")


_NOT_RELEVANT = re.compile(r"not[\s_-]*relevant|irrelevant", re.IGNORECASE)   # the page's words


def check_verdict(word: str) -> str:
    """The verdict a word names, case aside ("Relevant", as "IRRELEVANT" and "Not Relevant"
    already were)."""
    if word.strip().lower() in VERDICTS:
        return word.strip().lower()
    if _NOT_RELEVANT.fullmatch(word.strip()):
        return "irrelevant"
    close = difflib.get_close_matches(word.lower(), VERDICTS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"unknown verdict {word!r}: use relevant or irrelevant{hint}")


def check_topics(names: Iterable[str]) -> tuple[str, ...]:
    """Topic names (commas allowed inside one value), checked against monitor.TOPICS."""
    found = [n.strip() for name in names for n in name.split(",") if n.strip()]
    for name in found:
        if name not in TOPICS:
            close = difflib.get_close_matches(name, TOPICS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"unknown topic {name!r}: topics are {', '.join(TOPICS)}{hint}")
    return tuple(t for t in TOPICS if t in found)


MAX_NOTE = 2_000        # characters of a review note, in the browser and on the command line


# control characters but tab and newline, and the invisible ones that reorder or break what
# follows on a terminal or a page: bidi overrides and isolates, line/paragraph separators, BOM
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
                              "\u2028\u2029\ufeff]")


def check_note(note: str | None) -> str | None:
    """The note as typed, without the blanks around it (None when empty); refused when
    longer than ``MAX_NOTE`` or holding a control character (an escape sequence would act
    on the terminal of whoever runs `monitor review show`)."""
    note = note.replace("\r\n", "\n").strip() if note is not None else ""
    if not note:
        return None
    if len(note) > MAX_NOTE:
        raise UsageError(f"the note has {len(note):,} characters; at most {MAX_NOTE:,} are "
                         "kept: shorten it")
    bad = _UNSAFE_CHARS.search(note)
    if bad:
        raise UsageError(f"the note holds a control character (U+{ord(bad.group()):04X}) at "
                         f"character {bad.start() + 1:,}: only text, tabs and line breaks are kept")
    return note


def printable(text: str) -> str:
    """``text`` with control characters (but tab and newline) shown as "\\xNN": notes stored
    before they were refused, titles from feeds."""
    return _UNSAFE_CHARS.sub(_escaped, text)


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def json_text(value, indent: int | None = None) -> str:
    """JSON for a terminal: as ``json.dumps`` with the text readable (not \\u-escaped),
    but the control and reordering characters above escaped, so that the output stays
    JSON and acts on no terminal."""
    import json

    return _UNSAFE_CHARS.sub(lambda m: f"\\u{ord(m.group()):04x}",
                                json.dumps(value, ensure_ascii=False, indent=indent))


def parse_mark_args(words: Sequence[str]) -> tuple[tuple[int, ...], str]:
    """``ID… VERDICT`` → (ids, verdict); the verdict is the last word."""
    if not words:
        raise UsageError("expected article ids and a verdict: monitor review mark 12 13 relevant")
    *ids, verdict = words
    if ids and ids[-1].lower() == "not" and verdict.lower() == "relevant":    # "… not relevant"
        *ids, verdict = *ids[:-1], "irrelevant"
    if is_whole(verdict):
        raise UsageError(f"the last argument must be the verdict (relevant or irrelevant), "
                         f"got the id {verdict}")
    verdict = check_verdict(verdict)
    if not ids:
        raise UsageError(f"which article is {verdict}? give one or more ids before the verdict")
    return tuple(dict.fromkeys(parse_article_id(i) for i in ids)), verdict


def parse_article_id(text: str) -> int:
    """An article id as `review show` and `review mark` take it: ASCII digits only (not
    " 7", "+7", "-1", "٣" or "３", which ``int()`` would take); UsageError otherwise. Whether
    such an article exists is the store's to say."""
    if not is_whole(text):
        raise UsageError(f"not an article id: {text!r} (ids are whole numbers, see "
                         f"`monitor review list`)")
    return int(text)


def review_topics(verdict: str, given: tuple[str, ...],
                  article_topics: Mapping[int, tuple[str, ...]],
                  ask: str = f"say which with --topics ({', '.join(TOPICS)})"
                  ) -> dict[int, tuple[str, ...]]:
    """The topics each new review records: none for irrelevant; for relevant the given
    ones, else the article's current topics (an article without topics needs them given:
    ``ask`` says how, on the command line by default)."""
    if verdict == "irrelevant":
        if given:
            raise UsageError("--topics goes only with relevant (an irrelevant article has no topics)")
        return {a: () for a in article_topics}
    if given:
        return {a: given for a in article_topics}
    bare = [a for a, topics in article_topics.items() if not topics]
    if bare:
        raise UsageError(f"article {', '.join(map(str, bare))} has no topics: {ask}")
    return dict(article_topics)


# -- output ----------------------------------------------------------------------------

def _day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "-"


def _stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _cut(value: str, width: int) -> str:
    """``value`` on one line, cut to ``width`` terminal columns (CJK characters take two)."""
    value = " ".join(value.split())
    if _columns(value) <= width:
        return value
    out, used = [], 1                                   # the "…" takes one
    for ch in value:
        used += _columns(ch)
        if used > width:
            break
        out.append(ch)
    return "".join(out) + "…"


def _columns(value: str) -> int:
    """Terminal columns ``value`` takes: two for wide (CJK) characters, one for others."""
    import unicodedata

    if value.isascii():
        return len(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in value)


def _score(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


_COLUMNS = (("id", 6, ">"), ("date", 10, "<"), ("source", 16, "<"), ("title", 48, "<"),
            ("countries", 12, "<"), ("minerals", 20, "<"), ("score", 5, ">"),
            ("review", 10, "<"), ("reasons", 0, "<"))


def _row(values: Sequence[str]) -> str:
    cells = []
    for value, (_, width, align) in zip(values, _COLUMNS, strict=True):
        if not width:
            cells.append(value)
            continue
        value = _cut(value, width)
        pad = " " * (width - _columns(value))
        cells.append(pad + value if align == ">" else value + pad)
    return "  ".join(cells).rstrip()


def format_table(items: Sequence[ArticleView]) -> list[str]:
    """The lines of `monitor review list`: a header, then one line per article."""
    lines = [_row([name for name, _, _ in _COLUMNS])]
    for a in items:
        status = "" if a.review is None else a.review.verdict
        lines.append(_row([str(a.id), _day(a.published), a.source, a.title,
                           ",".join(a.countries), ",".join(a.minerals), _score(a.score),
                           status, _cut("; ".join(a.reasons), 70)]))
    return lines


def review_json(review: Review | None) -> dict | None:
    if review is None:
        return None
    return {"verdict": review.verdict, "topics": list(review.topics), "note": review.note,
            "reviewer": review.reviewer, "at": review.created_at.isoformat(),
            "current": review.current, "text_changed": review.text_changed}


def article_json(a: ArticleView, text: bool = False) -> dict:
    """One article as JSON (`review list --json`; `review show --json` adds the text)."""
    data = {"id": a.id, "published": a.published.isoformat(), "source": a.source,
            "publisher": a.publisher,
            "title": a.title, "url": a.url, "flagged": a.flagged, "score": a.score,
            "topics": list(a.topics), "countries": list(a.countries),
            "minerals": list(a.minerals), "reasons": list(a.reasons), "language": a.language,
            "model_version": a.model_version, "cluster_id": a.cluster_id,
            "status": a.status, "review": review_json(a.review)}
    if text:
        data["first_seen"] = a.first_seen.isoformat()
        data["classified_at"] = a.classified_at.isoformat() if a.classified_at else None
        data["text"] = a.text
    return data


def detail_json(detail: ArticleDetail) -> dict:
    data = article_json(detail.article, text=True)
    data["siblings"] = [{"id": s.id, "published": s.published.isoformat(), "source": s.source,
                         "title": s.title, "url": s.url} for s in detail.siblings]
    data["history"] = [review_json(r) for r in detail.history]
    return data


def _flag_text(a: ArticleView) -> str:
    if a.flagged is None:
        return "not classified"
    return ("flagged: " + ", ".join(a.topics)) if a.flagged else "not flagged"


def _history_line(r: Review) -> str:
    topics = f" ({', '.join(r.topics)})" if r.topics else ""
    note = f" — {r.note}".replace("\n", "\n      ") if r.note else ""    # lines under it
    mark = "" if r.current else "  [superseded]"
    return f"  {_stamp(r.created_at)}  {r.reviewer}: {r.verdict}{topics}{note}{mark}"


def format_detail(detail: ArticleDetail, width: int = 88) -> list[str]:
    """The lines of `monitor review show`."""
    a = detail.article
    model = a.model_version or "none (keywords only)"
    lines = [f"#{a.id}  {a.title}", "",
             f"source       {a.source}",
             f"url          {a.url or '-'}",
             f"published    {'(no date given)' if a.undated else _stamp(a.published)}"
             f"   (first seen {_stamp(a.first_seen)})",
             f"language     {a.language or '-'}",
             f"verdict      {_flag_text(a)}   score {_score(a.score)}",
             f"countries    {', '.join(a.countries) or '-'}",
             f"minerals     {', '.join(a.minerals) or '-'}",
             f"model        {model}   (classified {_stamp(a.classified_at)})",
             f"review       {_review_text(a.review)}",
             "", "reasons:"]
    lines += [f"  - {r}" for r in a.reasons] or ["  (none)"]
    lines += ["", _siblings_title(a, detail.siblings)]
    lines += [f"  #{s.id:<6} {_day(s.published)}  {s.source}: {_cut(s.title, 60)}"
              for s in detail.siblings]
    lines += ["", "review history:"]
    lines += [_history_line(r) for r in detail.history] or ["  (not reviewed)"]
    lines += ["", "text:"]
    for paragraph in a.text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, width, initial_indent="  ", subsequent_indent="  ") or [""]
    return lines


def _review_text(review: Review | None) -> str:
    if review is None:
        return "unreviewed"
    topics = f" ({', '.join(review.topics)})" if review.topics else ""
    changed = (" — given on an earlier text (the feed rewrote the article since): not used "
               "in training; mark it again" if review.text_changed else "")
    return f"{review.verdict}{topics} by {review.reviewer}, {_stamp(review.created_at)}{changed}"


def _siblings_title(a: ArticleView, siblings: Sequence[ArticleView]) -> str:
    if a.cluster_id is None:
        return "cluster: none (no near-duplicates recorded)"
    sources = sorted({s.source for s in siblings})
    return (f"cluster {a.cluster_id}: {len(siblings)} other article(s)"
            + (f" from {', '.join(sources)}" if sources else ""))


def _change_line(c: Change) -> str:
    a = c.article
    before = ", ".join(a.topics) or "-"
    after = ", ".join(c.topics) or "-"
    why = "; ".join(c.reasons)
    return (f"  #{a.id:<6} {_day(a.published)}  {_cut(a.source, 16)}: {_cut(a.title, 60)}\n"
            f"           topics {before} → {after}   ({_cut(why, 90)})")


def before_last_digest_text(missed: Sequence[int], flagged: int, last: tuple[str, datetime],
                            ids: bool = True) -> str:
    """How many of ``flagged`` newly flagged articles fall before the end of the last
    digest already made (``last``: its date and period end), with their ids (``ids``), as
    ``monitor reclassify``, ``monitor keywords test`` and the keywords page say it."""
    text = (f"{len(missed)} of the {flagged} newly flagged article(s) fall before the end of "
            f"the last digest already made ({last[0]}, its period ended "
            f"{last[1]:%Y-%m-%d %H:%M} UTC)")
    if ids:
        text += ": " + ", ".join(f"#{i}" for i in missed[:20]) + (" …" if len(missed) > 20 else "")
    return text


def format_diff(diff: VerdictDiff, examples: int) -> list[str]:
    """Counts, then up to ``examples`` articles of each kind of change."""
    lines = [f"articles examined    {diff.examined}",
             f"newly flagged        {len(diff.newly_flagged)}",
             f"no longer flagged    {len(diff.unflagged)}",
             f"topic changes        {len(diff.topic_changes)}",
             f"unchanged            {diff.unchanged}"]
    for title, changes in (("newly flagged", diff.newly_flagged),
                           ("no longer flagged", diff.unflagged),
                           ("topic changes", diff.topic_changes)):
        if changes and examples > 0:
            shown = changes[:examples]
            more = f", first {len(shown)}" if len(changes) > len(shown) else ""
            lines += ["", f"{title} ({len(changes)}{more}):"]
            lines += [_change_line(c) for c in shown]
    return lines


def diff_json(diff: VerdictDiff, examples: int) -> dict:
    def items(changes: list[Change]) -> list[dict]:
        return [{"id": c.article.id, "title": c.article.title, "source": c.article.source,
                 "before": list(c.article.topics), "after": list(c.topics),
                 "reasons": list(c.reasons)} for c in changes[:examples]]

    return {**diff.counts(), "examples": {
        "newly_flagged": items(diff.newly_flagged), "no_longer_flagged": items(diff.unflagged),
        "topic_changes": items(diff.topic_changes)}}
