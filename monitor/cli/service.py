"""Running the service: ``config check``, ``poll``, ``feeds``, ``digest``, ``run``."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from monitor.cli.context import check_store_of, config_file_of, config_of, now, refuse_missing_store
from monitor.exceptions import MonitorError, UsageError


@click.group("config")
def config_group():
    """Inspect the configuration.

    \b
    Examples:
      monitor config check
      monitor --config /etc/monitor/monitor.toml config check
    """


@config_group.command("check")
@click.pass_context
def config_check(ctx):
    """Validate the config and print it, effective values included, secrets masked;
    warn of what is valid but cannot work (no feeds, no recipients, no keyword phrases,
    an unset password variable, a mail login without encryption to another machine, a
    review URL without its key, a model file missing or changed, store or outbox folders
    that cannot be made).

    \b
    Examples:
      monitor config check
      monitor --config /etc/monitor/monitor.toml config check
    """
    from monitor.config import config_path, config_warnings, masked

    config = config_of(ctx)
    check_store_of(ctx)
    click.echo(f"# {config_path(config_file_of(ctx))}: valid")
    for warning in config_warnings(config):
        click.echo(f"warning: {warning}", err=True)
    click.echo(json.dumps(masked(config), indent=2, ensure_ascii=False))


@click.command()
@click.option("--all", "include_all", is_flag=True, help="Poll every feed, due or not.")
@click.pass_context
def poll(ctx, include_all):
    """Run one poll cycle over the due feeds (or all) and print a line per feed, a total,
    and how many feeds it left to another poller that holds them (a running service).

    Exits 0 when everything fetched was stored (a feed's own error, such as a 404, is
    recorded and shown, not a failure of the poll); 1 when the store refused some feeds
    (locked, disk full): those are polled again next cycle.

    \b
    Example:
      monitor poll --all
    """
    from monitor.service import build_poller, open_configured_store

    config = config_of(ctx)
    check_store_of(ctx)
    with open_configured_store(config) as store:
        poller = build_poller(config, store)
        report = poller.run_cycle(include_all=include_all)
        try:
            elsewhere = store.leased_elsewhere(poller.clock(), poller.owner, [
                f.url for f in report.feeds if f.status != "skipped"])
        except MonitorError:
            elsewhere = 0
    _print_cycle(report)
    if elsewhere:       # a service (or another poll) is polling them: not fetched twice
        click.echo(f"{elsewhere} feed(s) left to another poller that holds them now "
                   "(another service or `monitor poll` is polling them)")
    refused = report.not_stored()
    if refused or report.unsaved_states:
        names = ", ".join(f.name for f in refused[:5]) + (" …" if len(refused) > 5 else "")
        click.echo(f"error: the store refused {len(refused)} feeds' articles"
                   + (f" ({names})" if refused else "")
                   + (f" and {report.unsaved_states} feeds' state" if report.unsaved_states else "")
                   + "; nothing is lost: they are polled again next cycle", err=True)
        sys.exit(1)


def _print_cycle(report) -> None:
    for f in report.feeds:
        code = f" {f.http_status}" if f.http_status else ""
        line = f"{f.status:<13}{code:>4}  new {f.new:>4}  updated {f.updated:>4}  {f.name}"
        click.echo(line + (f"  — {f.error}" if f.error else ""))
    click.echo(f"total: {report.summary()}")


@click.command()
@click.pass_context
def feeds(ctx):
    """Feed health: last poll, status, errors, next check, articles — broken first.
    Times in UTC. Refuses (exit code 2) when there is no store yet rather than create
    one: `monitor poll` creates it.

    \b
    Example:
      monitor feeds
    """
    from monitor.storage import open_store

    config = config_of(ctx)
    check_store_of(ctx)
    refuse_missing_store(ctx, "no feed has been polled yet")
    # the store's feeds as they are: only `poll` and `run` make them match a config (this
    # config may not be the service's: another folder's, the example one)
    with open_store(config.store_url(), config.store.busy_timeout_seconds) as store:
        rows = store.feed_health(now(), config.poll.broken_after_errors)
    click.echo(f"{'health':<8} {'last poll (UTC)':<17} {'st':>3} {'err':>3} {'next check (UTC)':<17} "
               f"{'items':>6}  name")
    for h in rows:
        health = h.health if h.active else "removed"
        click.echo(f"{health:<8} {_when(h.last_polled_at):<17} {h.last_status or '':>3} "
                   f"{h.error_count:>3} {_when(h.next_check_at):<17} {h.articles:>6}  {h.name}")
        if h.last_error:
            click.echo(f"{'':<8} {h.last_error[:200]}")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@click.command()
@click.option("--date", "day", metavar="YYYY-MM-DD", help="The digest's local date (default: today "
              "in digest.timezone). An existing digest of that date is re-rendered from the ledger; a "
              "date before the latest digest that has none is an error (that digest covers it).")
@click.option("--preview", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the digest's HTML to FILE and send nothing (the ledger is not changed).")
@click.option("--resend", is_flag=True,
              help="Send again to every recipient whose delivery was not sent (failed, "
                   "unknown); with --recipient, to those recipients only, even if sent.")
@click.option("--recipient", "recipients", multiple=True, metavar="ADDR",
              help="With --resend: the recipient to send to again (repeatable).")
@click.pass_context
def digest(ctx, day, preview, resend, recipients):
    """Build and deliver the digest now (SMTP, or .eml files in digest.outbox_dir).
    Refuses (exit code 2) when there is no store yet rather than create one (and mail an
    empty digest from it): `monitor poll` creates it.

    \b
    Examples:
      monitor digest                      send today's digest (once; a re-run sends nothing)
      monitor digest --preview out.html   look at it first
      monitor digest --date 2025-06-03 --resend
      monitor digest --date 2025-06-03 --resend --recipient ben@example.org
    """
    from monitor.config import config_path
    from monitor.delivery import DigestJob, local_date
    from monitor.storage import open_store

    config = config_of(ctx)
    day = _check_date(day)
    today = local_date(now(), config)
    if day is not None and day > today:
        raise UsageError(f"--date {day} is in the future (today is {today} in "
                         f"{config.digest.timezone}): there is no digest for it yet")
    if recipients and not resend:
        raise UsageError("--recipient goes with --resend")
    check_store_of(ctx)
    if not preview and config.smtp is not None:
        config.smtp.password()      # a config error, which names the file, before the store
    # never an empty store (and an empty digest mailed from it) where the config's is not:
    # a cron line run from the wrong folder would tell the analysts there was no news
    refuse_missing_store(ctx, "nothing to preview yet" if preview
                         else "nothing has been polled, so there is no digest to send")
    # the feeds as the store has them: a digest run with another config (a preview from
    # another folder) had made the store's feed list that config's, and the service polled it
    with open_store(config.store_url(), config.store.busy_timeout_seconds) as store:
        job = DigestJob(store, config, config_file=str(config_path(config_file_of(ctx))))
        if preview:
            click.echo(_preview(job, now(), day, preview))
            return
        outcome = job.run(now(), day=day, resend=resend, recipients=recipients)
        earlier = []
        if day is None and not resend:
            # copies of earlier days still to send (a stop left them pending, a mail server
            # was down past the service's day of retries): a later run sends them too
            earlier = [job.run(now(), day=d) for d in store.digests_with_open_copies()
                       if d < outcome.digest_date]
    for done in earlier:
        click.echo(done.summary())
    click.echo(outcome.summary())
    if any(o.failed or o.retry or o.unknown or o.interrupted for o in (*earlier, outcome)):
        sys.exit(1)


def _check_date(day: str | None) -> str | None:
    from datetime import date

    if day is None:
        return None
    try:
        return date.fromisoformat(day).isoformat()
    except ValueError:
        raise UsageError(f"--date: not a date (YYYY-MM-DD): {day!r}") from None


def _preview(job, now, day, path) -> str:
    """Render without touching the ledger: the existing digest, or what would go out now."""
    from pathlib import Path

    html = job.preview(now, day)
    try:
        Path(path).write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--preview: cannot write {path}: {exc.strerror or exc}") from None
    return f"preview written to {path} (nothing sent)"


@click.command()
@click.pass_context
def run(ctx):
    """Run the service: poll due feeds every minute, send the digest daily at digest.send_at.

    Reloads the config file when it changes (an invalid edit is logged and ignored), and
    the model when its files change (`monitor train` replaced them).
    Stops cleanly on SIGTERM, Ctrl-C or SIGHUP (a second one exits at once).

    \b
    Example:
      monitor --config config/monitor.toml --log-format json run
    """
    from monitor.service import Service

    check_store_of(ctx)
    service = Service(config_file_of(ctx))
    sys.exit(service.run_forever())


@click.group("store")
def store_group():
    """Move the store to another database.

    \b
    Examples:
      monitor store copy 'postgresql+psycopg://monitor@db.example/monitor'
      monitor store copy sqlite:///var/monitor-copy.db
    """


@store_group.command("copy")
@click.argument("target")
@click.pass_context
def store_copy(ctx, target):
    """Copy the whole store into TARGET, a database URL holding no monitor rows yet
    (a new SQLite file, an empty PostgreSQL database): every feed's state, article,
    verdict, digest and delivery, with their ids, so that nothing is polled, judged or
    mailed again. Then point store.url (or $MONITOR_STORE_URL) at TARGET. The store
    itself is left as it was.

    Stop `monitor run` first: the copy is of the store as it was when the copy began;
    what a service writes meanwhile is not in it.

    \b
    Example:
      monitor store copy postgresql+psycopg://monitor@db.internal/monitor
    """
    from monitor.exceptions import StorageError, UsageError
    from monitor.redact import masked_url
    from monitor.storage import open_store
    from monitor.storage.copy import copy_store, foreign_tables, same_database
    from monitor.storage.store import check_store_url

    config = config_of(ctx)
    check_store_of(ctx)
    refuse_missing_store(ctx, "nothing to copy")
    try:
        check_store_url(target)
    except StorageError as exc:
        raise UsageError(f"TARGET: {str(exc).removeprefix('store.url: ')}") from None
    source_url = config.store_url()
    if same_database(source_url, target):
        raise UsageError("TARGET is the store itself: name another database")
    shown = masked_url(target)
    others = foreign_tables(target)
    if others:
        names = ", ".join(others[:5]) + (" …" if len(others) > 5 else "")
        raise UsageError(f"TARGET {shown} holds tables that are not a monitor store's ({names}): "
                         "name a new SQLite file or an empty database")
    with open_store(source_url, config.store.busy_timeout_seconds) as source, \
            open_store(target, config.store.busy_timeout_seconds) as into:
        click.echo(f"copying {masked_url(source_url)} into {shown} …", err=True)
        report = copy_store(source, into)
    counts = report.copied
    click.echo(f"copied {counts['feed']:,} feeds, {counts['article']:,} articles, "
               f"{counts['review']:,} verdicts, {counts['digest']:,} digests and "
               f"{counts['digest_delivery']:,} deliveries into {shown}")
    for table, n in report.left_out.items():
        click.echo(f"left out {n:,} {table} row(s) whose parent row is missing (deleted by hand)", err=True)
    click.echo(f"next: set store.url (or $MONITOR_STORE_URL) to {shown} and start the service")


COMMANDS = (config_group, poll, feeds, digest, run, store_group)
