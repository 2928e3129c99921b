"""The smaller faults of issue 16, each against the real feed server on 127.0.0.1 and a
real store file: a page in another encoding than it declares, items with neither guid nor
link, impossible dates, a feed cut at 1,000 items, and what the poll says and exits with
when it could not store everything."""

import logging
from datetime import datetime, timezone

from hostile_kit import Clock, by_name, item, poll, rss  # noqa: F401  (poll: fixture)

RARE_EARTH_TITLE = "美日合作应对中国稀土出口管制，日本加快稀土供应链多元化"
RARE_EARTH_TEXT = "据报道，美国与日本签署关键矿产协议，以应对中国对稀土、镓和锗的出口管制措施。"


def stored(store):
    """[(title, text, published_at, language)] of every stored article, in id order."""
    from sqlalchemy import select

    from monitor.storage.tables import ArticleRow

    table = ArticleRow.__table__
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(
            table.c.title, table.c.text, table.c.published_at, table.c.language).order_by(table.c.id))]


def test_a_gbk_page_declared_as_utf8_is_read_as_chinese_and_said_so(feed_server, poll, caplog):
    from monitor.service import build_analyzer

    body = rss([item("cn-1", title=RARE_EARTH_TITLE, text=RARE_EARTH_TEXT)],
               declaration='<?xml version="1.0" encoding="utf-8"?>').encode("gb18030")
    url = feed_server.add("/gbk", body, content_type="application/rss+xml; charset=utf-8")
    with caplog.at_level(logging.WARNING, logger="monitor.poll"):
        report, store, config = poll([("gbk", url)], analyze=build_analyzer(
            _config_with_keywords_only(poll)))
    assert by_name(report)["gbk"].new == 1
    [(title, text, _, language)] = stored(store)
    assert (title, text, language) == (RARE_EARTH_TITLE, RARE_EARTH_TEXT, "zh")
    assert by_name(report)["gbk"].flagged == 1          # the rare-earth story is not missed
    assert "declared as utf-8, but it does not decode as such: read as gb18030" in caplog.text


def _config_with_keywords_only(poll):
    """Keyword rules as in the example config, no model file: flagging here does not depend
    on the shipped model."""
    from monitor.config import parse_config

    return parse_config({"classifier": {"model": "no-such-model.skops"},
                         "keywords": {"critical-minerals": ["稀土出口"],
                                      "export-controls": ["出口管制"]}}, "test.toml")


def test_a_utf8_page_with_a_few_bad_bytes_keeps_its_other_characters(feed_server, poll, caplog):
    title = "Exportkontrollen für Seltene Erden – „Gallium“ und Germanium aus Köln"
    body = rss([item("de-1", title=title, text="Straße, Größe, Übermaß.")]).encode()
    broken = body.replace("Straße".encode(), b"Stra\xdfe")        # one Latin-1 byte
    url = feed_server.add("/de", broken, content_type="application/rss+xml; charset=utf-8")
    with caplog.at_level(logging.WARNING, logger="monitor.poll"):
        report, store, _ = poll([("de", url)])
    [(stored_title, text, _, _)] = stored(store)
    assert stored_title == title                      # not "fÃ¼r" everywhere
    assert text == "Stra\ufffde, Größe, Übermaß."
    assert "declared as utf-8: 1 invalid UTF-8 byte sequence replaced by U+FFFD, the rest read as UTF-8" in caplog.text


def test_a_utf8_page_under_a_single_byte_charset_label_is_read_as_utf8(feed_server, poll, caplog):
    title = "Metale ziem rzadkich: Łódź, żółć, gęślą jaźń"
    body = rss([item("pl-1", title=title, text="Zażółć gęślą jaźń.")],
               declaration='<?xml version="1.0" encoding="utf-8"?>').encode()
    url = feed_server.add("/pl", body, content_type="application/rss+xml; charset=iso-8859-2")
    with caplog.at_level(logging.WARNING, logger="monitor.poll"):
        _, store, _ = poll([("pl", url)])
    [(stored_title, text, _, _)] = stored(store)
    assert (stored_title, text) == (title, "Zażółć gęślą jaźń.")      # not "ĹĽĂłĹ‚"
    assert "declared as iso-8859-2, but it is UTF-8: read as UTF-8" in caplog.text


def test_items_without_guid_or_link_are_updated_not_added_when_their_text_changes(feed_server, poll):
    def doc(version: int) -> str:
        entries = "".join(
            f"<item><title>Bulletin {n}</title><description>Text {n}, edition {version}."
            f"</description><pubDate>Wed, 04 Jun 2025 0{n}:00:00 GMT</pubDate></item>"
            for n in range(5))
        return rss(entries)

    url = feed_server.add("/bare", doc(1))
    clock = Clock()
    report, store, _ = poll([("bare", url)], clock=clock)
    assert by_name(report)["bare"].new == 5
    for version in (2, 3):
        feed_server.add("/bare", doc(version))
        clock.advance(hours=2)
        report, store, _ = poll([("bare", url)], clock=clock)
        assert (by_name(report)["bare"].new, by_name(report)["bare"].updated) == (0, 5)
    rows = stored(store)
    assert len(rows) == 5 and {t for _, t, _, _ in rows} == {f"Text {n}, edition 3." for n in range(5)}


