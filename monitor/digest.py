"""Building and rendering the daily digest (the only module that imports Jinja2).

Pure: articles in, a rendered subject, HTML and plain text out; no database, no SMTP.

Sections. Stories about both topics come first, then export controls, then critical
minerals. ``max_items`` is shared out so that no section can eat the digest: each section
with stories gets an equal share, and what a section does not need passes to the others
(40 slots, 44 export-control and 123 critical-minerals stories: 20 and 20). Stories that a
keyword flagged but the model scored below ``LOW_CONFIDENCE`` (0.3) for every topic go to
a short "low confidence" block at the end (at most ``LOW_SLOTS``, from the slots the other
sections left); with the model unavailable nothing is "low".

Ranking. Within a section, stories are ordered by

    score = model probability (0–1)
          + 0.05 per keyword hit (at most 0.2)
          + 0.1 × log2(number of sources)        (a story ten outlets ran ranks higher)
          + 0.1 × recency (1 for the newest story of the period, 0 for the oldest)

so the probability dominates and the other terms break near-ties. The stories over a
section's share are counted ("and N more", with the command that lists them).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from monitor.types import DigestArticle, FeedHealth

TOPICS = (("export-controls", "Export controls"), ("critical-minerals", "Critical minerals"))
SECTIONS = (("both", "Export controls and critical minerals"), *TOPICS,
            ("low", "Low confidence: flagged by keywords, the model disagrees"))
LOW_CONFIDENCE = 0.3      # a keyword flag whose model probability is below this
LOW_SLOTS = 5             # at most this many low-confidence stories, after all the others
# control characters, line separators, and the bidirectional embeddings, overrides and
# isolates: a feed's U+202E in a title or outlet turned the rest of a line around in a mail
# client ("#12" read "21#", the id an analyst types into `monitor review mark`)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")


@dataclass(frozen=True)
class Story:
    """One entry of the digest: a cluster of near-duplicate articles."""

    lead: DigestArticle
    members: tuple[DigestArticle, ...]
    rank: float

    @property
    def sources(self) -> tuple[str, ...]:
        """Who carried the story: the publisher each entry names, else its feed's name."""
        return tuple(dict.fromkeys(clean_header(m.outlet) for m in self.members))

    @property
    def outlets(self) -> tuple[tuple[str, str | None], ...]:
        """(source, link to its copy) for every source, the lead's first."""
        links: dict[str, str | None] = {}
        for m in self.members:
            if links.get(name := clean_header(m.outlet)) is None:
                links[name] = safe_link(m.url)
        return tuple(links.items())

    @property
    def countries(self) -> tuple[str, ...]:
        return tuple(sorted({c for m in self.members for c in m.countries}))

    @property
    def minerals(self) -> tuple[str, ...]:
        return tuple(sorted({c for m in self.members for c in m.minerals}))


@dataclass(frozen=True)
class Section:
    topic: str                       # both | export-controls | critical-minerals
    heading: str
    stories: tuple[Story, ...]
    more: int

    @property
    def noun(self) -> str:
        """What the section's stories are called in "… and N more … stories"."""
        return "low-confidence" if self.topic == "low" else self.heading.lower()

    @property
    def list_command(self) -> str:
        """The command that lists this section's stories beyond the digest (with those of
        the period shown: ``--since`` is added where the period is known)."""
        if self.topic == "low":
            return f"monitor review list --below {LOW_CONFIDENCE}"
        topic = "export-controls" if self.topic == "both" else self.topic
        return f"monitor review list --topic {topic}"

    def list_command_since(self, start: datetime) -> str:
        """``list_command`` from the start of the digest's period (UTC, as --since reads it)."""
        return f"{self.list_command} --since {start.astimezone(timezone.utc):%Y-%m-%dT%H:%M}"

    def list_command_for(self, digest: Digest) -> str:
        """The command that lists what this section counts beyond the digest: the articles
        the digest took (``--digest``), when it is in the store; for a preview of one not
        made yet, those of its period (``--since`` reads publication dates, so a late feed's
        older stories are missing there)."""
        if not digest.recorded:
            return self.list_command_since(digest.period_start)
        total = digest.total_articles          # all it could list; the list's default is 50
        limit = f" --limit {total}" if total > 50 else ""
        return f"{self.list_command} --digest {digest.digest_date}{limit}"


