"""Hostile content inside well-formed feeds (issue 8, cases 9–11): markup and dangerous
links, control characters headed for mail headers, impossible dates, colliding guids,
and servers whose answers change (churn, 200/500 flips). In-process, every store engine.
"""

import re
from datetime import datetime, timedelta, timezone

from hostile_kit import (
    Clock,
    by_name,
    item,
    poll,  # noqa: F401  (fixture)
    rss,
    sequence,
    stories,
)
from storeview import article_keys, count_articles

HOSTILE_ITEMS = [
    '<item><title>Gallium &lt;script&gt;alert(1)&lt;/script&gt;quotas</title>'
    '<link>javascript:alert(document.cookie)</link><guid isPermaLink="false">c9-1</guid>'
    '<description>&lt;script&gt;steal()&lt;/script&gt;Gallium exports '
    '&lt;b onmouseover="x()"&gt;cut&lt;/b&gt;.</description></item>',
    '<item><title><![CDATA[Gallium 5 < 6 & "quotes" <i>tags</i>]]></title>'
    '<link>data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==</link>'
    '<guid isPermaLink="false">c9-2</guid><description>Gallium text.</description></item>',
    '<item><title>Gallium line one&#13;&#10;Bcc: victim@example.org&#7;&#27;[31m red</title>'
    '<link>https://x.example/a&#13;&#10;Set-Cookie: a=b</link><guid isPermaLink="false">c9-3</guid>'
    '<description>Gallium\x07 bell\x1b and tab\there.</description></item>',
]


def test_09_script_links_and_control_characters_stored_as_text_rendered_escaped(
        feed_server, poll, tmp_path):
    from monitor.digest import build_digest, render, subject
    from monitor.mail import build_message

    url = feed_server.add("/c9", rss(HOSTILE_ITEMS))
    clock = Clock()
    config_kw = dict(keywords={"critical-minerals": ["gallium"]},
                     classifier={"model": str(tmp_path / "no-model.skops")})
    report, store, config = poll([("c9", url)], clock=clock, analyze=_analyzer(config_kw), **config_kw)
    assert by_name(report)["c9"].new == 3 and by_name(report)["c9"].flagged == 3

    articles = store.digest_candidates(clock() - timedelta(hours=1), clock() + timedelta(hours=1))
    stored = {a.title: a for a in articles}
    assert set(stored) == {"Gallium quotas", 'Gallium 5 < 6 & "quotes" tags',
                           "Gallium line one Bcc: victim@example.org[31m red"}
    assert stored["Gallium quotas"].text == "Gallium exports cut."        # script dropped
    assert stored["Gallium quotas"].url is None                           # javascript: not kept
    assert stored['Gallium 5 < 6 & "quotes" tags'].url is None            # data: not kept
    line = stored["Gallium line one Bcc: victim@example.org[31m red"]
    assert line.url == "https://x.example/aSet-Cookie: a=b" and line.text == "Gallium bell and tab here."

    digest = build_digest(articles, {a.id: a.id for a in articles}, digest_date="2025-06-05",
                          period_start=clock() - timedelta(days=1), period_end=clock(),
                          zone=config.digest.zone(), max_items=40)
    line_subject = subject(config.digest.subject, digest)
    html, text = render(digest, line_subject)
    assert re.search(r"Gallium 5 &lt; 6 &amp; (&#34;|&quot;|\")quotes", html)    # escaped once
    assert "<i>tags" not in html and "<script" not in html.lower()
    assert "javascript:" not in html and "data:text/html" not in html
    assert '5 < 6 & "quotes" tags' in text                                 # plain text, unescaped
    message = build_message(sender="monitor@example.org", recipient="ana@example.org",
                            subject=line_subject, html=html, text=text, when=clock())
    head = message.as_string().split("\n\n", 1)[0]
    assert message["Bcc"] is None and "victim" not in head and "Set-Cookie" not in head
    assert all(ord(c) >= 32 or c in "\r\n\t" for c in head)


def _analyzer(config_kw):
    """The real analyser (keywords, no model) for the config the poll builds."""
    from monitor.config import parse_config
    from monitor.service import build_analyzer

    return build_analyzer(parse_config({"poll": {"contact_url": "http://127.0.0.1/c"}, **config_kw}))