def test_the_same_title_on_another_day_is_another_item(feed_server, poll):
    entries = "".join(f"<item><title>Daily metals report</title><description>Day {d}.</description>"
                      f"<pubDate>0{d} Jun 2025 06:00:00 GMT</pubDate></item>" for d in (2, 3, 4))
    url = feed_server.add("/daily", rss(entries))
    report, store, _ = poll([("daily", url)])
    assert by_name(report)["daily"].new == 3


def test_impossible_dates_are_stored_without_a_date_not_rolled_over(feed_server, poll):
    atom = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            '<title>t</title><id>urn:t</id><updated>2025-06-04T10:00:00Z</updated>'
            '<entry><title>Impossible</title><id>urn:1</id><link href="https://n.example/1"/>'
            '<updated>2025-13-45T99:99:99Z</updated><summary>s</summary></entry>'
            '<entry><title>Thirty-first of April</title><id>urn:2</id><link href="https://n.example/2"/>'
            '<published>Thu, 31 Apr 2025 10:00:00 GMT</published><summary>s</summary></entry>'
            '<entry><title>Fine</title><id>urn:3</id><link href="https://n.example/3"/>'
            '<updated>2025-06-04T09:30:00Z</updated><summary>s</summary></entry></feed>')
    url = feed_server.add("/atom", atom, content_type="application/atom+xml")
    report, store, _ = poll([("atom", url)])
    dates = {title: published for title, _, published, _ in stored(store)}
    assert dates == {"Impossible": None, "Thirty-first of April": None,
                     "Fine": datetime(2025, 6, 4, 9, 30, tzinfo=timezone.utc)}


def test_a_feed_cut_at_1000_items_says_so_in_the_log(feed_server, poll, caplog):
    entries = [item(f"n-{i}") for i in range(1_200)]
    url = feed_server.add("/long", rss(entries))
    with caplog.at_level(logging.WARNING, logger="monitor.poll"):
        report, _, _ = poll([("long", url)])
    assert by_name(report)["long"].new == 1_000
    assert "feed long" in caplog.text and "only the first 1,000 entries were read" in caplog.text


def _config_file(tmp_path, feeds, **store):
    path = tmp_path / "monitor.toml"
    lines = [f'[store]\nurl = "sqlite:///{tmp_path / "monitor.db"}"\n'
             + "".join(f"{k} = {v}\n" for k, v in store.items()),
             '[poll]\ncontact_url = "http://127.0.0.1/c"\nconnect_timeout_seconds = 3\n'
             'read_timeout_seconds = 5\n',
             f'[classifier]\nmodel = "{tmp_path / "no-model.skops"}"\n']
    lines += [f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _monitor(config, *args):
    import subprocess
    import sys

    from hostile_kit import ROOT

    return subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def test_a_poll_the_store_refused_exits_1_and_the_next_stores_everything(feed_server, tmp_path):
    import sqlite3
    import time

    slow = feed_server.add("/slow", rss([item(f"s-{i}") for i in range(3)]), delay=1.5)
    config = _config_file(tmp_path, [("slow", slow)], busy_timeout_seconds=0.3)
    proc = _monitor(config, "poll", "--all")
    deadline = time.monotonic() + 60
    while not feed_server.hits["/slow"] and time.monotonic() < deadline:
        time.sleep(0.02)
    db = sqlite3.connect(tmp_path / "monitor.db", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")                  # another writer, for longer than the poll
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert proc.returncode == 1, (out, err)
    assert "the store refused 1 feeds' articles (slow)" in err and "polled again" in err
    assert "Traceback" not in err
    again = _monitor(config, "poll")                 # due again: its claim was given back
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0 and "new    3" in out, (out, err)


def test_feeds_reads_while_another_process_holds_the_write_lock(feed_server, tmp_path):
    import sqlite3

    url = feed_server.add("/a", rss([item("a-1")]))
    config = _config_file(tmp_path, [("a", url)], busy_timeout_seconds=1)
    first = _monitor(config, "poll", "--all")
    assert first.wait(60) == 0
    db = sqlite3.connect(tmp_path / "monitor.db", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        proc = _monitor(config, "feeds")
        out, err = proc.communicate(timeout=60)
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert proc.returncode == 0, (out, err)
    assert "ok" in out and out.rstrip().endswith("a")