@dataclass(frozen=True)
class Coverage:
    """What the period's polls covered: the digest's first line."""

    feeds: int                       # configured (active) feeds
    failing: int                     # of them, failing or broken now
    articles: int                    # articles first stored in the period
    earlier_digests: int = 0         # digests of the 7 days before, for the averages
    topic_average: dict[str, float] = field(default_factory=dict)
    mineral_average: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Digest:
    digest_date: str
    period_start: datetime
    period_end: datetime
    zone: ZoneInfo
    sections: tuple[Section, ...]
    total_articles: int
    total_stories: int
    shown: int
    table: tuple[tuple[str, dict[str, int]], ...]   # (country, {column: stories})
    mineral_counts: tuple[tuple[str, int], ...]
    topic_counts: tuple[tuple[str, int], ...] = ()   # (topic, stories), a story under each topic
    subject_counts: tuple[tuple[str, int], ...] = ()  # the same without the low-confidence ones
    top: tuple[Story, ...] = ()                      # the "Top stories" block
    table_columns: tuple[str, ...] = ()              # export-controls, then the top minerals
    unhealthy_feeds: tuple[FeedHealth, ...] = ()
    config_file: str = "config/monitor.toml"
    coverage: Coverage | None = None
    extra: dict = field(default_factory=dict)
    recorded: bool = False                           # made (in the store), not a preview of one


def clean_header(value: str, limit: int = 200) -> str:
    """One line, no control characters (a subject can never inject a header)."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def one_line(value: str, limit: int = 200) -> str:
    """``clean_header``, cut at a word boundary with "…" when longer than ``limit`` (the
    plain-text part: a reader sees that a title goes on)."""
    text = " ".join(_CONTROL.sub(" ", value).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0]
    return (cut if len(cut) > limit * 0.6 else text[:limit - 1]) + "…"


# what a link cannot hold as it is (RFC 3986): whitespace, control and format characters (a
# line separator, a bidirectional override) and "<>\"\\^`{|}". Feeds send links with spaces:
# the plain text's "…/Rare Earths Report.html" was linked up to "…/Rare", and a link's
# " Relevant: https://…" read as a review link of its own
_LINK_UNSAFE = re.compile(r'[\s"<>\\^`{|}\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f'
                          r"\u2028-\u202e\u2060-\u206f\ufeff]")


def safe_link(url: str | None) -> str | None:
    """Only http and https URLs become links, what a link cannot hold percent-encoded."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return _LINK_UNSAFE.sub(lambda m: quote(m.group(), safe=""), url.strip())


def _keyword_hits(article: DigestArticle) -> int:
    return sum(1 for r in article.reasons if r.startswith("keyword "))


def _rank(members: Sequence[DigestArticle], lead: DigestArticle, oldest: datetime, newest: datetime) -> float:
    span = (newest - oldest).total_seconds() or 1.0
    dated = [_rank_time(m) for m in members if _dated(m)]
    # an entry without a date is not taken for the newest: half the bonus, as if mid-period
    # (nor one dated after it was seen: a feed's clock ahead)
    recency = (max(dated) - oldest).total_seconds() / span if dated else 0.5
    sources = len({m.outlet for m in members})
    return (lead.score + min(0.2, 0.05 * _keyword_hits(lead)) + 0.1 * math.log2(sources)
            + 0.1 * max(0.0, min(1.0, recency)))


def _dated(article: DigestArticle) -> bool:
    return not article.undated and article.published <= article.first_seen


def _rank_time(article: DigestArticle) -> datetime:
    """The publication time recency is ranked by, held to the two days before the article
    was first seen: a story re-sent from 2019 had made every other story "the newest"."""
    return max(article.published, article.first_seen - timedelta(days=2))


def build_stories(articles: Sequence[DigestArticle], clusters: dict[int, int]) -> list[Story]:
    groups: dict[int, list[DigestArticle]] = defaultdict(list)
    for article in articles:
        groups[clusters.get(article.id, article.id)].append(article)
    if not articles:
        return []
    times = [_rank_time(a) for a in articles if _dated(a)] or [a.first_seen for a in articles]
    oldest, newest = min(times), max(times)
    stories = []
    for members in groups.values():
        # the best-scored copy leads, among those that score alike (to the two decimals the
        # digest shows) one in English, the digest's language (a story told in Polish and in
        # English led with its Polish title, the English copy a link below), then the
        # fullest: a trimmed copy whose score is higher in the eighth decimal gave a story a
        # snippet cut mid-word
        members.sort(key=lambda a: (-round(a.score, 2), a.language != "en",
                                    -len(a.title) - len(a.text), a.published, a.id))
        lead = members[0]
        stories.append(Story(lead, tuple(members), _rank(members, lead, oldest, newest)))
    return stories


