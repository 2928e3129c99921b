"""Analysts' review: `review list|show|mark`, `keywords test`, `reclassify`, reviews for
training, and the store's views through the real sqlite3 CLI.

Every test fills a real store (a SQLite file, and a PostgreSQL database when .ci/pg runs)
through `monitor poll` from the local feed server. The config has keyword rules and no
model file, so verdicts are keyword-only and predictable."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import monitor.cli
from monitor.exceptions import UsageError
from monitor.review import (
    StoredVerdict,
    VerdictDiff,
    check_topics,
    check_verdict,
    parse_article_id,
    parse_mark_args,
    parse_since,
)


NOW = datetime.now(timezone.utc)

# (guid, title, text, days before now). Keyword rules below decide the flags.
WIRE = [
    ("w1", "China restricts gallium exports",
     "Beijing said exporters of gallium and germanium now need export licences for "
     "shipments to the United States and Japan.", 1),
    ("w2", "Rare earth magnet plant opens in Australia",
     "A rare earth magnet factory opened in Western Australia on Tuesday, the company said.", 3),
    ("w3", "Gold price climbs on rate bets",
     "The gold price rose as traders bet on lower rates; gallium traders were unmoved.", 2),
    ("w6", "Gallium market review for the spring",
     "Gallium prices in China were flat over the spring quarter.", 40),
]
DESK = [
    ("d4", "Lithium prices slump in Chile",
     "Lithium carbonate prices fell again as Chilean producers added supply.", 2),
    ("d5", "Washington tightens chip rules",
     "The United States said export licences will be needed for more semiconductors "
     "sold to China.", 10),
    # The same wire copy as w1, re-published by a second outlet: a near-duplicate.
    ("d7", "China restricts gallium exports",
     "Beijing said exporters of gallium and germanium now need export licences for "
     "shipments to the United States and Japan.", 1),
]
KEYWORDS = {"critical-minerals": ["gallium", "rare earth*"],
            "export-controls": ["export licen*"],
            "mute": ["gold price"]}
# The edit an analyst makes before `keywords test`: lithium flags, chip stories are muted,
# magnets become an export-control topic.
EDITED = {"critical-minerals": ["gallium", "rare earth*", "lithium"],
          "export-controls": ["export licen*", "magnet*"],
          "mute": ["gold price", "semiconductor*"]}


def rss(title: str, items) -> str:
    entries = "".join(
        f"<item><title>{t}</title><link>https://news.example/{g}</link><guid>{g}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(days=d))}</pubDate>"
        f"<description>{x}</description></item>" for g, t, x, d in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{title}</title><link>https://news.example/</link>"
            f"<description>{title}</description>{entries}</channel></rss>")


def _toml_list(values) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


class Env:
    """A config file, a store filled through `monitor poll`, and a CLI runner."""

    def __init__(self, tmp_path, feed_server, url=None):
        self.tmp = tmp_path
        self.url = url or f"sqlite:///{tmp_path / 'var' / 'monitor.db'}"
        self.db = Path(self.url.removeprefix("sqlite:///"))     # the file, for SQLite
        self.config = tmp_path / "monitor.toml"
        self.feeds = [("Metals Wire", feed_server.add("/wire", rss("Metals Wire", WIRE))),
                      ("Trade Desk", feed_server.add("/desk", rss("Trade Desk", DESK)))]
        self.runner = CliRunner()
        self.write_config(KEYWORDS)

    def write_config(self, keywords) -> None:
        lines = ["[store]", f'url = "{self.url}"',
                 "[poll]", 'contact_url = "http://127.0.0.1/contact"',
                 "connect_timeout_seconds = 2", "read_timeout_seconds = 3",
                 "[classifier]", f'model = "{self.tmp / "no-model.skops"}"',
                 "[digest]", f'outbox_dir = "{self.tmp / "outbox"}"', 'recipients = ["a@example.org"]',
                 "[keywords]"]
        lines += [f'"{k}" = {_toml_list(v)}' for k, v in keywords.items()]
        for name, url in self.feeds:
            lines += ["[[feeds]]", f'name = "{name}"', f'url = "{url}"']
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(self, *args, code=0):
        result = self.runner.invoke(monitor.cli.cli, ["--config", str(self.config), *args])
        assert result.exit_code == code, (result.output, result.exception)
        return result

    def json_lines(self, *args):
        return [json.loads(line) for line in self.run(*args, "--json").stdout.splitlines()]

    def ids(self, *args):
        return [a["id"] for a in self.json_lines("review", "list", *args)]

    def by_guid(self):
        """guid of the fixture item → article id (the items link to news.example/<guid>)."""
        return {url.rsplit("/", 1)[1]: i for url, i in self.sql("select url, id from article")}

    def sql(self, query: str):
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(query))]
        finally:
            engine.dispose()


@pytest.fixture
def env(tmp_path, feed_server, monkeypatch, store_url):
    monkeypatch.setenv("USER", "alice")
    monkeypatch.delenv("MONITOR_STORE_URL", raising=False)
    e = Env(tmp_path, feed_server, store_url)
    out = e.run("poll", "--all").output
    assert "new    4" in out and "new    3" in out
    e.id = e.by_guid()
    return e


# -- review list -----------------------------------------------------------------------

def test_list_shows_flagged_articles_newest_first(env):
    items = env.json_lines("review", "list")
    ids = [a["id"] for a in items]
    i = env.id
    # flagged: w1, d7 (1 day), w2 (3 days), d5 (10 days), w6 (40 days); w3 muted, d4 no rule
    assert set(ids) == {i["w1"], i["d7"], i["w2"], i["d5"], i["w6"]}
    assert ids[-3:] == [i["w2"], i["d5"], i["w6"]]
    dates = [a["published"] for a in items]
    assert dates == sorted(dates, reverse=True)
    first = next(a for a in items if a["id"] == i["w1"])
    assert first["topics"] == ["critical-minerals", "export-controls"]
    assert first["source"] == "Metals Wire" and first["status"] == "unreviewed"
    assert {"CN", "JP", "US"} <= set(first["countries"])
    assert "gallium" in first["minerals"]
    assert 'keyword "gallium"' in first["reasons"] and first["score"] == 1.0


def test_list_table_is_readable(env):
    out = env.run("review", "list").stdout.splitlines()
    assert out[0].split() == ["id", "date", "source", "title", "countries", "minerals",
                              "score", "review", "reasons"]
    row = next(line for line in out if line.lstrip().startswith(str(env.id["w2"]) + " "))
    assert "Rare earth magnet plant opens in Australia" in row and "AU" in row
    assert "1.00" in row and 'keyword "rare earth*"' in row
    assert out[-1] == "5 article(s)"


def test_list_filters(env):
    i = env.id
    assert set(env.ids("--topic", "export-controls")) == {i["w1"], i["d7"], i["d5"]}
    assert set(env.ids("--country", "au")) == {i["w2"]}
    assert set(env.ids("--mineral", "gallium")) >= {i["w1"], i["d7"], i["w6"]}
    assert i["w2"] not in env.ids("--mineral", "gallium")
    assert set(env.ids("--since", "7d")) == {i["w1"], i["d7"], i["w2"]}
    assert set(env.ids("--since", "36h")) == {i["w1"], i["d7"]}
    since_date = (NOW - timedelta(days=20)).date().isoformat()
    assert set(env.ids("--since", since_date)) == {i["w1"], i["d7"], i["w2"], i["d5"]}
    assert env.ids("--limit", "2") == env.ids()[:2]
    assert set(env.ids("--all")) == set(i.values())
    assert set(env.ids("--all", "--since", "7d", "--topic", "critical-minerals")) == {
        i["w1"], i["d7"], i["w2"]}
    scores = {a["id"]: a["score"] for a in env.json_lines("review", "list", "--all")}
    for cut in ("0.3", "0.5", "0.95"):          # the digest's low-confidence block: --below 0.3
        below = {k for k, score in scores.items() if score is not None and score < float(cut)}
        assert set(env.ids("--all", "--below", cut)) == below
    assert 0 < len(set(env.ids("--all", "--below", "0.95"))) < len(scores)
    env.run("review", "list", "--below", "2", code=2)


def test_list_finds_words_in_the_title_or_text_as_the_pages_do(env):
    """The pages search titles and texts (and a test of the store named `review list --text`),
    but `review list` had no such option: "no such option: --text"."""
    i = env.id
    assert set(env.ids("--text", "GALLIUM EXPORTS")) == {i["w1"], i["d7"]}
    assert set(env.ids("--text", "  western   australia ")) == {i["w2"]}       # blanks folded
    assert set(env.ids("--text", "lithium", "--all")) == {i["d4"]} and env.ids("--text", "lithium") == []
    assert env.ids("--text", "100%") == []                                      # literal, not a wildcard


def test_list_status_filter(env):
    i = env.id
    env.run("review", "mark", str(i["w1"]), "relevant")
    env.run("review", "mark", str(i["d4"]), "relevant", "--topics", "critical-minerals")
    env.run("review", "mark", str(i["w2"]), "irrelevant")
    assert set(env.ids("--status", "relevant")) == {i["w1"], i["d4"]}   # d4 is not flagged
    assert env.ids("--status", "irrelevant") == [i["w2"]]
    assert set(env.ids("--status", "unreviewed")) == {i["d7"], i["d5"], i["w6"]}
    row = next(a for a in env.json_lines("review", "list") if a["id"] == i["w1"])
    assert row["status"] == "relevant" and row["review"]["reviewer"] == "alice"


def test_list_bad_arguments_exit_2(env):
    for args, message in ((["--since", "yesterday"], "--since"),
                          (["--country", "China"], "--country"),
                          (["--country", "ß"], "--country"),      # folds to SS (South Sudan)
                          (["--mineral", "galium"], "did you mean 'gallium'"),
                          (["--status", "relevnt"], "relevnt"),
                          (["--topic", "minerals"], "minerals")):
        result = env.run("review", "list", *args, code=2)
        assert message in result.output


# -- review show -----------------------------------------------------------------------

def test_show_whole_article_with_cluster_siblings_and_history(env):
    env.run("digest")                    # the digest clusters the near-duplicates w1 / d7
    i = env.id
    env.run("review", "mark", str(i["w1"]), "relevant", "--note", "first look")
    env.run("review", "mark", str(i["w1"]), "relevant", "--topics", "export-controls")
    out = env.run("review", "show", str(i["w1"])).stdout
    for part in ("China restricts gallium exports", "Metals Wire", "https://news.example/w1",
                 'keyword "gallium"', 'keyword "export licen*"', "classifier unavailable",
                 "language     en", "model        none (keywords only)",
                 "need export licences for shipments", "first look",
                 "relevant (export-controls) by alice"):
        assert part in out, part
    assert "1 other article(s) from Trade Desk" in out
    assert f"#{i['d7']}" in out
    assert out.count("[superseded]") == 1
    data = json.loads(env.run("review", "show", str(i["w1"]), "--json").stdout)
    assert data["siblings"][0]["id"] == i["d7"] and data["siblings"][0]["source"] == "Trade Desk"
    assert [h["current"] for h in data["history"]] == [True, False]
    assert data["text"].startswith("Beijing said")
    assert "published    (no date given)" not in out
    from sqlalchemy import create_engine, text

    engine = create_engine(env.url)          # an entry that gave no (usable) date
    with engine.begin() as conn:
        conn.execute(text("update article set published_at = null where id = :i"), {"i": i["w1"]})
    engine.dispose()
    out = env.run("review", "show", str(i["w1"])).stdout
    assert "published    (no date given)   (first seen " in out     # not the first-seen time


def test_show_unknown_id_exit_2(env):
    result = env.run("review", "show", "9999", code=2)
    assert "unknown article id: 9999" in result.output
    env.run("review", "show", "abc", code=2)
    huge = "99999999999999999999"                    # no database integer holds it
    assert f"unknown article id: {huge}" in env.run("review", "show", huge, code=2).output
    assert env.run("review", "list", "--limit", huge).exit_code == 0


def test_show_and_mark_read_ids_alike(env):
    """An id is ASCII digits for both commands: what `review mark` refuses as no id,
    `review show` refuses in the same words (not "٣" read as 3, nor -1 as an unknown id)."""
    i = env.id
    for word in ("٣", "３", " 7", "7 ", "+7", "-1", "²", "abc", "", "1e3"):
        message = f"not an article id: {word!r}"
        shown = env.run("review", "show", "--", word, code=2).output
        marked = env.run("review", "mark", "--", word, "irrelevant", code=2).output
        assert message in shown and message in marked, (word, shown, marked)
    for word in ("0", "9999", "99999999999999999999"):
        assert f"unknown article id: {word}" in env.run("review", "show", word, code=2).output
        assert f"unknown article id: {word}" in env.run("review", "mark", word, "irrelevant", code=2).output
    w1 = str(i["w1"])
    assert env.run("review", "show", w1).output == env.run("review", "show", "0" + w1).output
    assert reviews(env) == []


# -- review mark -----------------------------------------------------------------------

def reviews(env):
    return env.sql("select article_id, verdict, topics, note, reviewer, current from review "
                   "order by id")


def test_mark_and_remark_keeps_history(env):
    i = env.id
    out = env.run("review", "mark", str(i["w1"]), str(i["w2"]), "relevant").stdout
    assert f"#{i['w1']}: relevant (critical-minerals, export-controls) by alice" in out
    out = env.run("review", "mark", str(i["w2"]), "irrelevant", "--note", "company news").stdout
    assert "earlier verdict kept in history" in out
    assert reviews(env) == [
        (i["w1"], "relevant", "critical-minerals,export-controls", None, "alice", 1),
        (i["w2"], "relevant", "critical-minerals", None, "alice", 0),
        (i["w2"], "irrelevant", "", "company news", "alice", 1)]
    created = env.sql(f"select created_at from review where article_id = {i['w2']}")
    assert all(c[0] for c in created)


def test_mark_reviewer_falls_back_to_getpass(env, monkeypatch):
    monkeypatch.delenv("USER")
    monkeypatch.setattr("getpass.getuser", lambda: "bob")
    env.run("review", "mark", str(env.id["w1"]), "irrelevant")
    assert reviews(env)[-1][4] == "bob"


def test_mark_relevant_article_without_topics_needs_topics(env):
    i = env.id
    result = env.run("review", "mark", str(i["d4"]), "relevant", code=2)
    assert "has no topics" in result.output and "--topics" in result.output
    assert reviews(env) == []
    env.run("review", "mark", str(i["d4"]), "relevant", "--topics", "critical-minerals,export-controls")
    assert reviews(env)[0][2] == "critical-minerals,export-controls"


@pytest.mark.parametrize("args, message", [
    (["{w1}", "9999", "relevant"], "unknown article id: 9999"),
    (["{w1}", "relevnat"], "did you mean 'relevant'"),
    (["{w1}", "ok"], "use relevant or irrelevant"),
    (["{w1}"], "the last argument must be the verdict"),
    (["relevant"], "give one or more ids"),
    (["x1", "relevant"], "not an article id: 'x1'"),
    (["{w1}", "relevant", "--topics", "minerals"], "unknown topic 'minerals'"),
    (["{w1}", "irrelevant", "--topics", "export-controls"], "--topics goes only with relevant"),
    (["{w1}", "{d4}", "relevant"], "has no topics"),
    (["{w1}", "99999999999999999999", "relevant"], "unknown article id: 99999999999999999999"),
    (["{w1}", "irrelevant", "--note", "x" * 2001], "at most 2,000 are kept"),
    (["{w1}", "irrelevant", "--note", "see \x1b[2Jhere"], "control character (U+001B) at character 5"),
    (["{w1}", "irrelevant", "--note", "bidi\u202egnp.exe"], "control character (U+202E) at character 5"),
    (["{w1}", "²", "relevant"], "not an article id: '²'"),
])
def test_mark_errors_exit_2_and_write_nothing(env, args, message):
    env.run("review", "mark", str(env.id["w2"]), "relevant")
    before = reviews(env)
    args = [a.format(**env.id) for a in args]
    result = env.run("review", "mark", *args, code=2)
    assert message in result.output and result.output.startswith("error: ")
    assert reviews(env) == before


def test_an_empty_database_is_refused_like_a_missing_file(tmp_path, feed_server, store_url,
                                                          monkeypatch):
    """On PostgreSQL the commands that only read the store make no tables in a database that
    holds none (a URL naming the wrong database): they refuse it, naming it, and a
    `monitor digest` mails nothing."""
    if store_url.startswith("sqlite"):
        pytest.skip("an empty database of a server (the SQLite file: the test above)")
    from sqlalchemy import create_engine, inspect

    monkeypatch.delenv("MONITOR_STORE_URL", raising=False)
    e = Env(tmp_path, feed_server, url=store_url)
    for args in (["review", "list"], ["keywords", "test"], ["reclassify"], ["feeds"],
                 ["digest"]):
        result = e.run(*args, code=2)
        assert "no store in the database" in result.output, (args, result.output)
        assert "run `monitor poll` first" in result.output
    engine = create_engine(store_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert not (tmp_path / "outbox").exists()
    e.run("poll")                                   # poll creates it; then they work
    e.run("review", "list")


def test_missing_store_exit_2_and_no_file_created(tmp_path, feed_server, monkeypatch):
    """Every command that only reads the store — `feeds` and `digest` (sending or not) as well as
    the review commands — says there is none yet, where it was looked for and what to run,
    and creates nothing."""
    monkeypatch.delenv("MONITOR_STORE_URL", raising=False)
    e = Env(tmp_path, feed_server)
    preview = tmp_path / "preview.html"
    for args in (["review", "list"], ["review", "show", "1"], ["review", "mark", "1", "relevant"],
                 ["keywords", "test"], ["reclassify"], ["feeds"], ["digest", "--preview", str(preview)], ["digest"],
                 ["digest", "--resend"]):
        result = e.run(*args, code=2)
        assert f"no store at {e.db} (store.url in {e.config})" in result.output, (args, result.output)
        assert "run `monitor poll` first" in result.output
        assert not e.db.exists() and not e.db.parent.exists() and not preview.exists()
    monkeypatch.setenv("MONITOR_STORE_URL", e.url)
    assert f"no store at {e.db} ($MONITOR_STORE_URL)" in e.run("feeds", code=2).output


# -- keywords test and reclassify ------------------------------------------------------

def stored(env):
    return env.sql("select id, flagged, topics, reasons, classified_at from article order by id")


def test_keywords_test_reports_the_diff_of_a_config_edit_and_changes_nothing(env):
    i = env.id
    before = stored(env)
    nothing = json.loads(env.run("keywords", "test", "--json").stdout)
    assert nothing["articles"] == 6 and nothing["unchanged"] == 6   # w6 is 40 days old
    env.write_config(EDITED)
    report = json.loads(env.run("keywords", "test", "--json").stdout)
    assert report["model"] is None
    assert (report["newly_flagged"], report["no_longer_flagged"], report["topic_changes"],
            report["unchanged"]) == (1, 1, 1, 3)
    examples = report["examples"]
    assert [e["id"] for e in examples["newly_flagged"]] == [i["d4"]]
    assert examples["newly_flagged"][0]["after"] == ["critical-minerals"]
    assert [e["id"] for e in examples["no_longer_flagged"]] == [i["d5"]]
    assert 'muted by "semiconductor*"' in examples["no_longer_flagged"][0]["reasons"]
    change = examples["topic_changes"][0]
    assert (change["id"], change["before"], change["after"]) == (
        i["w2"], ["critical-minerals"], ["critical-minerals", "export-controls"])
    text = env.run("keywords", "test", "--days", "5", "--examples", "1").stdout
    assert "newly flagged        1" in text and "no longer flagged    0" in text
    assert "Lithium prices slump in Chile" in text and "nothing was changed" in text
    # no model here: the plain reclassify it used to point to refuses (exit 2)
    assert "`monitor reclassify --days 5 --keywords-only` applies this" in text
    assert "`monitor reclassify --days 5` would refuse" in text
    env.run("reclassify", "--days", "5", code=2)
    assert stored(env) == before


def test_reclassify_applies_the_current_rules(env):
    i = env.id
    env.run("review", "mark", str(i["d5"]), "relevant")
    env.write_config(EDITED)
    out = env.run("reclassify", "--days", "30", "--batch-size", "2", "--keywords-only").stdout
    assert "reclassified 6 article(s) of the last 30 days" in out
    assert "newly flagged        1" in out and "no longer flagged    1" in out
    assert "topic changes        1" in out and "\r" not in out      # no bar on a pipe
    now = {a["id"]: a for a in env.json_lines("review", "list", "--all")}
    assert now[i["d4"]]["flagged"] and now[i["d4"]]["topics"] == ["critical-minerals"]
    assert now[i["d4"]]["reasons"] == ["classifier unavailable", 'keyword "lithium"']
    assert not now[i["d5"]]["flagged"] and now[i["d5"]]["status"] == "relevant"  # review kept
    assert now[i["w2"]]["topics"] == ["critical-minerals", "export-controls"]
    assert now[i["w6"]]["topics"] == ["critical-minerals"]            # outside --days
    assert "CL" in now[i["d4"]]["countries"] and now[i["d4"]]["language"] == "en"
    stamps = dict((r[0], r[4]) for r in stored(env))
    assert stamps[i["w6"]] < stamps[i["d4"]]
    again = json.loads(env.run("keywords", "test", "--json").stdout)
    assert again["unchanged"] == again["articles"] == 6
    everything = env.run("reclassify", "--keywords-only").stdout
    assert "reclassified 7 article(s) of all stored articles" in everything


@pytest.mark.parametrize("digest_later", [timedelta(hours=2), timedelta(0)])
def test_reclassify_says_which_newly_flagged_articles_no_digest_will_mail(env, monkeypatch,
                                                                           digest_later):
    """Each digest period is mailed once. An article reclassify newly flags that falls in a
    period a digest was already made for (first seen more than an hour before its end,
    published before it) is never mailed; reclassify said nothing of it. Now it counts
    them and names them; one the next digest will still pick up (first seen within the
    hour before that digest, digest_later=0) is not counted."""
    import monitor.clock

    i = env.id
    made_at = datetime.now(timezone.utc) + digest_later
    monkeypatch.setattr(monitor.clock, "utcnow", lambda: made_at)
    env.run("digest")                                  # w1, w2 … mailed; d4 not flagged yet
    monkeypatch.undo()
    env.write_config(EDITED)
    said = "1 of the 1 newly flagged article(s) fall before the end of the last digest already made"
    # the dry run says it before reclassify is run (the model is unavailable in this env,
    # as in reclassify --keywords-only)
    dry = env.run("keywords", "test", "--days", "30").stdout
    late = json.loads(env.run("keywords", "test", "--days", "30", "--json").stdout)
    assert late["before_last_digest"]["last_digest"] == env.sql("select digest_date from digest")[0][0]
    out = env.run("reclassify", "--days", "30", "--keywords-only").stdout
    assert "newly flagged        1" in out
    if not digest_later:
        assert said not in out and said not in dry
        assert late["before_last_digest"]["count"] == 0
        return
    assert said in out and f"UTC): #{i['d4']}; they are not mailed" in out
    assert "(each period is mailed once); `monitor review list` shows them" in out
    assert said in dry and "reclassifying would flag them, no digest would mail them" in dry
    assert late["before_last_digest"]["count"] == 1 and late["before_last_digest"]["ids"] == [i["d4"]]
    assert i["d4"] in env.ids()                         # flagged, listed
    later = made_at + timedelta(days=1)
    monkeypatch.setattr(monitor.clock, "utcnow", lambda: later)
    env.run("digest")                                  # the next digest: d4 is not in it
    assert not env.sql(f"select digest_id from digest_item where article_id = {i['d4']}")


def test_reclassify_keeps_what_a_poll_stored_while_it_ran(env, feed_server, monkeypatch):
    """The Desk rewrites d4 (lithium, Chile) as a football story, and a poll stores it after
    reclassify has read its batch and before it writes it: the football story keeps the
    poll's verdict and countries (not flagged), not the lithium story's (newly flagged,
    CL), and the output counts it as skipped, not as newly flagged."""
    from monitor.analyze import Analyzer

    i = env.id
    env.write_config(EDITED)
    rewritten = [d if d[0] != "d4" else ("d4", "Colo-Colo win the cup final",
                                         "The match at the national stadium ended 2-1.", 2)
                 for d in DESK]
    feed_server.add("/desk", rss("Trade Desk", rewritten))
    analyse, polled = Analyzer.analyse, []

    def poll_meanwhile(self, docs, found=None):
        if not polled:
            polled.append(True)
            assert "updated    1" in env.run("poll", "--all").stdout
        return analyse(self, docs, found)

    monkeypatch.setattr(Analyzer, "analyse", poll_meanwhile)
    out = env.run("reclassify", "--days", "30", "--keywords-only").stdout
    assert polled
    now = {a["id"]: a for a in env.json_lines("review", "list", "--all")}
    assert now[i["d4"]]["title"] == "Colo-Colo win the cup final"
    assert not now[i["d4"]]["flagged"] and "CL" not in now[i["d4"]]["countries"]
    assert not now[i["d5"]]["flagged"]                               # reclassified
    assert now[i["w2"]]["topics"] == ["critical-minerals", "export-controls"]
    assert "reclassified 5 article(s) of the last 30 days" in out
    assert "newly flagged        0" in out and "no longer flagged    1" in out
    assert "topic changes        1" in out and "unchanged            3" in out
    assert "skipped              1 (rewritten by a poll meanwhile" in out


@pytest.mark.parametrize("model", ["missing", "tampered", "typo"])
def test_reclassify_refuses_without_a_model_unless_keywords_only(env, model):
    env.write_config(EDITED)
    text = env.config.read_text(encoding="utf-8")
    path = env.tmp / "no-model.skops"
    if model == "tampered":
        path.write_bytes(b"not a model")
    elif model == "typo":
        env.config.write_text(text.replace("no-model.skops", "modle.skops"), encoding="utf-8")
    before = stored(env)
    result = env.run("reclassify", "--days", "30", code=2)
    assert "error: model unavailable: " in result.stderr
    assert "nothing was changed" in result.output and "--keywords-only" in result.output
    assert "reclassified" not in result.output
    assert stored(env) == before                                    # not one verdict written
    out = env.run("reclassify", "--days", "30", "--keywords-only")
    assert "--keywords-only: storing keyword-only verdicts" in out.stderr
    assert "reclassified 6 article(s)" in out.stdout and stored(env) != before


# -- reviews for training --------------------------------------------------------------

def test_reviews_for_training(env):
    from monitor.storage import open_store
    from monitor.train import apply_reviews

    i = env.id
    env.run("review", "mark", str(i["w1"]), "irrelevant")
    env.run("review", "mark", str(i["w1"]), "relevant", "--topics", "export-controls")
    env.run("review", "mark", str(i["w3"]), "irrelevant", "--note", "gold")
    with open_store(env.url) as store:
        records, changed = store.reviews_for_training()
    assert changed == []
    assert records == [
        {"id": f"review:{i['w1']}", "url": "https://news.example/w1", "lang": "en",
         "title": "China restricts gallium exports", "text": WIRE[0][2],
         "topics": ["export-controls"]},
        {"id": f"review:{i['w3']}", "url": "https://news.example/w3", "lang": "en",
         "title": "Gold price climbs on rate bets", "text": WIRE[2][2], "topics": []}]
    corpus = [{"id": "c1", "url": "https://news.example/w3", "lang": "en",   # the same story
               "title": "Gold price climbs on rate bets", "text": "x",
               "topics": ["critical-minerals"]}]
    labelled = apply_reviews(corpus, records)
    assert labelled[0]["topics"] == [] and labelled[1]["topics"] == ["export-controls"]


# -- the store as it is: views through the sqlite3 CLI ---------------------------------

@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 CLI is not installed")
def test_views_with_the_sqlite3_cli(env, sqlite_only):
    def sqlite(query: str) -> list[list[str]]:
        out = subprocess.run(["sqlite3", "-separator", "|", str(env.db), query],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return [line.split("|") for line in out.splitlines()]

    i = env.id
    rows = sqlite("select id, source, title, topics, countries, minerals from flagged "
                  "order by published desc limit 20")
    assert len(rows) == 5 and {int(r[0]) for r in rows} == {i["w1"], i["d7"], i["w2"], i["d5"], i["w6"]}
    w1 = next(r for r in rows if int(r[0]) == i["w1"])
    assert w1[1:4] == ["Metals Wire", "China restricts gallium exports",
                       "critical-minerals,export-controls"]
    assert {"CN", "JP", "US"} <= set(w1[4].split(",")) and "gallium" in w1[5].split(",")
    assert sqlite("select count(*) from flagged where countries like '%AU%'") == [["1"]]
    health = sqlite("select name, health, error_count, articles from feed_health order by name")
    assert health == [["Metals Wire", "ok", "0", "4"], ["Trade Desk", "ok", "0", "3"]]
    env.run("review", "mark", str(i["w1"]), "relevant")
    joined = sqlite("select f.id, r.verdict, r.reviewer from flagged f "
                    "join review r on r.article_id = f.id and r.current")
    assert joined == [[str(i["w1"]), "relevant", "alice"]]


# -- the pure parts --------------------------------------------------------------------

def test_parse_since():
    now = datetime(2025, 6, 5, 12, 0, tzinfo=timezone.utc)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2W", now) == now - timedelta(weeks=2)
    assert parse_since("2025-06-01", now) == datetime(2025, 6, 1, tzinfo=timezone.utc)
    assert parse_since("2025-06-01T08:00+02:00", now) == datetime(2025, 6, 1, 6, tzinfo=timezone.utc)
    for bad in ("7", "last week", "-3d", ""):
        with pytest.raises(UsageError):
            parse_since(bad, now)


def test_mark_arguments_and_topics():
    assert parse_mark_args(["3", "1", "3", "irrelevant"]) == ((3, 1), "irrelevant")
    assert parse_article_id("42") == 42 and parse_article_id("042") == 42
    for bad in ("٣", "３", " 7", "-1", "+7", "²", ""):
        with pytest.raises(UsageError, match="not an article id"):
            parse_article_id(bad)
    assert check_verdict("relevant") == "relevant"
    with pytest.raises(UsageError, match="did you mean 'irrelevant'"):
        check_verdict("irelevant")
    assert check_topics(["export-controls,critical-minerals"]) == ("critical-minerals", "export-controls")
    assert check_topics([]) == ()


def test_a_verdict_is_read_case_aside_both_ways():
    """`review mark 42 Relevant` was refused ("did you mean 'relevant'?") while
    `review mark 42 IRRELEVANT` and `… Not Relevant` were taken."""
    for word in ("Relevant", "RELEVANT", " relevant"):
        assert check_verdict(word) == "relevant"
        assert parse_mark_args(["42", word]) == ((42,), "relevant")
    for word in ("IRRELEVANT", "Irrelevant", "Not Relevant"):
        assert check_verdict(word) == "irrelevant"
    with pytest.raises(UsageError, match="did you mean 'relevant'"):
        check_verdict("relevent")


def test_verdict_diff_counts():
    def s(i, flagged, topics, countries=()):
        return StoredVerdict(i, "t", "s", datetime(2025, 6, 1, tzinfo=timezone.utc), flagged,
                             topics, countries)

    diff = VerdictDiff()
    diff.add(s(1, False, ()), True, ("critical-minerals",), ())
    diff.add(s(2, True, ("critical-minerals",)), False, (), ())
    diff.add(s(3, True, ("critical-minerals",)), True, ("critical-minerals", "export-controls"), ())
    diff.add(s(4, True, ("critical-minerals",), ("CN",)), True, ("critical-minerals",), (), ("CN", "US"))
    diff.add(s(5, False, ()), False, (), ())
    assert diff.counts() == {"articles": 5, "newly_flagged": 1, "no_longer_flagged": 1,
                             "topic_changes": 1, "unchanged": 2}
    assert diff.countries_changed == 1


def test_table_columns_line_up_under_wide_characters():
    from monitor.review import _columns, _row

    rows = [_row(["1", "2025-06-01", "Asia Wire", "稀土出口管制：商务部发布新规，对部分中重稀土相关物项实施出口管制",
                  "CN", "rare-earths", "0.99", "", "x"]),
            _row(["2", "2025-06-01", "Metals Desk", "Gallium curbs", "US", "gallium", "0.50", "", "x"])]
    starts = [_columns(row[:row.index(code)]) for row, code in zip(rows, ("CN", "US"))]
    assert starts[0] == starts[1]


def test_notes_lose_only_their_surrounding_blanks_and_old_control_characters_print_escaped(env):
    i = env.id
    env.run("review", "mark", str(i["w1"]), "irrelevant", "--note", "  two\n  lines\t ok  ")
    assert reviews(env)[-1][3] == "two\n  lines\t ok"
    # a note stored by an older version, before control characters were refused
    from sqlalchemy import create_engine, text

    engine = create_engine(env.url)
    with engine.begin() as conn:
        conn.execute(text("update review set note = :n"), {"n": "bad\x1b[31m\x07 note\x9b\u202e"})
    engine.dispose()
    out = env.run("review", "show", str(i["w1"])).stdout
    assert "bad\\x1b[31m\\x07 note\\x9b\\u202e" in out and "\x1b" not in out and "\x07" not in out
    shown = env.run("review", "show", str(i["w1"]), "--json").stdout
    assert "\x9b" not in shown and "\u202e" not in shown
    assert json.loads(shown)["history"][0]["note"] == "bad\x1b[31m\x07 note\x9b\u202e"


def test_not_relevant_in_the_pages_words_and_spans_beyond_the_calendar(env):
    i = env.id
    out = env.run("review", "mark", str(i["w1"]), "not", "relevant").stdout
    assert f"#{i['w1']}: irrelevant" in out
    out = env.run("review", "mark", str(i["w2"]), "not-relevant").stdout
    assert f"#{i['w2']}: irrelevant" in out
    assert len(env.ids("--since", "99999999d", "--status", "irrelevant")) == 2      # all of time
    assert env.ids("--mineral", "Rare Earths") == env.ids("--mineral", "rare-earths")
    for command in (["keywords", "test", "--days", "99999999"], ["reclassify", "--days", "99999999"]):
        result = env.run(*command, code=2)
        assert "--days" in result.output and "Traceback" not in result.output


def test_a_verdict_on_a_text_the_feed_rewrote_since_is_left_out_of_training(env, feed_server):
    """A feed rewrote a reviewed item under the same link (a correction, a withdrawn
    story): its old verdict stayed current and trained the model on the new text — a
    weather notice learned as relevant to both topics."""
    from monitor.storage import open_store

    i = env.id
    env.run("review", "mark", str(i["w2"]), "relevant")
    env.run("review", "mark", str(i["w1"]), "relevant", "--topics", "export-controls")
    rewritten = [w if w[0] != "w2" else ("w2", "Weekend weather in Perth", "Sunny and mild.", 3)
                 for w in WIRE]
    feed_server.add("/wire", rss("Metals Wire", rewritten))
    assert "1 updated" in env.run("poll", "--all").output
    with open_store(env.url) as store:
        records, changed = store.reviews_for_training()
    assert changed == [i["w2"]] and [r["id"] for r in records] == [f"review:{i['w1']}"]
    shown = env.run("review", "show", str(i["w2"])).output
    assert "given on an earlier text (the feed rewrote the article since): not used in training" in shown
    env.run("review", "mark", str(i["w2"]), "irrelevant")      # judged again, on the new text
    with open_store(env.url) as store:
        records, changed = store.reviews_for_training()
    assert changed == [] and {r["id"] for r in records} == {f"review:{i['w1']}", f"review:{i['w2']}"}


def test_of_two_verdicts_on_copies_of_one_story_the_newer_decides_and_is_counted_once():
    """Two feeds carried one story (same link and title); bob judged one copy, then alice
    the other: the copy with the higher article id had won whatever its date, and copies of
    no labelled item were trained twice, with both labels."""
    from monitor.train import _apply_reviews

    story = {"url": "https://news.example/copper", "lang": "en", "title": "Painted stones instead of copper",
             "text": "A trader received painted stones."}
    labelled = [dict(story, id="pool:1", topics=["critical-minerals"])]
    bob = dict(story, id="review:19", topics=[])                  # older
    alice = dict(story, id="review:5", topics=["critical-minerals"])
    out, targets, superseded = _apply_reviews(labelled, [bob, alice])
    assert out[0]["topics"] == ["critical-minerals"] and targets == [0, 0]
    assert superseded == [True, False]
    unlabelled = dict(story, url="https://news.example/gallium", title="Gallium curbs")
    out, targets, superseded = _apply_reviews([], [dict(unlabelled, id="review:1", topics=["export-controls"]),
                                                   dict(unlabelled, id="review:16", topics=[])])
    assert len(out) == 1 and out[0]["topics"] == [] and superseded == [True, False]


def test_a_reclassify_cut_short_says_what_it_stored_and_names_the_articles_no_digest_will_mail(
        env, monkeypatch):
    """Ctrl-C after some batches: they stay stored (one transaction each), and the articles
    they newly flagged that fall before the last digest were never named — a second run
    finds them flagged already. It says what was stored and names them."""
    import monitor.cli.review as review_cli
    import monitor.clock

    i = env.id
    made_at = datetime.now(timezone.utc) + timedelta(hours=2)
    monkeypatch.setattr(monitor.clock, "utcnow", lambda: made_at)
    env.run("digest")
    monkeypatch.undo()
    env.write_config(EDITED)
    in_window = sorted(a["id"] for a in env.json_lines("review", "list", "--all", "--since", "30d"))
    stop_after = in_window.index(i["d4"]) + 1           # batches of one: stop once d4 is stored

    class Bar:
        done = 0

        def update(self, n):
            Bar.done += n
            if Bar.done >= stop_after:
                raise KeyboardInterrupt

    monkeypatch.setattr(review_cli, "_progress", lambda total: contextlib.nullcontext(Bar()))
    cut = env.run("reclassify", "--days", "30", "--keywords-only", "--batch-size", "1", code=1)
    assert f"interrupted: {stop_after} article(s) were re-classified and stored" in cut.stderr
    assert f"UTC): #{i['d4']}; they are not mailed" in cut.stderr
    monkeypatch.undo()
    again = env.run("reclassify", "--days", "30", "--keywords-only").stdout
    assert "they are not mailed" not in again            # why it had to be said the first time


@contextlib.contextmanager
def _other_database(tmp_path, store_url):
    """A database of the other engine than ``store_url`` when there is one (SQLite →
    PostgreSQL and back), else another SQLite file."""
    from conftest import PG_ADMIN

    if not store_url.startswith("sqlite") or not PG_ADMIN:
        yield f"sqlite:///{tmp_path / 'moved' / 'monitor.db'}"
        return
    import uuid

    from sqlalchemy import create_engine, make_url, text

    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_store_copy_moves_everything_so_nothing_is_polled_judged_or_mailed_again(env, tmp_path, feed_server,
                                                                                monkeypatch):
    """A team moving its SQLite file to PostgreSQL had only a new empty database: the
    verdicts and the record of the digests were lost, and the same day's digest went out
    again."""
    i = env.id
    env.run("review", "mark", str(i["w1"]), "relevant", "--note", "Gallium licences — watch")
    assert "written to" in env.run("digest").output
    before = env.json_lines("review", "list", "--all")
    with _other_database(tmp_path, env.url) as target:
        done = env.run("store", "copy", target)
        assert "copied 2 feeds, 7 articles, 1 verdicts, 1 digests and 1 deliveries" in done.output
        assert "next: set store.url" in done.output
        refused = env.run("store", "copy", target, code=2)                  # not into a filled one
        assert "the target already holds 2 feed rows, 7 article rows" in refused.output
        assert "TARGET is the store itself" in env.run("store", "copy", env.url, code=2).output
        monkeypatch.setenv("MONITOR_STORE_URL", target)
        assert env.json_lines("review", "list", "--all") == before
        shown = env.run("review", "show", str(i["w1"])).output
        assert "Gallium licences — watch" in shown
        assert "already sent" in env.run("digest").output                   # not mailed again
        assert "new    0" in env.run("poll", "--all").output                 # nor stored again
        feed_server.add("/wire", rss("Metals Wire", WIRE + [("w9", "Gallium smelter restarts",
                                                              "A gallium smelter restarted.", 0)]))
        assert "new    1" in env.run("poll", "--all").output                 # new ids follow on
        newest = {a["title"]: a["id"] for a in env.json_lines("review", "list", "--all")}
        assert newest["Gallium smelter restarts"] > max(i.values())
    monkeypatch.delenv("MONITOR_STORE_URL")
    assert env.json_lines("review", "list", "--all") == before                # the source as it was


def test_store_copy_leaves_out_rows_whose_article_was_deleted_by_hand_and_says_so(env, sqlite_only, tmp_path):
    """The sqlite3 shell keeps foreign keys off: a verdict (and the country rows) of an
    article deleted there would be refused by a database that checks them, failing the copy."""
    import sqlite3

    i = env.id
    env.run("review", "mark", str(i["w2"]), "relevant")
    with sqlite3.connect(env.db) as shell:
        shell.execute("delete from article where id = ?", (i["w2"],))
    target = tmp_path / "moved.db"
    done = env.run("store", "copy", f"sqlite:///{target}")
    assert "copied 2 feeds, 6 articles, 0 verdicts" in done.output
    assert "left out 1 review row(s) whose parent row is missing" in done.output
    with sqlite3.connect(target) as copy:
        assert copy.execute("pragma foreign_key_check").fetchall() == []


def test_store_copy_reads_one_state_of_a_store_a_service_writes_to(env, tmp_path):
    """A feed and its first article written while the copy ran (a service polling): the
    article was read after its feed had been copied, and its missing parent failed the
    whole copy (SQLite reads outside a transaction, PostgreSQL's READ COMMITTED)."""
    from sqlalchemy import create_engine, text

    from monitor.storage import open_store
    from monitor.storage.copy import copy_store

    writer = create_engine(env.url)

    def service_writes(table, rows):
        if table != "feed":
            return
        with writer.begin() as conn:
            feed = conn.execute(text(
                "insert into feed (url, name, interval_minutes, silent_after_days, active, "
                "error_count, created_at) values ('http://127.0.0.1:9/new', 'New', 60, 3, "
                "true, 0, '2026-03-01 00:00:00+00') returning id")).scalar_one()
            conn.execute(text(
                "insert into article (feed_id, key, title, text, content_hash, first_seen_at, "
                "topics, reasons) values (:f, 'new', 't', 'x', 'h', "
                "'2026-03-01 00:00:00+00', '', '[]')"), {"f": feed})

    try:
        with open_store(env.url) as source, \
                open_store(f"sqlite:///{tmp_path / 'moved.db'}") as target:
            report = copy_store(source, target, service_writes)
    finally:
        writer.dispose()
    assert report.copied["feed"] == 2 and report.copied["article"] == 7
    assert report.left_out == {}


def test_store_copy_refuses_another_programs_database_and_leaves_it_as_it_was(env, sqlite_only,
                                                                          tmp_path):
    """A TARGET that named another program's SQLite file (a slip of the path) was filled:
    the store's tables made in it, the file turned to WAL mode, the feeds' passwords in it
    at its mode (0644); one with a table named like the store's got the tables and the
    schema stamp before the copy refused."""
    import sqlite3

    for name, table in (("notes.db", "notes"), ("feeds.db", "feed")):
        other = tmp_path / name
        with sqlite3.connect(other) as conn:
            conn.execute(f"create table {table} (x)")
            conn.execute(f"insert into {table} values ('mine')")
        conn.close()
        before = other.read_bytes()
        refused = env.run("store", "copy", f"sqlite:///{other}", code=2)
        assert f"holds tables that are not a monitor store's ({table})" in refused.output
        assert other.read_bytes() == before
        assert not other.with_name(name + "-wal").exists()
    done = env.run("store", "copy", f"sqlite:///{tmp_path / 'new.db'}")   # a new file is fine
    assert "copied 2 feeds" in done.output


def test_feeds_and_digest_with_another_config_leave_the_stores_feed_list_alone(env, tmp_path):
    """`monitor feeds` and `monitor digest --preview` run with another config on the same
    store (another folder's, the example one) had made the store's feed list that config's:
    the service then polled the other config's feeds and stopped polling its own."""
    before = env.sql("select id, url, name, active from feed order by id")
    other = tmp_path / "other.toml"
    other.write_text(f'[store]\nurl = "{env.url}"\n[[feeds]]\nname = "Elsewhere"\n'
                     'url = "http://127.0.0.1:9/elsewhere"\n[digest]\n'
                     f'outbox_dir = "{tmp_path / "outbox2"}"\nrecipients = ["b@example.org"]\n', encoding="utf-8")
    for args in (["feeds"], ["digest", "--preview", str(tmp_path / "p.html")]):
        result = env.runner.invoke(monitor.cli.cli, ["--config", str(other), *args])
        assert result.exit_code == 0, result.output
    assert env.sql("select id, url, name, active from feed order by id") == before
    shown = env.runner.invoke(monitor.cli.cli, ["--config", str(other), "feeds"]).output
    assert "Metals Wire" in shown and "Elsewhere" not in shown            # the store's feeds