def test_10_far_future_1970_and_unparsable_dates_are_stored_without_a_date(feed_server, poll):
    dates = {
        "future": "Tue, 01 Jan 2999 00:00:00 GMT", "epoch": "Thu, 01 Jan 1970 00:00:00 GMT",
        "garbage": "yesterday-ish, around noon", "impossible": "Mon, 99 Foo 2025 99:99:99 +9999",
        "year-10000": "Sat, 01 Jan 10000 00:00:00 GMT", "negative": "-0001-01-01T00:00:00Z",
        "valid": "Wed, 04 Jun 2025 10:00:00 GMT",
    }
    url = feed_server.add("/dates", rss([item(k, pub=v) for k, v in dates.items()]))
    clock = Clock()
    report, store, _ = poll([("dates", url)], clock=clock)
    assert by_name(report)["dates"].new == len(dates)
    published = stored_dates(store)
    assert published.pop("Story valid") == datetime(2025, 6, 4, 10, 0, tzinfo=timezone.utc)
    # feedparser reads "-0001-…" as the year 2000; any date kept is a plausible one
    negative = published.pop("Story negative")
    assert negative is None or datetime(1990, 1, 1, tzinfo=timezone.utc) <= negative <= clock()
    assert published == dict.fromkeys(published, None) and len(published) == 5


def stored_dates(store):
    """{title: published_at} of every stored article, through the store's own table types."""
    from sqlalchemy import select

    from monitor.storage.tables import ArticleRow

    table = ArticleRow.__table__
    with store.engine.connect() as conn:
        return dict(conn.execute(select(table.c.title, table.c.published_at)).all())


def test_10_guids_colliding_across_feeds_stay_apart(feed_server, poll):
    same = rss(stories("shared", 3))
    a = feed_server.add("/a", same)
    b = feed_server.add("/b", same)
    # within one feed: one guid for two stories (two links), and an exact repeat
    c = feed_server.add("/c", rss([item("g", link="https://n.example/1"), item("g", link="https://n.example/2"),
                                   item("g", link="https://n.example/2")]))
    clock = Clock()
    report, store, config = poll([("a", a), ("b", b), ("c", c)], clock=clock)
    assert {f.name: f.new for f in report.feeds} == {"a": 3, "b": 3, "c": 2}
    keys = article_keys(store)
    assert len(keys) == 8 and len(set(keys)) == 8
    assert sorted(k for u, k in keys if u == a) == sorted(k for u, k in keys if u == b)
    clock.advance(hours=2)
    report, store, _ = poll([("a", a), ("b", b), ("c", c)], clock=clock)
    assert report.total("new") == 0 and count_articles(store) == 8


def test_11_churning_feed_loses_and_duplicates_nothing(feed_server, poll):
    changed = item("churn-3", text="Text of story churn-3, corrected.")
    docs = [rss(stories("churn", 5)),                                   # 0-4
            rss(stories("churn", 3, start=6) + [changed] + stories("churn", 2, start=4)),  # 3-8
            rss(stories("churn", 2, start=9)),                          # 9-10
            rss(stories("churn", 5))]                                   # 0-4 again, 3 reverted
    url = feed_server.add("/churn", handler=sequence(*[(200, d.encode()) for d in docs]))
    clock = Clock()
    totals = []
    for _ in range(8):
        report, store, _ = poll([("churn", url)], clock=clock)
        f = by_name(report)["churn"]
        assert f.status == "ok", f.error
        totals.append((f.new, f.updated))
        clock.advance(hours=1)
    # (new, updated): the second round brings nothing new, only churn-3 changing back and forth
    assert totals == [(5, 0), (4, 1), (2, 0), (0, 1), (0, 0), (0, 1), (0, 0), (0, 1)]
    assert count_articles(store) == 11 and duplicates_in(store) == 0


def duplicates_in(store):
    keys = article_keys(store)
    return len(keys) - len(set(keys))


def test_11_feed_flipping_between_200_and_500(feed_server, poll):
    doc = rss(stories("flip", 5)).encode()
    url = feed_server.add("/flip", handler=sequence((200, doc), (500, b"oops")))
    steady = feed_server.add("/steady", rss(stories("steady", 2)))
    clock = Clock()
    for cycle in range(6):
        report, store, _ = poll([("flip", url), ("steady", steady)], clock=clock)
        f = by_name(report)["flip"]
        health = {h.name: h for h in store.feed_health(clock())}["flip"]
        if cycle % 2 == 0:
            assert f.status == "ok" and f.new == (5 if cycle == 0 else 0)
            assert (health.error_count, health.last_error) == (0, None)
        else:
            assert f.status == "error" and f.error == "http: HTTP 500 Internal Server Error"
            assert health.error_count == 1 and health.last_error == f.error
        assert count_articles(store) == 7 and duplicates_in(store) == 0
        clock.advance(hours=1)