def _topics(story: Story) -> set[str]:
    return {t for m in story.members for t in m.topics}


def _section_of(story: Story) -> str:
    topics = _topics(story)
    lead = story.lead
    if (lead.score < LOW_CONFIDENCE and _keyword_hits(lead)
            and "classifier unavailable" not in lead.reasons):
        return "low"        # a keyword's flag (a model's own flag, under a low
                            # classifier.threshold, is no keyword's)
    if {"export-controls", "critical-minerals"} <= topics:
        return "both"
    return "export-controls" if "export-controls" in topics else "critical-minerals"


def top_stories(sections: Sequence[Section]) -> tuple[Story, ...]:
    """The "Top stories" block: on a day with at least 6 stories shown, the 3 (from 10
    shown: 5) best — stories about both topics first, then by rank; never a low-confidence
    one. A shorter day needs no summary of itself."""
    shown = [(s.topic != "both", -story.rank, story.lead.id, story)
             for s in sections if s.topic != "low" for story in s.stories]
    size = 5 if len(shown) >= 10 else 3 if len(shown) >= 6 else 0
    return tuple(entry[-1] for entry in sorted(shown, key=lambda e: e[:3])[:size])


def share_out(sizes: Sequence[int], budget: int) -> list[int]:
    """Slots per section: equal shares of ``budget`` among the sections with stories, what
    one does not need passed on to the others (earlier sections take a remainder first)."""
    given = [0] * len(sizes)
    wanting = [i for i, n in enumerate(sizes) if n > 0]
    while budget > 0 and wanting:
        share = max(1, budget // len(wanting))
        for i in list(wanting):
            take = min(share, sizes[i] - given[i], budget)
            given[i] += take
            budget -= take
            if given[i] == sizes[i]:
                wanting.remove(i)
            if budget == 0:
                break
    return given


def build_digest(articles: Sequence[DigestArticle], clusters: dict[int, int], *, digest_date: str,
                 period_start: datetime, period_end: datetime, zone: ZoneInfo, max_items: int,
                 unhealthy_feeds: Sequence[FeedHealth] = (), config_file: str = "",
                 coverage: Coverage | None = None, recorded: bool = False) -> Digest:
    # a digest built again (a resend, a preview of a day, a recipient added later) has each
    # article's current verdict: one no longer flagged since (a reclassify, a mute phrase)
    # is left out, not filed under a topic it does not have
    articles = [a for a in articles if a.topics]
    stories = sorted(build_stories(articles, clusters), key=lambda s: (-s.rank, s.lead.id))
    by_section = {topic: [s for s in stories if _section_of(s) == topic] for topic, _ in SECTIONS}
    main = [len(by_section[topic]) for topic, _ in SECTIONS[:-1]]
    slots = share_out(main, max(max_items, 0))
    slots.append(min(len(by_section["low"]), LOW_SLOTS, max(max_items - sum(slots), 0)))
    sections = []
    for (topic, heading), n in zip(SECTIONS, slots):
        shown = by_section[topic][:n]
        sections.append(Section(topic, heading, tuple(shown), len(by_section[topic]) - len(shown)))
    return Digest(top=top_stories(sections),digest_date=digest_date, period_start=period_start, period_end=period_end,
                  zone=zone, sections=tuple(sections), total_articles=len(articles),
                  total_stories=len(stories), shown=sum(len(s.stories) for s in sections),
                  table=_country_table(stories), table_columns=_table_columns(stories),
                  mineral_counts=_mineral_counts(stories),
                  topic_counts=tuple((t, sum(1 for s in stories if t in _topics(s))) for t, _ in TOPICS),
                  subject_counts=tuple((t, sum(1 for s in stories if t in _topics(s)
                                               and _section_of(s) != "low")) for t, _ in TOPICS),
                  unhealthy_feeds=tuple(unhealthy_feeds), config_file=config_file,
                  coverage=coverage, recorded=recorded)


TABLE_COUNTRIES = 8       # rows of the country table
TABLE_MINERALS = 4        # mineral columns beside the export-controls one


def _table_columns(stories: Sequence[Story]) -> tuple[str, ...]:
    """The country table's columns: export controls, then the day's most named minerals
    (named ones: the general term "critical minerals" is no column, and as the topic's name
    it would count every story of the topic)."""
    named = [code for code, _ in _mineral_counts(stories, TABLE_MINERALS + 1)
             if code != "critical-minerals"]
    return ("export-controls", *named[:TABLE_MINERALS])


def _country_table(stories: Sequence[Story], limit: int = TABLE_COUNTRIES):
    """Country × (export controls, top minerals): stories per cell, the countries named in
    most stories first — small enough for a phone's first screen."""
    columns = _table_columns(stories)
    counts: dict[str, Counter] = defaultdict(Counter)
    stories_of: Counter = Counter()
    for story in stories:
        cells = {c for c in columns[1:] if c in story.minerals}
        if "export-controls" in _topics(story):
            cells.add("export-controls")
        for code in story.countries:
            stories_of[code] += 1
            counts[code].update(cells)
    # a country whose stories fall in none of the columns would be an empty row
    ordered = sorted((code for code in stories_of if counts[code]),
                     key=lambda code: (-stories_of[code], code))[:limit]
    return tuple((code, dict(counts[code])) for code in ordered)


def _mineral_counts(stories: Sequence[Story], limit: int = 12):
    counts = Counter(code for s in stories for code in s.minerals)
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])


