"""Analysts' commands: `review list|show|mark`, `keywords test`, `reclassify`.

Thin like the rest of the CLI: check the arguments (monitor.review), open the store,
call one Store method, print. ``COMMANDS`` are added to the main group by monitor.cli.
Commands refuse to run on a store that does not exist yet (exit code 2) rather than
create an empty one.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys

import click

from monitor import TOPICS
from monitor.cli.context import now, open_review_store, reviewer_name
from monitor.exceptions import MonitorError
from monitor.rerun import BATCH, rerun
from monitor.review import STATUSES, before_last_digest_text



# -- review ----------------------------------------------------------------------------

@click.group("review")
def review_group():
    """List, read and mark flagged articles.

    \b
    Examples:
      monitor review list --since 7d --country CN
      monitor review show 42
      monitor review mark 42 43 relevant --note "new quota"
    """


@review_group.command("list")
@click.option("--since", metavar="SPAN|DATE",
              help="Only articles published (else first seen) since then: 7d, 24h, 30m, 2w, "
                   "or a date such as 2025-06-01 (UTC).")
@click.option("--digest", "digest_date", metavar="DATE",
              help="Only the articles the digest of this date (YYYY-MM-DD) took: those it "
                   "shows and those its \"and N more\" lines count.")
@click.option("--topic", type=click.Choice(TOPICS), help="Only articles with this topic.")
@click.option("--country", metavar="CC", help="Only articles naming this country (ISO code, e.g. CN).")
@click.option("--mineral", metavar="M", help="Only articles naming this mineral (e.g. gallium, rare-earths).")
@click.option("--status", type=click.Choice(STATUSES),
              help="unreviewed: flagged, no verdict yet; relevant / irrelevant: the current "
                   "verdict (flagged or not).")
@click.option("--text", metavar="WORDS",
              help="Only articles whose title or text holds these words, case aside in any "
                   "alphabet (\"稀土\", \"Straße\"), as the pages' search finds them.")
@click.option("--all", "include_all", is_flag=True, help="Include articles that are not flagged.")
@click.option("--below", type=click.FloatRange(0, 1), metavar="SCORE",
              help="Only articles the model scored below SCORE for every topic (the digest's "
                   "low-confidence block, flagged by a keyword: --below 0.3).")
@click.option("--limit", default=50, metavar="N", show_default=True, type=click.IntRange(min=1),
              help="At most this many articles.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, for scripts.")
@click.pass_context
def review_list(ctx, since, digest_date, topic, country, mineral, status, text, include_all, below,
                limit, as_json):
    """List flagged articles, newest first.

    A table of id, date, source, title, countries, minerals, score, review status and
    why each was flagged; the date is the published date, else when first seen.

    \b
    Examples:
      monitor review list                            the 50 newest flagged articles
      monitor review list --since 24h --status unreviewed
      monitor review list --topic export-controls --country CN --mineral gallium
      monitor review list --since 2025-06-01 --json | jq .title
      monitor review list --digest 2025-06-02 --topic critical-minerals --limit 200
      monitor review list --digest 2025-06-02 --below 0.3
      monitor review list --text 稀土 --since 7d
    """
    from monitor.review import (article_json, check_mineral, format_table, json_text, parse_since,
                                printable)

    filters = dict(since=parse_since(since, now()) if since else None, topic=topic,
                   country=_country(country), mineral=check_mineral(mineral) if mineral else None,
                   status=status, include_unflagged=include_all, below=below, limit=limit,
                   text=" ".join(text.split()) or None if text else None)
    _, store = open_review_store(ctx)
    with store:
        if digest_date is not None:
            filters["digest"] = _digest_date(digest_date)
            if store.get_digest(filters["digest"]) is None:
                from monitor.exceptions import UsageError

                raise UsageError(f"--digest {digest_date}: the store has no digest of that "
                                 "date (`monitor digest` makes one)")
        items = store.review_list(**filters)
    if as_json:
        for item in items:
            click.echo(json_text(article_json(item)))
        return
    for line in format_table(items):
        click.echo(printable(line))
    more = " (the --limit; there may be more)" if len(items) == limit else ""
    click.echo(f"{len(items)} article(s){more}")


def _digest_date(value: str) -> str:
    from datetime import date

    from monitor.exceptions import UsageError

    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise UsageError(f"--digest: expected a date such as 2025-06-02, got {value!r}") from None


def _country(value: str | None) -> str | None:
    from monitor.exceptions import UsageError

    if value is None:
        return None
    if not re.fullmatch(r"[A-Za-z]{2}", value.strip()):    # not "ß", which upper-cases to SS
        raise UsageError(f"--country: expected an ISO 3166-1 alpha-2 code such as CN, got {value!r}")
    return value.strip().upper()


@review_group.command("show")
@click.argument("article_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The same as one JSON object.")
@click.pass_context
def review_show(ctx, article_id, as_json):
    """Show one article in full, with its reviews.

    Text, verdict, reasons, countries, minerals, language, model version,
    near-duplicates from other sources (its cluster) and the review history. ARTICLE_ID is
    a whole number in ASCII digits, as `review list` shows it (" 7", "-1", "٣" are not
    ids); a well-formed id no article has is an unknown id.

    \b
    Example:
      monitor review show 42
    """
    from monitor.exceptions import UsageError
    from monitor.review import detail_json, format_detail, json_text, parse_article_id, printable

    article_id = parse_article_id(article_id)
    _, store = open_review_store(ctx)
    with store:
        detail = store.review_detail(article_id)
    if detail is None:
        raise UsageError(f"unknown article id: {article_id} (see `monitor review list`)")
    if as_json:
        click.echo(json_text(detail_json(detail), indent=2))
        return
    for line in format_detail(detail):
        click.echo(printable(line))


@review_group.command("mark")
@click.argument("words", nargs=-1, required=True, metavar="ID... relevant|irrelevant|'not relevant'")
@click.option("--topics", "topics", multiple=True, metavar="T[,T]",
              help=f"Topics of a relevant article (repeat or comma-separate; {', '.join(TOPICS)}). "
                   "Default: the article's current topics.")
@click.option("--note", metavar="TEXT", help="A note kept with the verdict.")
@click.pass_context
def review_mark(ctx, words, topics, note):
    """Mark articles relevant or irrelevant.

    Who ($USER) and when are stored with the verdict and the note. Marking an article
    again replaces its verdict; earlier ones stay in its history. All or nothing: an
    unknown id writes nothing. Ids are whole numbers in ASCII digits, as `review list`
    shows them.

    \b
    Examples:
      monitor review mark 42 relevant
      monitor review mark 42 relevant --topics export-controls --note "licence regime"
      monitor review mark 43 44 45 irrelevant --note "gold price noise"
    """
    from monitor.exceptions import refuse_unknown_ids
    from monitor.review import check_note, check_topics, parse_mark_args, review_topics

    ids, verdict = parse_mark_args(words)
    given = check_topics(topics)
    note = check_note(note)
    _, store = open_review_store(ctx)
    with store:
        current = store.article_topics(ids)
        refuse_unknown_ids(ids, current)
        chosen = review_topics(verdict, given, {i: current[i] for i in ids})
        reviewer = reviewer_name()
        replaced = store.add_reviews(chosen, verdict, note, reviewer, now())
    for article_id, article_topics in chosen.items():
        what = f" ({', '.join(article_topics)})" if article_topics else ""
        again = "  [earlier verdict kept in history]" if article_id in replaced else ""
        click.echo(f"#{article_id}: {verdict}{what} by {reviewer}{again}")


# -- keywords test and reclassify ------------------------------------------------------

@click.group("keywords")
def keywords_group():
    """Try the keyword rules of the config against stored articles.

    \b
    Examples:
      monitor keywords test
      monitor keywords test --days 7 --examples 5
    """


@keywords_group.command("test")
@click.option("--days", default=30, show_default=True, metavar="N", type=click.IntRange(1, 36_500),
              help="Articles published (else first seen) in the last N days.")
@click.option("--examples", default=10, show_default=True, metavar="N", type=click.IntRange(min=0),
              help="Show up to N articles of each kind of change.")
@click.option("--json", "as_json", is_flag=True, help="Counts and examples as one JSON object.")
@click.pass_context
def keywords_test(ctx, days, examples, as_json):
    """Dry-run the config's rules: what would change.

    Runs the config's current keyword rules and model over the stored articles of the
    period and compares with their stored verdicts: newly flagged, no longer flagged,
    other topics — counts and examples — and how many of the newly flagged fall before
    the end of the last digest already made (reclassifying would flag them, but each
    period is mailed once: no digest would carry them). Changes nothing.

    \b
    Example (edit [keywords] in the config, then):
      monitor keywords test --days 7
      monitor reclassify --days 7      apply it
    """
    from datetime import timedelta

    from monitor.analyze import Analyzer
    from monitor.review import diff_json, format_diff

    config, store = open_review_store(ctx)
    since = now() - timedelta(days=days)
    analyzer = Analyzer.from_config(config)
    with store:
        diff = rerun(store, analyzer, since)
        missed, last = store.before_last_digest([c.article.id for c in diff.newly_flagged])
    if as_json:
        late = None if last is None else {
            "count": len(missed), "ids": missed, "last_digest": last[0],
            "period_end": last[1].strftime("%Y-%m-%dT%H:%M:%SZ")}
        click.echo(json.dumps({"days": days, "model": analyzer.model_version,
                               **diff_json(diff, examples), "before_last_digest": late},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"keywords test over the last {days} days (since {since:%Y-%m-%d %H:%M} UTC); "
               f"{_model_text(analyzer)}")
    for line in format_diff(diff, examples):
        click.echo(line)
    if missed and last is not None:
        click.echo(f"\n{before_last_digest_text(missed, len(diff.newly_flagged), last)}: reclassifying "
                   f"would flag them, no digest would mail them (each period is mailed once)")
    if analyzer.model_version:
        click.echo(f"\nnothing was changed; `monitor reclassify --days {days}` applies this.")
    else:       # reclassify refuses to replace the model's verdicts with keyword-only ones
        click.echo(f"\nnothing was changed; the model cannot be loaded, so `monitor reclassify "
                   f"--days {days}` would refuse: put a good model in place (`monitor train`), "
                   f"or `monitor reclassify --days {days} --keywords-only` applies this as shown")



@click.command("reclassify")
@click.option("--days", type=click.IntRange(1, 36_500), metavar="N",
              help="Only articles published (else first seen) in the last N days "
                   "(default: every stored article).")
@click.option("--batch-size", default=BATCH, show_default=True, metavar="N", type=click.IntRange(min=1),
              help="Articles per model call and per transaction.")
@click.option("--keywords-only", is_flag=True,
              help="Go on when the model cannot be loaded: store keyword-only verdicts with an "
                   "empty model version (what the model alone flagged is no longer flagged).")
@click.pass_context
def reclassify(ctx, days, batch_size, keywords_only):
    """Re-classify stored articles with the current rules and model.

    Stores the new verdicts (flag, score, topics, reasons, model version, time),
    language, countries and minerals, in batches; a progress bar on a terminal.
    Analysts' reviews are kept as they are. An article a poll rewrites while this
    runs keeps the poll's verdict (counted as skipped).

    Each digest period is mailed once: a newly flagged article that falls before the end
    of the last digest already made is not mailed by any later digest. It says how many
    of those there are (and their ids); `monitor review list` shows them.

    When the model of `classifier.model` cannot be loaded (missing, tampered with,
    trained with another scikit-learn) it refuses (exit code 2) and changes nothing,
    unless --keywords-only is given.

    \b
    Examples:
      monitor reclassify --days 30     after editing [keywords] or training a model
      monitor reclassify               every stored article
      monitor reclassify --keywords-only   keyword rules alone, without a model
    """
    from datetime import timedelta

    from monitor.analyze import Analyzer
    from monitor.exceptions import UsageError
    from monitor.review import format_diff

    config, store = open_review_store(ctx)
    started = now()
    since = started - timedelta(days=days) if days else None
    analyzer = Analyzer.from_config(config)
    if analyzer.model_error is not None:
        if not keywords_only:
            store.close()
            raise UsageError(
                f"model unavailable: {analyzer.model_error}; nothing was changed (reclassifying "
                f"now would replace every verdict with a keyword-only one). Fix classifier.model "
                f"or train a model, or pass --keywords-only to store keyword-only verdicts")
        click.echo(f"model unavailable ({analyzer.model_error}); --keywords-only: storing "
                   f"keyword-only verdicts with an empty model version", err=True)
    from monitor.review import VerdictDiff

    diff = VerdictDiff()
    with store:
        total = store.count_articles_since(since)
        try:
            with _progress(total) as bar:
                rerun(store, analyzer, since, batch_size, write_at=started, progress=bar.update,
                      diff=diff)
        except (KeyboardInterrupt, MonitorError) as exc:
            _cut_short(store, diff, exc)
            raise
        missed, last = store.before_last_digest([c.article.id for c in diff.newly_flagged])
    period = f"the last {days} days" if days else "all stored articles"
    click.echo(f"reclassified {diff.examined - diff.skipped} article(s) of {period}; "
               f"{_model_text(analyzer)}")
    for line in format_diff(diff, 0):
        click.echo(line)
    if diff.skipped:
        click.echo(f"skipped              {diff.skipped} (rewritten by a poll meanwhile; "
                   f"the poll's verdict stands)")
    click.echo(f"countries changed    {diff.countries_changed}")
    click.echo(f"minerals changed     {diff.minerals_changed}")
    if missed and last is not None:
        click.echo(f"\n{before_last_digest_text(missed, len(diff.newly_flagged), last)}; they are not mailed "
                   f"(each period is mailed once); `monitor review list` shows them")


def _cut_short(store, diff, exc: BaseException) -> None:
    """What a reclassify stopped by Ctrl-C or a store error already stored (whole batches),
    and the newly flagged articles of those that no digest will mail: a second run finds
    them flagged already and could no longer name them."""
    why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped ({exc})"
    click.echo(f"{why}: {diff.examined - diff.skipped} article(s) were re-classified and stored "
               f"(in whole batches), {len(diff.newly_flagged)} newly flagged; run reclassify "
               "again to finish", err=True)
    if not diff.newly_flagged:
        return
    try:
        missed, last = store.before_last_digest([c.article.id for c in diff.newly_flagged])
    except MonitorError:
        missed, last = [], None
    if missed and last is not None:
        click.echo(f"{before_last_digest_text(missed, len(diff.newly_flagged), last)}; they are "
                   "not mailed (each period is mailed once); `monitor review list` shows them",
                   err=True)


def _model_text(analyzer) -> str:
    if analyzer.model_version:
        return f"model {analyzer.model_version}"
    return "model unavailable, keyword rules only"


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _progress(total: int):
    """click's progress bar on a terminal; nothing when stdout is a pipe or a file."""
    if total and sys.stdout.isatty():
        return click.progressbar(length=total, label="reclassifying")
    return contextlib.nullcontext(_NoBar())


COMMANDS = (review_group, keywords_group, reclassify)
