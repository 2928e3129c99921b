"""CLI commands around the classifier: `classify`, `evaluate`, `train`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from monitor.cli.context import config_file_of, config_of, missing_store
from monitor.exceptions import UsageError


def read_articles(source: str, labelled: bool = False, pool: Path | None = None) -> list[dict]:
    """Articles from FILE: ``.jsonl`` (one record per line; a JSON array of records is
    taken too), ``.txt`` (first line is the title), or ``-`` (standard input: JSON if it
    starts with ``{`` or ``[``, else text). A byte-order mark is ignored; a ``null`` title
    or text is an empty one; a record with neither is warned of on standard error and
    classified as empty (not flagged); a JSON file with no records at all is warned of too.
    ``labelled``: each record also needs a ``topics`` list. ``pool``: a record with an id and
    neither title nor text (our label files) takes its title, text and language from the pool
    item of that id. Errors name the file and line."""
    if source == "-":
        name = "<stdin>"
        try:        # bytes, decoded as a file is: invalid UTF-8 is an error either way
            data = sys.stdin.buffer.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{name}: cannot read: {exc}") from None
        jsonl = data.lstrip().startswith(("{", "["))
    else:
        path = Path(source)
        try:
            data = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{source}: cannot read: {exc}") from None
        name, jsonl = source, path.suffix.lower() in (".jsonl", ".json", ".ndjson")
    if not jsonl:
        if labelled:
            raise UsageError(f"{name}: a labelled file is JSON Lines (one record per line)")
        title, _, text = data.strip().partition("\n")
        if not data.strip():
            click.echo(f"warning: {name}: neither title nor text", err=True)
        return [{"id": "1", "title": title.strip(), "text": text.strip()}]
    decoded = _records(data, name)
    if pool is not None:
        decoded = _joined(decoded, pool)
    records = [_article(record, where, str(number), labelled) for number, where, record in decoded]
    if not records:
        click.echo(f"warning: no records in {name}", err=True)
    return records


def _records(data: str, name: str) -> list[tuple[int, str, Any]]:
    """(number, where, decoded value) of each record: one per non-blank line (numbered and
    named by its line), or the items of one JSON array (by their position)."""
    if data.lstrip().startswith("["):
        try:
            items = json.loads(data)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{name}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        except (ValueError, RecursionError) as exc:
            raise UsageError(f"{name}: not valid JSON: {_json_trouble(exc)}") from None
        return [(n, f"{name}: item {n}", item) for n, item in enumerate(items, 1)]
    out = []
    # lines end at "\n" only, as JSON Lines (and `monitor train`) read them: U+2028, U+0085
    # and the like may stand raw inside a JSON string, and str.splitlines() cut there
    for number, line in enumerate(data.split("\n"), 1):
        if not line.strip():
            continue
        try:
            out.append((number, f"{name}:{number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{name}:{number}: not valid JSON: {exc.msg}") from None
        except (ValueError, RecursionError) as exc:
            raise UsageError(f"{name}:{number}: not valid JSON: {_json_trouble(exc)}") from None
    return out


def _joined(decoded: list[tuple[int, str, Any]], pool: Path) -> list[tuple[int, str, Any]]:
    """Records without title and text given theirs from the pool, by id; an id the pool
    does not hold is an error naming the record."""
    from monitor.labels import join_pool

    bare = {record["id"]: where for _, where, record in decoded
            if isinstance(record, dict) and isinstance(record.get("id"), str)
            and not record.get("title") and not record.get("text")}
    if not bare:
        return decoded
    found, missing = join_pool([{"id": i} for i in bare], pool)
    if missing:
        raise UsageError(f"{bare[missing[0]]}: id {missing[0]!r} is not in {pool}"
                         + (f" (nor {len(missing) - 1} other ids)" if len(missing) > 1 else ""))
    texts = {r["id"]: r for r in found}
    out = []
    for number, where, record in decoded:
        item = texts.get(record.get("id")) if isinstance(record, dict) and record.get("id") in bare else None
        if item is not None:
            record = {**record, "title": item["title"], "text": item["text"],
                      "lang": record.get("lang") or item["lang"]}
        out.append((number, where, record))
    return out


def _json_trouble(exc: BaseException) -> str:
    """What Python's JSON reader refused that is JSON all the same: a number of thousands
    of digits (ValueError), arrays or objects nested too deeply (RecursionError)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]


def _article(record: Any, where: str, default_id: str, labelled: bool) -> dict:
    """The record checked: an object with string (or null, read as empty) title and text,
    and a string (or null, no hint) lang when given."""
    if not isinstance(record, dict):
        raise UsageError(f"{where}: expected a JSON object")
    for key in ("title", "text"):
        if record.get(key) is None:
            record[key] = ""
        elif not isinstance(record[key], str):
            raise UsageError(f"{where}: {key!r} must be a string (or null)")
    if record.get("lang") is not None and not isinstance(record["lang"], str):
        raise UsageError(f"{where}: 'lang' must be a string such as \"en\" (or null)")
    if not (record["title"] or record["text"]):         # still given a verdict: not flagged
        click.echo(f"warning: {where}: neither title nor text", err=True)
    if labelled:
        _check_labels(record, where)
    record.setdefault("id", default_id)
    return record


def _check_labels(record: dict, where: str) -> None:
    """A labelled record's topics: a list of known topics; its countries, when given, a
    list of codes (a string would be scored letter by letter)."""
    from monitor import TOPICS

    topics = record.get("topics")
    if not isinstance(topics, list):
        raise UsageError(f"{where}: a labelled record needs a topics list")
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise UsageError(f"{where}: unknown topic {unknown[0]!r} (topics are "
                         f"{', '.join(TOPICS)})")
    countries = record.get("countries")
    if countries is not None and not (
            isinstance(countries, list) and all(isinstance(c, str) for c in countries)):
        raise UsageError(f"{where}: countries must be a list of codes, e.g. [\"CN\", \"US\"]")
    from monitor.countries import known_code

    odd = next((c for c in countries or () if not known_code(c)), None)
    if odd is not None:             # "cn", "China" or "UK" would only ever count as a miss
        raise UsageError(f"{where}: country {odd!r} is not an ISO 3166-1 alpha-2 code in capitals "
                         "such as \"CN\"" + (" (the United Kingdom is GB)" if odd == "UK" else ""))


def verdict_lines(records: list[dict], analyzer) -> list[dict]:
    """Each record's verdict, read as the poll reads an entry: the title to its first
    MAX_TITLE characters and the text to its first MAX_TEXT, so a record gets the verdict
    the service would give the same story (and a 10 MB text does not take a gigabyte)."""
    from monitor.parse import MAX_TEXT, MAX_TITLE

    docs = [(r.get("title", "")[:MAX_TITLE], r.get("text", "")[:MAX_TEXT], r.get("lang"))
            for r in records]
    lines = []
    for record, result in zip(records, analyzer.analyse(docs)):
        v = result.verdict
        lines.append({"id": record["id"], "flagged": v.flagged, "score": round(v.score, 4),
                      "topics": list(v.topics), "countries": sorted(m.code for m in result.countries),
                      "minerals": sorted(m.code for m in result.minerals), "reasons": list(v.reasons),
                      "lang": result.language})
    return lines


@click.command()
@click.argument("source", metavar="FILE|-")
@click.pass_context
def classify(ctx, source):
    """Print one JSON verdict per article of FILE (.jsonl, a .json array of records, or .txt
    whose first line is the title) or of standard input (-). A null title or text counts
    as empty; a record with neither gets a warning and an unflagged verdict, a file with no
    records a warning; a title, text or lang that is not a string (or null) is an error
    naming the file and line. As the poll stores an entry, only the first 1,000 characters
    of a title and 20,000 of a text are read.

    \b
    Examples:
      monitor classify ../shared/seed/seed.jsonl
      echo '{"title": "China curbs gallium exports", "text": ""}' | monitor classify -
    """
    from monitor.service import build_analyzer


    records = read_articles(source)
    analyzer = build_analyzer(config_of(ctx))
    for line in verdict_lines(records, analyzer):
        click.echo(json.dumps(line, ensure_ascii=False))


@click.command()
@click.argument("source", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--keywords-only", is_flag=True,
              help="The baseline: the config's [keywords] alone (the rules the service flags "
                   "with, as `monitor train --dev` scores them), no model; the report names "
                   "the config file.")
@click.option("--pool", "pool_path", metavar="PATH", type=click.Path(dir_okay=False, exists=True),
              help="Give records with an id and no title or text (our label files, such as "
                   "models/labels/untrained/round9.jsonl) their text from this pool, by id.")
@click.pass_context
def evaluate(ctx, source, as_json, keywords_only, pool_path):
    """Score the classifier on a labelled JSON Lines file or JSON array (LABELING.md
    format; each record needs a topics list of known topics): precision,
    recall and F1 per topic and for flagged, per language, and countries micro-P/R/F1
    over the records that have a countries list (none scored, and it says so, when none has).
    Records are read as classify reads them (a file with no records is warned of; a field
    of the wrong type is an error naming file and line). Stops (exit 2) when the model
    cannot be loaded, unless --keywords-only. The keywords are the config's [keywords]
    (with the model, and alone with --keywords-only); the report's first line names the
    config file they came from.

    \b
    Examples:
      monitor evaluate ../shared/data/dev.jsonl
      monitor evaluate ../shared/data/dev.jsonl --keywords-only --json
      monitor evaluate models/labels/untrained/round9.jsonl --pool ../shared/data/pool-unlabeled.jsonl
    """
    from monitor.analyze import Analyzer
    from monitor.evaluate import evaluate as score, format_report
    from monitor.keywords import KeywordRules
    from monitor.service import build_analyzer

    gold = read_articles(source, labelled=True, pool=Path(pool_path) if pool_path else None)
    config = config_of(ctx)
    keywords = keywords_source(ctx)
    rules = KeywordRules.compile(config.keywords.spec())
    if keywords_only:
        analyzer = Analyzer(None, rules)
        if not config.keywords.has_phrases():
            click.echo(f"warning: no phrases in the {keywords}: keywords alone flag nothing",
                       err=True)
    else:
        analyzer = build_analyzer(config)
        if analyzer.model_error is not None:      # logged above; keywords alone score nothing
            raise UsageError("no model to evaluate (classifier unavailable, see above): "
                             "restore or retrain it, or give --keywords-only")
    predicted = verdict_lines(gold, analyzer)
    report = score(gold, predicted)
    report["setup"] = (f"keywords only ({keywords}, no model)" if keywords_only
                       else f"model {analyzer.model_version or 'unavailable'} + {keywords}")
    report["keywords"] = rules.fingerprint()   # as the card's dev figures record theirs
    if not keywords_only:
        report["thresholds"] = {
            "source": ("config classifier.threshold" if analyzer.threshold is not None
                       else "model card (chosen by cross-validation)"),
            **analyzer.thresholds.to_card()}
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(f"# {report['setup']}")
        if "thresholds" in report:
            click.echo(f"# thresholds ({report['thresholds']['source']}): "
                       f"{json.dumps({k: report['thresholds'][k] for k in ('default', 'languages')})}")
        click.echo(format_report(report))


def keywords_source(ctx: click.Context) -> str:
    """Where the keyword rules that evaluate and train use come from, in words: the
    [keywords] of the config file in force."""
    from monitor.config import config_path

    return f"[keywords] of {config_path(config_file_of(ctx))}"


@click.command()
@click.option("--force", is_flag=True, help="Replace the model even if held-out F1 dropped.")
@click.option("--dev", "dev_file", type=click.Path(exists=True, dir_okay=False),
              help="Also score the new model on this labelled file (measured only, never trained "
                   "on): the model alone, with the config's [keywords], and those keywords alone "
                   "(as `monitor evaluate --keywords-only` does); it names the config file.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Where to write the model (default: classifier.model in the config); its "
                   "card and arrays go beside it, named after it without its extension.")
@click.option("--corpus", "corpus_dir", type=click.Path(file_okay=False),
              help="Folder of the written corpus (default: the one that comes with monitor, "
                   "models/corpus of its checkout or its copy inside the installed package; "
                   "not a models/ folder of the current one).")
@click.option("--labels", "labels_dir", type=click.Path(file_okay=False),
              help="Folder of our labels of real news items, keyed by pool id (default: the "
                   "ones that come with monitor, models/labels beside the corpus).")
@click.option("--pool", "pool_path", type=click.Path(dir_okay=False),
              help="The real news items the labels refer to (default: $MONITOR_POOL, else "
                   "../shared/data/pool-unlabeled.jsonl when it exists).")
@click.pass_context
def train(ctx, force, dev_file, out_path, corpus_dir, labels_dir, pool_path):
    """Train the classifier from the written corpus, our labels of real news items (their
    text read from the pool) and analysts' reviews (a review overrides the label of the
    item with the same id, or the same link and title; it says how many reviews were given,
    trained on and held out, as the card does); choose the model settings and the per-topic and
    per-language thresholds by cross-validation over the real items (the current model's
    settings stay unless others score more than 0.002 higher); write the model, its card and
    its arrays.
    Refuses to replace the current model when flagged F1 on the fixed held-out part drops
    by more than one point, unless --force; a first --out (no file there yet) is compared
    with the model in use (classifier.model) in the same way, and keeps its settings. It
    says which model it compared with.
    Without a pool it trains on the written corpus and reviews alone, and says so; such a
    model is refused against one trained with real items, unless --force. A current
    model that cannot be loaded is replaced without comparing. Before training it checks that
    it can write the target's folder, that the target's card and arrays are not another
    model's (classifier.model beside classifier.skops), that the target is not named like a
    card or arrays (*.card.json, *.linear.npz) and that a file already there is a model.
    From an installed package (not a checkout) it needs --out: the shipped model is not
    overwritten.

    \b
    Examples (in a checkout; the pool is found at ../shared/data or $MONITOR_POOL):
      monitor train
      monitor train --pool ../shared/data/pool-unlabeled.jsonl --dev ../shared/data/dev.jsonl
    From an installed package, into a model file of your own:
      monitor train --pool /data/pool-unlabeled.jsonl --out /var/lib/monitor/classifier.skops
    """
    from monitor.keywords import KeywordRules
    from monitor.labels import default_pool_path
    from monitor.resources import resource_dir
    from monitor.train import train_from_paths

    config = config_of(ctx)
    corpus = Path(corpus_dir) if corpus_dir else resource_dir("models") / "corpus"
    if not corpus.is_dir():
        raise UsageError(f"{corpus}: no corpus folder here; name one with --corpus DIR")
    labels = Path(labels_dir) if labels_dir else resource_dir("models") / "labels"
    if labels_dir and not labels.is_dir():
        raise UsageError(f"{labels}: no such labels folder (--labels)")
    pool = Path(pool_path) if pool_path else default_pool_path()
    if pool is not None and not pool.is_file():
        raise UsageError(f"{pool}: no such pool file (--pool or $MONITOR_POOL)")
    target = Path(out_path) if out_path else config.classifier.model_path()
    if not out_path and _inside_installed_package(target):
        raise UsageError(f"{target}: that is the model shipped inside the installed package, "
                         "which an upgrade or reinstall replaces; train into a file of your own "
                         "with --out PATH and set classifier.model in the config to that path")
    outcome = train_from_paths(corpus, _reviews(ctx, config), target, dev_path=dev_file,
                               force=force, rules=KeywordRules.compile(config.keywords.spec()),
                               labels_dir=labels, pool_path=pool,
                               in_use=config.classifier.model_path())
    _report_training(outcome, keywords_source(ctx))
    if not outcome.replaced:
        sys.exit(1)


def _report_training(outcome, keywords: str) -> None:
    card = outcome.card
    pool = card.get("pool", {})
    if pool.get("used"):
        click.echo(f"real items: {pool['joined']} of {pool['labels']} labels found in "
                   f"{pool['file']} (sha256 {pool['sha256'][:12]}…)"
                   + (f"; {pool['missing']} not in the pool" if pool["missing"] else ""))
    else:
        click.echo(f"no real items ({pool.get('why', 'no labels')}): trained on the written "
                   "corpus and reviews only; give --pool PATH to use the labels of real news")
    reviews = card.get("reviews") or {"given": card.get("n_reviews", 0)}
    split = (f" ({reviews['trained_on']} trained on, {reviews['held_out']} in the held-out part"
             + (f", {reviews['superseded']} superseded by a later verdict on a copy of the same "
                "story" if reviews.get("superseded") else "") + ")"
             if "trained_on" in reviews else "")
    click.echo(f"model {card['version']}: {card['sizes']}, {reviews['given']} reviews{split}")
    cv = card.get("cv", {})
    click.echo(f"cross-validation on {cv.get('on')}: flagged F1 "
               f"{cv.get('metrics', {}).get('flagged', {}).get('f1')}"
               + (f", chosen {cv['chosen']}" if cv.get("chosen") else "")
               + (f" ({cv['why']})" if cv.get("why") else ""))
    click.echo(f"thresholds {json.dumps(card.get('thresholds'))}")
    held = card.get("held_out") or {}
    click.echo(f"held-out flagged F1 {held.get('flagged', {}).get('f1')} (the new model on all "
               f"{held.get('items', '?')} held-out items)")
    if "dev" in card:
        for setup in ("model", "model+keywords", "keywords_only"):
            if setup in card["dev"]:
                which = f" ({keywords})" if setup != "model" else ""
                click.echo(f"dev {setup}: flagged F1 {card['dev'][setup]['flagged']['f1']}{which}")
        if "keywords_only" not in card["dev"]:
            click.echo(f"dev keywords_only: not scored (no phrases in the {keywords})")
    if outcome.compared_with:
        click.echo(f"compared with {outcome.compared_with}")
    click.echo(("written to " if outcome.replaced else "NOT written: ")
               + f"{outcome.path} ({outcome.reason})")


def _inside_installed_package(path: Path) -> bool:
    """Whether ``path`` lies in the copies bundled into the installed wheel
    (``monitor/_bundled``), not in a checkout's ``models/`` folder."""
    from monitor.resources import BUNDLED_DIR

    try:
        path.resolve().relative_to(BUNDLED_DIR.resolve())
    except ValueError:
        return False
    return True


def _reviews(ctx, config) -> list[dict]:
    """Current review verdicts from the store; none, said on standard error, when the store
    does not exist (a first training, or the wrong folder for a relative store URL: the
    analysts' verdicts would otherwise be left out without a word). Verdicts on articles
    whose text changed since, and verdicts whose article was deleted, are left out, and
    said."""
    from monitor.config import ENV_STORE_URL, config_path
    from monitor.storage import open_store
    from monitor.storage.store import empty_database

    path = missing_store(config)
    # a database server's database that holds no store yet is left as it is, as every
    # command but `poll` and `run` leaves it: opening it here made the tables, and a
    # `monitor digest` from cron then mailed an empty digest from them
    database = None if path is not None else empty_database(config.store_url())
    if path is not None or database is not None:
        source = (f"${ENV_STORE_URL}" if os.environ.get(ENV_STORE_URL)
                  else f"store.url in {config_path(config_file_of(ctx))}")
        where = (f"no store at {path.absolute()}" if path is not None
                 else f"no store in the database {database}")
        click.echo(f"note: {where} ({source}): trained without analysts' reviews", err=True)
        return []
    with open_store(config.store_url(), config.store.busy_timeout_seconds) as store:
        records, changed = store.reviews_for_training()
        orphaned = store.orphaned_verdicts()
    if orphaned:
        shown = ", ".join(f"#{i}" for i in orphaned[:10]) + (" …" if len(orphaned) > 10 else "")
        click.echo(f"note: {len(orphaned)} verdict(s) left out: their article is no longer in "
                   f"the store ({shown}), so there is no text to train on", err=True)
    if changed:
        shown = ", ".join(f"#{i}" for i in changed[:10]) + (" …" if len(changed) > 10 else "")
        click.echo(f"note: {len(changed)} verdict(s) left out: the feed rewrote the article "
                   f"since it was judged ({shown}); `monitor review show ID` shows it, and a "
                   "new verdict on it counts", err=True)
    return records


COMMANDS = (classify, evaluate, train)