def subject(template: str, digest: Digest) -> str:
    """The subject line: ``{date}``, ``{count}`` (stories), ``{counts}`` (stories per topic,
    a both-topic story counted under each, then the low-confidence ones apart, as the
    digest's sections have them) and ``{lead}`` (the first story's title, cut at a word
    with "…" past 80 characters)."""
    per_topic = dict(digest.subject_counts)
    low = next((len(s.stories) + s.more for s in digest.sections if s.topic == "low"), 0)
    # "1 on export controls" (a topic's name is no plural noun to count)
    parts = [f"{per_topic[t]} on {heading.lower()}" for t, heading in TOPICS if per_topic.get(t)]
    counts = ", ".join(parts + ([f"{low} of low confidence"] if low else [])) or "nothing new"
    lead = next((s.stories[0].lead for s in digest.sections if s.stories), None)
    title = one_line(lead.title or lead.text, 80) if lead is not None else ""
    line = template.format(date=digest.digest_date, count=digest.total_stories, counts=counts,
                           lead=title)
    # a template of {lead} alone on a day without stories would leave the subject empty
    return clean_header(line.rstrip(" —-:")) or f"Critical minerals & export controls {digest.digest_date}"


_KEYWORD = re.compile(r'^keyword "(.*)"$')
# English for the export-control words of the default keywords in other languages (the
# minerals get theirs from monitor/data/minerals.tsv); a key matches the start of a term
GLOSSARY = {
    "出口管制": "export control", "出口管控": "export control", "出口许可": "export licence",
    "实体清单": "entity list", "實體清單": "entity list", "两用物项": "dual-use items",
    "exportkontroll": "export control", "ausfuhrkontroll": "export control",
    "exportverbot": "export ban", "ausfuhrverbot": "export ban", "exportbeschränk": "export restriction",
    "ausfuhrgenehmig": "export licence", "exportgenehmig": "export licence",
    "kontrol eksport": "export control", "kontrola eksport": "export control",
    "kontrol": "control", "zakaz eksportu": "export ban", "eksport": "export",
    "surowc krytyczn": "critical raw materials", "surowce krytyczn": "critical raw materials",
    "kritische rohstoff": "critical raw materials", "kritischer rohstoff": "critical raw materials",
    "수출 통제": "export control", "수출통제": "export control", "수출 규제": "export restriction",
    "輸出規制": "export restriction", "輸出管理": "export control",
}
_MODEL = re.compile(r"^classifier (\S+) ([0-9.]+)$")
_HYPHENS = re.compile(r"[-\u2010\u2011\u2012\u2013\u2014]")
_FROM_STORY = re.compile(r'^from story "(.*)"$')


