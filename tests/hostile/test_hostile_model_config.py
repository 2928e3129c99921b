"""Outside the feeds: the model file and the config (issue 8, cases 14 and 15).

A tampered, truncated or garbage model file is refused with an error naming it, and the
poll goes on storing articles, flagged by keywords alone and marked unclassified
(reason "classifier unavailable", no model version). Config errors of every kind are
refused at start (naming the file and the key; `monitor run` exits 2 without a
traceback) and on reload (logged, the previous config stays in force, the service goes
on polling). tests/test_config.py checks the messages of load_config itself.
"""

import json
import logging
import os
import subprocess
import sys
import zipfile

import pytest

from hostile_kit import ROOT, Clock, by_name, rss, stories
from storeview import count_articles


@pytest.fixture
def store_url(tmp_path):
    """SQLite only (overrides the conftest fixture that also runs PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'monitor.db'}"


def _card(model):
    """A card that passes every check, so the archive itself is what gets refused."""
    import sklearn

    from monitor import classify

    from monitor import TOPICS

    card = {"version": "test", "sklearn_version": sklearn.__version__, "topics": list(TOPICS)}
    if hasattr(classify, "preparation_fingerprint"):
        card["preparation"] = classify.preparation_fingerprint()
    model.with_name(model.stem + ".card.json").write_text(json.dumps(card))


def _archive(model, schema):
    with zipfile.ZipFile(model, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", json.dumps(schema))
        archive.writestr("padding.bin", os.urandom(4096))


def garbage(model):
    model.write_bytes(os.urandom(2048))
    _card(model)


def truncated(model):
    _archive(model, {"__class__": "Pipeline", "__module__": "sklearn.pipeline",
                     "__loader__": "ObjectNode", "content": {}})
    model.write_bytes(model.read_bytes()[:1500])
    _card(model)


def tampered(model):
    """A well-formed archive whose schema asks for os.system: refused before loading."""
    _archive(model, {"__class__": "Pipeline", "__module__": "sklearn.pipeline", "__loader__": "ObjectNode",
                     "content": {"steps": {"__class__": "system", "__module__": "os",
                                           "__loader__": "FunctionNode", "content": "rm -rf /"}}})
    _card(model)


def no_card(model):
    _archive(model, {"__class__": "Pipeline", "__module__": "sklearn.pipeline", "__loader__": "ObjectNode"})


@pytest.mark.parametrize("damage,message", [
    (garbage, "cannot load model"), (truncated, "cannot load model"),
    (tampered, "unexpected types: os.system; refusing to load it"), (no_card, "is missing"),
])
def test_14_damaged_model_is_refused_and_articles_are_stored_unclassified(
        feed_server, make_config, tmp_path, caplog, damage, message):
    from monitor.pipeline import Poller
    from monitor.service import build_analyzer, open_configured_store

    model = tmp_path / "model" / "classifier.skops"
    model.parent.mkdir()
    damage(model)
    url = feed_server.add("/f", rss(stories("m", 3) + [
        "<item><title>Gallium export quota cut</title><link>https://n.example/ga</link>"
        "<description>Gallium.</description></item>"]))
    config = make_config([("f", url)], classifier={"model": str(model)},
                         keywords={"critical-minerals": ["gallium"]})
    with caplog.at_level(logging.ERROR, logger="monitor.analyze"):
        analyzer = build_analyzer(config)
    assert analyzer.classifier is None and str(model) in analyzer.model_error
    assert message in analyzer.model_error, analyzer.model_error
    assert any(str(model) in r.getMessage() and "classifier unavailable" in r.getMessage()
               for r in caplog.records)
    with open_configured_store(config, Clock()()) as store:
        report = Poller(store, config, analyze=analyzer, clock=Clock()).run_cycle(include_all=True)
        f = by_name(report)["f"]
        assert (f.status, f.new, f.flagged) == ("ok", 4, 1)
        rows = _verdicts(store)
    assert len(rows) == 4
    assert all(version is None and json.loads(reasons)[0] == "classifier unavailable"
               for _, _, version, reasons in rows)
    assert {title for title, flagged, _, _ in rows if flagged} == {"Gallium export quota cut"}


def _verdicts(store):
    from sqlalchemy import select

    from monitor.storage.tables import ArticleRow

    t = ArticleRow.__table__
    with store.engine.connect() as conn:
        return conn.execute(select(t.c.title, t.c.flagged, t.c.model_version, t.c.reasons)).all()


BASE = '[store]\nurl = "sqlite:///{db}"\n\n[classifier]\nmodel = "{model}"\n\n'
FEEDS = '[[feeds]]\nname = "rss"\nurl = "{url}"\n'
BAD = {
    # kind: (config text, or bytes, or None for a deleted file; what the error names)
    "unknown key": ("[poll]\nintervall_minutes = 5\n" + FEEDS, "poll.intervall_minutes: unknown key"),
    "wrong type": ("[poll]\ninterval_minutes = 'often'\n" + FEEDS, "poll.interval_minutes"),
    "out of range": ("[poll]\nconcurrency = 0\n" + FEEDS, "poll.concurrency"),
    "header injection": ('[poll]\nuser_agent = "a\\r\\nX-Evil: 1"\n' + FEEDS, "poll.user_agent: must be one line"),
    "feed not http": ('[[feeds]]\nname = "rss"\nurl = "file:///etc/passwd"\n', "feeds[0].url: not an http(s) URL"),
    "duplicate feed": (FEEDS + FEEDS.replace('"rss"', '"again"'), "feeds[1].url: duplicate feed URL"),
    "bad regex": ("[keywords]\nexport-controls = ['re:(unclosed']\n" + FEEDS, "keywords.export-controls[0]"),
    "unknown time zone": ("[digest]\ntimezone = 'Mars/Olympus'\n" + FEEDS, "digest.timezone: unknown time zone"),
    "bad recipient": ("[digest]\nrecipients = ['nobody']\n" + FEEDS, "digest.recipients[0]: not an email"),
    "bad smtp security": ("[smtp]\nhost = 'mail'\nsecurity = 'tls'\n" + FEEDS, "smtp.security"),
    "secret in env name": ("[smtp]\nhost = 'mail'\npassword_env = 'hunter2 !'\n" + FEEDS, "smtp.password_env"),
    "not TOML": ("[poll\n" + FEEDS, "not valid TOML"),
    "not UTF-8": (b"\xff\xfe\x00[poll]", "cannot read"),
    "deleted": (None, "config file not found"),
}


def write_bad(path, kind, **values):
    text, _ = BAD[kind]
    if text is None:
        path.unlink(missing_ok=True)
    elif isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(BASE.format(**values) + text.format(**values), encoding="utf-8")


@pytest.mark.parametrize("kind", list(BAD))
def test_15_config_errors_at_start_name_file_and_key(tmp_path, kind):
    from monitor.exceptions import ConfigError
    from monitor.service import Service

    path = tmp_path / "monitor.toml"
    write_bad(path, kind, db=tmp_path / "m.db", model=tmp_path / "none.skops", url="http://127.0.0.1:9/f")
    with pytest.raises(ConfigError) as error:
        Service(str(path))
    assert str(error.value).startswith(str(path)) and BAD[kind][1] in str(error.value), error.value
    assert not (tmp_path / "m.db").exists()                 # refused before opening the store


def test_15_monitor_run_with_a_bad_config_exits_2_without_a_traceback(tmp_path):
    path = tmp_path / "monitor.toml"
    write_bad(path, "unknown key", db=tmp_path / "m.db", model=tmp_path / "x", url="http://127.0.0.1:9/f")
    proc = subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "run"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {path}: poll.intervall_minutes: unknown key"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_15_config_errors_on_reload_keep_the_previous_config_and_polling_goes_on(
        feed_server, tmp_path, caplog):
    from monitor.service import Service

    url = feed_server.add("/rss", rss(stories("r", 3)))
    values = dict(db=tmp_path / "m.db", model=tmp_path / "none.skops", url=url)
    path = tmp_path / "monitor.toml"
    path.write_text(BASE.format(**values) + FEEDS.format(**values), encoding="utf-8")
    clock = Clock()
    service = Service(str(path), clock=clock)
    try:
        good = service.config
        for step, kind in enumerate(BAD, start=1):
            write_bad(path, kind, **values)
            _touch(path, step)
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="monitor"):
                service.dispatch()                       # reload attempt, then a poll cycle
            assert service.config is good, kind
            logged = " ".join(r.getMessage() for r in caplog.records)
            assert "config change ignored, previous config stays in force" in logged, kind
            assert BAD[kind][1] in logged, (kind, logged)
            clock.advance(minutes=61)
        assert count_articles(service.store) == 3       # polled all along, nothing repeated
        assert len(service.store.feed_health(clock())) == 1
        url2 = feed_server.add("/second", rss(stories("s", 2)))
        path.write_text(BASE.format(**values) + FEEDS.format(**values)
                        + FEEDS.format(url=url2).replace('"rss"', '"second"'), encoding="utf-8")
        _touch(path, len(BAD) + 1)
        service.dispatch()
        assert service.config is not good and len(service.config.feeds) == 2
        assert count_articles(service.store) == 5
    finally:
        service.shutdown()


def _touch(path, step):
    """A distinct modification time for each edit (the reload looks at mtime and size)."""
    if path.exists():
        stamp = 1_700_000_000_000_000_000 + step * 1_000_000_000
        os.utime(path, ns=(stamp, stamp))