def _glossed(term: str, language: str | None) -> str:
    """``term`` with its English in brackets, for an article not in English: from the
    glossary, else the minerals the term names ("稀土 (rare earths)")."""
    if language in (None, "en"):
        return term
    bare = term.replace("…", "").casefold()
    english = next((GLOSSARY[key] for key in sorted(GLOSSARY, key=len, reverse=True)   # longest
                    if bare.startswith(key)), None)
    if english is None:
        from monitor.minerals import extract_minerals, mineral_name

        english = ", ".join(mineral_name(m.code) for m in extract_minerals(term.replace("…", ""), "")) or None
    return f"{term} ({english})" if english and english.casefold() != bare else term


def passage_snippet(article: DigestArticle, limit: int = 280) -> str:
    """The snippet of a story: for an item flagged from one passage of a multi-story text
    (a bulletin), that passage; else the start of the text, or, for a long text whose
    start does not name what flagged it (a numbered round-up of markets, chips and, as
    its twelfth item, an export ban on tungsten scrap), the sentence that first does."""
    for reason in article.reasons:
        if match := _FROM_STORY.match(reason):
            start = article.text.find(match.group(1).rstrip("…").strip())
            if start > 0:
                return snippet(article.text[start:], limit)
    start = _first_mention(article, limit)
    return "… " + snippet(article.text[start:], limit) if start else snippet(article.text, limit)


# where a sentence or an item of a numbered list starts: after a full stop and a space (not
# the one in "$1.1 billion" nor "8. ", nor an initial's or "No."'s, nor one a lower-case
# word follows: "the U.S. ministry", "approx. five"), a Chinese or Japanese full stop, a line
# break, or before "12、" or "8)" (not before a decimal: "rose 5.5 percent")
_SENTENCE_START = re.compile(r"(?<=[^\d\s])(?<!\b[A-Z])(?<!\bNo)(?<!\bNr)[.!?;](?=\s+[^\sa-z])\s*"
                             r"|[。！？；\n]\s*"
                             r"|\s(?=\d{1,2}[、.．)）][^\s\d])|(?<=[\s】])(?=[①-⑳])")


def _first_mention(article: DigestArticle, limit: int) -> int:
    """Where the sentence starts that first names a keyword the article matched or a
    mineral it is filed under, when that lies beyond what a snippet from the start shows
    (0: the start will do)."""
    text = article.text
    if len(text) <= limit:
        return 0
    found = []
    for reason in article.reasons:
        if (match := _KEYWORD.match(reason)) and (hit := _keyword_hit(match.group(1), text)):
            found.append(hit.start())
    if article.minerals:
        from monitor.minerals import extract_minerals

        offset = len(article.title) + 1
        found += [start - offset for m in extract_minerals(article.title, text)
                  if m.code in article.minerals for start, _ in m.spans if start >= offset]
    if not found or min(found) < limit - 40:       # the start shows it
        return 0
    first = min(found)
    # (the look-aheads may read the mention's first characters; a start lies before it)
    starts = [m.end() for m in _SENTENCE_START.finditer(text, max(0, first - 200), first + 4)
              if m.end() <= first]
    return starts[-1] if starts else 0      # never from mid-sentence


def _keyword_hit(rule: str, text: str) -> re.Match[str] | None:
    """Where ``text`` holds what a keyword rule finds, found as the rules find it: a
    phrase's words on word boundaries ("tin" is not the one in "Argentina"), a space or
    hyphen between them as any run of spaces and hyphens, a ``*`` word going on ("seltene*
    Erden" finds "Seltener Erden"); a ``re:`` rule's regex as written, any case."""
    from monitor.exceptions import ConfigError
    from monitor.keywords import phrase_regex

    try:
        source = rule[3:] if rule.startswith("re:") else phrase_regex("", rule)
        return re.search(source, text, re.IGNORECASE)
    except (ConfigError, re.error):
        return None


def why(story: Story, section: str) -> str:
    """Why a story was flagged, in an analyst's words: the matched terms once each (and
    whether the title has them), the model's probability for the section's topic, the
    passage of a multi-story text that scored it. The raw reasons stay in
    ``monitor review show``."""
    lead = story.lead
    topics = {"both": ("export-controls", "critical-minerals"),
              "low": ("export-controls", "critical-minerals")}.get(section, (section,))
    terms: dict[str, str] = {}
    probability, passage, unavailable, muted = None, None, False, None
    for reason in lead.reasons:
        if match := _KEYWORD.match(reason):
            phrase = match.group(1).strip()
            shown = phrase[:-1].replace("*", "") + "…" if phrase.endswith("*") else phrase.replace("*", "")
            terms.setdefault(phrase.replace("*", "").casefold(), shown)
        elif match := _MODEL.match(reason):
            if match.group(1) in topics:
                value = float(match.group(2))
                probability = value if probability is None else max(probability, value)
        elif match := _FROM_STORY.match(reason):
            passage = match.group(1)
        elif reason == "classifier unavailable":
            unavailable = True
        elif reason.startswith("muted by "):
            muted = reason.removeprefix("muted by ")
    parts = []
    if terms:
        # a space in a phrase matches a hyphen too ("rare earth" finds "Rare-earth")
        title = _HYPHENS.sub(" ", lead.title.casefold())
        words = ", ".join(_glossed(term, lead.language) for term in terms.values())
        parts.append(f"{words} in the title"
                     if all(_HYPHENS.sub(" ", t) in title for t in terms) else words)
    if probability is not None:
        parts.append(f"model {probability:.2f}")
    elif unavailable:
        parts.append("keywords only (model unavailable)")
    if passage:
        parts.append(f"from the passage “{passage}”")
    if muted:           # not flagged after all (the review pages show such an item)
        parts.append(f"muted by {muted}")
    return " · ".join(parts) or "flagged"


# -- rendering --------------------------------------------------------------------------
_ENV = None


def environment(templates_dir: Path | None = None):
    """The one Jinja2 environment: autoescape on, undefined names are errors."""
    global _ENV
    if _ENV is None or templates_dir is not None:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined

        from monitor.resources import templates_dir as default_dir

        env = Environment(loader=FileSystemLoader(str(templates_dir or default_dir())),
                          autoescape=_autoescape, undefined=StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True, keep_trailing_newline=True)
        env.filters.update(safe_link=safe_link, country=_country_name, mineral=_mineral_name,
                           snippet=snippet, one_line=one_line, wrap=wrap,
                           # a label and its count on one line of the plain text: glued with
                           # no-break spaces before wordwrap, which breaks at spaces only,
                           # then unglued ("Export controls and critical minerals:" had ended
                           # one line, its "17" begun the next)
                           glue=lambda s: str(s).replace(" ", "\u00a0"),
                           unglue=lambda s: str(s).replace("\u00a0", " "))
        env.globals.update(shade=shade, why=why, passage=passage_snippet)
        if templates_dir is not None:
            return env
        _ENV = env
    return _ENV


def _autoescape(name: str | None) -> bool:
    """Escape everything except the plain-text part (which is never read as HTML)."""
    return not (name or "").endswith(".txt.j2")


def _country_name(code: str) -> str:
    try:
        from monitor.countries import country_name
    except ImportError:
        return code
    return country_name(code)


def _mineral_name(code: str) -> str:
    try:
        from monitor.minerals import mineral_name
    except ImportError:
        return code
    return mineral_name(code)


def snippet(text: str, limit: int = 280) -> str:
    """About three lines of the article's text, cut at a word boundary (control and
    bidirectional override characters as spaces)."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return (cut if len(cut) > limit * 0.6 else text[:limit]) + " …"


# a line may not start with these (they stay at the end of the line before, a column over)
_CLOSING = frozenset("。，、．，：；！？）」』】》〉”’・ー〜…,.:;!?)]}")


def _columns(char: str) -> int:
    import unicodedata

    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def wrap(text: str, width: int = 76, wrapstring: str = "\n  ") -> str:
    """The plain text's word wrap (Jinja's ``wordwrap`` with ``break_long_words=False``)
    for text in any script: lines of at most ``width`` columns, a Chinese, Japanese or
    Korean character counting two (as a terminal and a mail client's fixed font show it),
    broken at spaces and also between two Chinese or Japanese characters (they have no
    spaces to break at: a 300-character paragraph had stayed one line 600 columns wide),
    never before closing punctuation; a word longer than a line stays whole."""
    lines: list[str] = []
    line, used = "", 0
    for token, space_before in _tokens(text):
        size = sum(_columns(c) for c in token)
        gap = 1 if space_before and line else 0
        if line and used + gap + size > width and not (token in _CLOSING and not space_before):
            lines.append(line)
            line, used, gap = "", 0, 0
        line += " " * gap + token
        used += gap + size
    if line:
        lines.append(line)
    return wrapstring.join(lines)


_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")


def _tokens(text: str):
    """(token, whether a space came before it): the words of scripts written with spaces
    (Korean among them: its words are not broken), and each other wide character (Chinese,
    Japanese, their punctuation) on its own."""
    word, space = "", False
    for char in text:
        if char.isspace():
            if word:
                yield word, space
                word = ""
            space = True
        elif _columns(char) == 2 and not _HANGUL.match(char):
            if word:
                yield word, space
                word, space = "", False
            yield char, space
            space = False
        else:
            word += char
    if word:
        yield word, space


def shade(count: int, top: int) -> str:
    """Background colour for a table cell: darker for more stories (no images, no CSS vars)."""
    if not count:
        return "#ffffff"
    level = count / max(top, 1)
    return ("#fde7d9", "#f9c6a5", "#f39c6b", "#e0703a")[min(3, int(level * 3.999))]


def story_time(article: DigestArticle, digest: Digest) -> str:
    """When a story was published, in the digest's zone: "03 Jun 14:00"; with its year when
    it lies days before the period ("03 Jun 2019 14:00", a story re-sent years later had
    looked like yesterday's); "undated, seen …" for an entry that gave no usable date or one
    after the digest was made (a feed's clock ahead)."""
    if article.undated or article.published > digest.period_end:
        return "undated, seen " + article.first_seen.astimezone(digest.zone).strftime("%d %b %H:%M")
    shown = article.published.astimezone(digest.zone)
    old = article.published < digest.period_start - timedelta(days=OLD_DAYS)
    return shown.strftime("%d %b %Y %H:%M" if old else "%d %b %H:%M")


OLD_DAYS = 7        # a story published this long before its digest's period shows its year


TABLE_INDENT = 27          # the plain text's country rows: "  China" padded to 24, a space


def table_row(name: str, counts: dict[str, int], columns: Sequence[str],
              column_names: dict[str, str], width: int = 78) -> str:
    """A plain-text row of the country table: the country, then "column: count" cells,
    wrapped within ``width`` under the first cell, a cell never split from its count."""
    import textwrap

    cells = [f"{column_names[c]}: {counts[c]}".replace(" ", "\u00a0") for c in columns if counts.get(c)]
    body = ", ".join(cells)
    lines = textwrap.wrap(body, width=width - TABLE_INDENT, break_long_words=False,
                          break_on_hyphens=False) or [""]
    first = f"  {name:<{TABLE_INDENT - 3}} {lines[0]}"
    return "\n".join([first, *(" " * TABLE_INDENT + line for line in lines[1:])]).replace("\u00a0", " ")


def _context(digest: Digest, subject_line: str, nothing_new: bool, links=None) -> dict:
    top = max((n for _, counts in digest.table for n in counts.values()), default=0)
    local = lambda dt: dt.astimezone(digest.zone)  # noqa: E731
    column_names = {c: dict(TOPICS).get(c) or _mineral_name(c) for c in digest.table_columns}
    return dict(d=digest, subject=subject_line, nothing_new=nothing_new, local=local, top=top,
                story_time=lambda a: story_time(a, digest),
                table_row=lambda name, counts: table_row(name, counts, digest.table_columns,
                                                         column_names),
                links=links,
                topics=[t for t, _ in TOPICS], headings=dict(TOPICS), column_names=column_names)


def render(digest: Digest, subject_line: str, templates_dir: Path | None = None,
           links=None) -> tuple[str, str]:
    """(HTML with CSS inlined, plain text) of a digest. ``links``: one recipient's review
    links (monitor.tokens.ReviewLinks), or None for the ids and the CLI command only."""
    import css_inline

    env = environment(templates_dir)
    context = _context(digest, subject_line, digest.total_stories == 0, links)
    html = env.get_template("digest.html.j2").render(**context)
    text = env.get_template("digest.txt.j2").render(**context)
    # the @media rule for phones stays in a <style> of its own (inlined styles cannot hold it)
    return css_inline.CSSInliner(keep_at_rules=True).inline(html), text
