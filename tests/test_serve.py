"""`monitor serve` end to end: a real server process on 127.0.0.1, a real store (SQLite
and PostgreSQL), real HTTP requests. The browser test is tests/test_browser.py."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest

from monitor.storage import open_store
from monitor.tokens import review_token
from servehelp import KEY, NOW, Served, fill, write_config

@pytest.fixture
def served(tmp_path, store_url):
    ids = fill(store_url)
    config = write_config(tmp_path / "monitor.toml", store_url, tmp_path / "outbox")
    with Served(config) as server:
        server.ids, server.store_url = ids, store_url
        yield server


def reviews(store_url: str) -> list:
    store = open_store(store_url)
    try:
        return [v for v in store.review_list(include_unflagged=True, limit=None) if v.review]
    finally:
        store.close()


def titles(html: str) -> list[str]:
    return re.findall(r'class="title"[^>]* href="/items/\d+"[^>]*>([^<]*)<', html)


def csrf_of(client: httpx.Client, url: str) -> str:
    page = client.get(url)
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_the_flagged_list_filters_pages_and_escapes(served):
    with httpx.Client(base_url=served.url) as client:
        first = client.get("/")
        assert first.status_code == 200
        assert "default-src 'none'" in first.headers["content-security-policy"]
        assert "<script>alert" not in first.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in first.text
        assert len(titles(first.text)) == 5 and 'rel="next"' in first.text      # page_size 5 of 7 flagged
        assert "Codelco quarterly results" not in first.text                      # not flagged
        older = re.search(r'rel="next" href="/\?([^"]+)"', first.text).group(1)
        second = client.get("/?" + older.replace("&amp;", "&"))
        assert len(titles(second.text)) == 2 and "Graphite anode plant" in second.text
        assert set(titles(first.text)).isdisjoint(titles(second.text))
        assert "Items 6–7" in second.text and 'rel="next"' not in second.text
        newer = re.search(r'rel="prev" href="/\?([^"]+)"', second.text).group(1)
        assert titles(client.get("/?" + newer.replace("&amp;", "&")).text) == titles(first.text)

        def only(**query) -> list[str]:
            return titles(client.get("/", params=query).text)

        assert only(country="cd") == ["Cobalt price slides as Congo output grows"]
        assert only(lang="zh") == ["稀土出口管制：商务部发布新规"]
        assert only(mineral="lithium") == ["Codelco unterzeichnet Lithium-Abnahmevertrag mit koreanischem Hersteller"]
        assert set(only(topic="export-controls")) == {
            "China tightens export licensing for gallium and germanium", "稀土出口管制：商务部发布新规",
            "US adds chip firms to the Entity List"}
        assert only(q="KATOWICE") == ["Graphite anode plant opens in Poland"]
        assert only(q="100%") == []                                                # literal, not a wildcard
        # a day in the digest's zone (Europe/Berlin by default), as the filter reads it: the
        # UTC date was the day before from 23:00 UTC on (22:00 in summer)
        from zoneinfo import ZoneInfo

        day = (NOW - timedelta(days=40)).astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
        assert only(**{"from": day, "to": day}) == ["Graphite anode plant opens in Poland"]
        assert only(status="relevant") == []
        bad = client.get("/", params={"country": "China", "from": "yesterday"})
        assert bad.status_code == 200 and "country: expected an ISO code" in bad.text
        assert "from: expected a date" in bad.text and len(titles(bad.text)) == 5
        assert "country: expected an ISO code" in client.get("/", params={"country": "ß"}).text
        typo = client.get("/", params={"mineral": "nickle"}).text
        assert "mineral: no mineral &#39;nickle&#39;: did you mean" in typo
        assert only(mineral="Nickel") == only(mineral="nickel") != []


def test_export_follows_the_filter(served):
    with httpx.Client(base_url=served.url) as client:
        rows = client.get("/export.json", params={"topic": "export-controls"}).json()
        assert {r["title"] for r in rows} == {"China tightens export licensing for gallium and germanium",
                                              "稀土出口管制：商务部发布新规", "US adds chip firms to the Entity List"}
        text = client.get("/export.csv", params={"mineral": "nickel"})
        assert text.headers["content-type"].startswith("text/csv")
        lines = text.text.splitlines()
        assert lines[0].startswith('"id","published","source","publisher","title"') and len(lines) == 2
        assert ",\"'<script>" not in lines[1] and "<script>alert('x')</script> Nickel ore" in lines[1]
        assert lines[1].startswith('"') and lines[1].endswith('"')     # every field quoted
        assert client.get("/export.xml").status_code == 404
        # a filter the list page would report and leave out: a download cannot report it, so
        # it is refused rather than export every item as if filtered
        for odd in ({"country": "China"}, {"from": "garbage"}, {"mineral": "foo"},
                    {"topic": "gold"}, {"from": "2026-12-05", "to": "2026-12-01"}):
            refused = client.get("/export.csv", params=odd)
            assert refused.status_code == 400 and refused.text.startswith("Not exported: "), odd
        assert "country: expected an ISO code" in client.get("/export.json", params={"country": "China"}).text


def test_a_form_made_stale_by_another_tab_keeps_what_was_typed_and_saves_on_the_next_click(served):
    """Items opened from web mail, one tab each: the CSRF cookie was SameSite=Strict, so a
    click from another site carried none, every tab set a new one and only the last tab
    could save; the others said "reload and try again" and dropped the typed note."""
    item = served.ids["ga"]
    with httpx.Client(base_url=served.url) as client:
        first = client.get(f"/items/{item}")
        assert "samesite=lax" in first.headers["set-cookie"].lower()
        stale = re.search(r'name="csrf" value="([^"]+)"', first.text).group(1)
        client.cookies.clear()                  # a tab opened meanwhile without the cookie
        client.get(f"/items/{served.ids['plain']}")
        refused = client.post(f"/items/{item}/review", data={
            "verdict": "relevant", "csrf": stale, "topics": ["export-controls"], "note": "licence regime"})
        assert refused.status_code == 403 and "Not saved yet" in refused.text
        assert "licence regime</textarea>" in refused.text
        assert 'value="export-controls" checked' in refused.text
        assert 'value="critical-minerals" checked' not in refused.text      # as they were ticked
        assert reviews(served.store_url) == []
        fresh = re.search(r'name="csrf" value="([^"]+)"', refused.text).group(1)
        saved = client.post(f"/items/{item}/review", data={
            "verdict": "relevant", "csrf": fresh, "topics": ["export-controls"], "note": "licence regime"})
        assert saved.status_code == 303
        unticked = client.post(f"/items/{item}/review", data={"verdict": "relevant", "csrf": fresh})
        assert unticked.status_code == 400 and "tick the topics it is relevant to" in unticked.text
    [view] = reviews(served.store_url)
    assert (view.review.topics, view.review.note) == (("export-controls",), "licence regime")


def test_reviewing_a_page_of_unreviewed_items_and_going_on_skips_none(served):
    """Pages were offsets: an analyst who marked the five items of "unreviewed" page 1 and
    clicked "older →" got the items from the eleventh on; the sixth and seventh were never
    shown. A page now starts after the last item seen."""
    with httpx.Client(base_url=served.url) as client:
        first = client.get("/", params={"status": "unreviewed"}).text
        ids = re.findall(r'class="num">(\d+)<', first)
        assert len(ids) == 5
        older = re.search(r'rel="next" href="/\?([^"]+)"', first).group(1).replace("&amp;", "&")
        for item in ids:
            token = csrf_of(client, f"/items/{item}")
            assert client.post(f"/items/{item}/review", data={"verdict": "irrelevant",
                                                               "csrf": token}).status_code == 303
        rest = client.get("/?" + older).text
    assert "Graphite anode plant" in rest and len(titles(rest)) == 2 and "Items 1–2" in rest
    assert 'rel="prev"' not in rest              # nothing unreviewed is newer any more


def _add_flagged(store_url: str, key: str, title: str, lang: str, published) -> int:
    """One more export-controls article in the first feed of a filled store; its id."""
    from monitor.feedstate import feed_outcome
    from monitor.types import ArticleWrite, FeedOutcome, ParsedArticle, Verdict
    from storeview import due_feeds

    store = open_store(store_url)
    try:
        state = due_feeds(store, NOW + timedelta(days=1))[0]
        parsed = ParsedArticle(key=key, guid=key, url=f"https://{key}.example/a", published=published,
                               title=title, text="x", language=lang, content_hash=key)
        verdict = Verdict(flagged=True, topics=("export-controls",), score=0.9,
                          reasons=("classifier export-controls 0.90",), model_version="test")
        outcome = FeedOutcome(polled_at=NOW, next_check_at=NOW + timedelta(hours=1), status=200)
        store.save_poll(state.id, [ArticleWrite(parsed, lang, verdict)],
                        feed_outcome(state, outcome, new=True))
        return next(v.id for v in store.review_list(limit=None) if v.title == title)
    finally:
        store.close()


def test_the_list_dates_and_date_filter_are_days_in_the_digest_time_zone(tmp_path, store_url):
    """An item published at 23:30 UTC is the next day's in Berlin, as the digest shows it:
    the list showed the UTC day, unlabelled, and a filter on the digest's day left it out."""
    from datetime import datetime, timezone

    fill(store_url)
    late = datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc)        # 00:30 on the 29th in Berlin
    _add_flagged(store_url, "late", "Late-evening gallium licence news", "en", late)
    config = write_config(tmp_path / "monitor.toml", store_url, tmp_path / "outbox")
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[digest]\n", '[digest]\ntimezone = "Europe/Berlin"\n'), encoding="utf-8")
    with Served(config) as server, httpx.Client(base_url=server.url) as client:
        on_29 = client.get("/", params={"from": "2026-03-29", "to": "2026-03-29"}).text
        on_28 = client.get("/", params={"from": "2026-03-28", "to": "2026-03-28"}).text
        export = client.get("/export.json", params={"from": "2026-03-29", "to": "2026-03-29"}).json()
    assert titles(on_29) == ["Late-evening gallium licence news"] and titles(on_28) == []
    assert 'class="date">2026-03-29<' in on_29 and "(Europe/Berlin)" in on_29
    assert [a["title"] for a in export] == ["Late-evening gallium licence news"]


def test_an_undated_right_to_left_item_says_so_in_the_list_and_on_its_page(served):
    """An entry without a date was shown with its first-seen time as if published (the
    digest and `review show` say undated); Arabic titles were laid out left to right."""
    item = _add_flagged(served.store_url, "ar", "الصين تقيد صادرات الغاليوم", "ar", None)
    with httpx.Client(base_url=served.url) as client:
        page = client.get(f"/items/{item}").text
        listed = client.get("/", params={"lang": "ar"}).text
    assert f"#{item} · " in page and "undated, first seen " in page
    assert '<h1 dir="auto">' in page and 'dir="auto"' in listed
    assert 'class="date">undated' in listed


def test_a_store_that_went_away_gives_503_pages_a_failing_healthz_and_keeps_the_note(served):
    """The database dropped under a running server: every page had been a bare 500 with a
    traceback, the verdict's "not saved" branch failed again re-reading the item and lost
    the note, and /healthz still said "ok"."""
    if not served.store_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL database dropped under the server (an SQLite file deleted "
                    "under it: test_a_store_file_deleted_or_replaced_under_the_server_…)")
    from sqlalchemy import create_engine, make_url, text

    item = served.ids["ga"]
    with httpx.Client(base_url=served.url) as client:
        token = csrf_of(client, f"/items/{item}")
        assert client.get("/healthz").text == "ok"
        name = make_url(served.store_url).database
        admin = create_engine(served.store_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()
        for path in ("/", f"/items/{item}", "/feeds", "/export.csv"):
            page = client.get(path)
            assert page.status_code == 503 and "the store cannot be read right now" in page.text, path
        health = client.get("/healthz")
        assert health.status_code == 503 and health.text.startswith("store unavailable: ")
        posted = client.post(f"/items/{item}/review", data={
            "verdict": "irrelevant", "csrf": token, "note": "price noise only"})
        assert posted.status_code == 503 and "was not saved" in posted.text
        assert "price noise only" in posted.text


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_store_file_deleted_or_replaced_under_the_server_takes_no_verdict(tmp_path, how):
    """The SQLite file deleted (or a copy moved into its place) while `monitor serve` ran:
    its open connections went on reading the old file, a verdict was answered "saved" and
    written into the deleted file, lost, and /healthz said "ok"."""
    import shutil

    store_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    ids = fill(store_url)
    config = write_config(tmp_path / "monitor.toml", store_url, tmp_path / "outbox")
    item = ids["ga"]
    with Served(config) as server, httpx.Client(base_url=server.url) as client:
        token = csrf_of(client, f"/items/{item}")
        assert client.get("/healthz").text == "ok"
        if how == "deleted":
            for suffix in ("", "-wal", "-shm"):
                (tmp_path / f"monitor.db{suffix}").unlink(missing_ok=True)
        else:
            shutil.copy(tmp_path / "monitor.db", tmp_path / "restored.db")
            (tmp_path / "restored.db").replace(tmp_path / "monitor.db")
        posted = client.post(f"/items/{item}/review", data={
            "verdict": "irrelevant", "csrf": token, "note": "price noise only"})
        assert posted.status_code == 503, posted.text
        assert "deleted or replaced" in posted.text and "price noise only" in posted.text
        assert client.get("/healthz").status_code == 503
        page = client.get("/")
        assert page.status_code == 503 and "monitor.db" in page.text
    if how == "replaced":
        assert reviews(store_url) == []


def test_an_item_page_and_a_verdict_by_post_only(served):
    item = served.ids["ga"]
    with httpx.Client(base_url=served.url) as client:
        page = client.get(f"/items/{item}", params={"v": "irrelevant"})
        assert page.status_code == 200 and "You chose <b>not relevant</b>" in page.text
        assert "Exporters of gallium and germanium products" in page.text and "China (CN)" in page.text
        assert client.get(f"/items/{item}/review", params={"verdict": "irrelevant"}).status_code == 405
        assert reviews(served.store_url) == []                       # GETs changed nothing
        assert client.get("/items/999999").status_code == 404

        no_token = client.post(f"/items/{item}/review", data={"verdict": "irrelevant"})
        assert no_token.status_code == 403 and "could not be checked" in no_token.text
        token = csrf_of(client, f"/items/{item}")
        forged = client.post(f"/items/{item}/review", data={"verdict": "irrelevant", "csrf": token + "x"})
        assert forged.status_code == 403
        elsewhere = client.post(f"/items/{item}/review", data={"verdict": "irrelevant", "csrf": token},
                                headers={"Origin": "https://evil.example"})
        assert elsewhere.status_code == 403
        assert reviews(served.store_url) == []

        no_topics = client.post(f"/items/{item}/review", data={"verdict": "relevant", "csrf": token,
                                                               "topics": "nonsense"})
        assert no_topics.status_code == 400 and "unknown topic" in no_topics.text
        bare = client.post(f"/items/{served.ids['plain']}/review",            # not flagged:
                           data={"verdict": "relevant", "csrf": token})           # no topics
        assert bare.status_code == 400 and "tick the topics it is relevant to" in bare.text
        saved = client.post(f"/items/{item}/review", data={"verdict": "irrelevant", "csrf": token,
                                                           "note": "  price noise \n"})
        assert saved.status_code == 303 and saved.headers["location"] == f"/items/{item}?saved=irrelevant"
        assert "Saved: not relevant" in client.get(saved.headers["location"]).text
        again = client.post(f"/items/{item}/review", data={"verdict": "relevant", "csrf": token,
                                                           "topics": ["export-controls"]})
        assert again.status_code == 303
    [view] = reviews(served.store_url)
    assert (view.review.verdict, view.review.topics, view.review.reviewer) == (
        "relevant", ("export-controls",), "tester")
    listed = subprocess.run([sys.executable, "-m", "monitor", "--config", str(served.config), "review", "show",
                             str(item), "--json"], capture_output=True, text=True, check=True)
    history = json.loads(listed.stdout)["history"]
    assert [(h["verdict"], h["note"], h["current"]) for h in history] == [
        ("relevant", None, True), ("irrelevant", "price noise", False)]


def test_review_links_open_a_session_and_nothing_else(served):
    item = served.ids["cjk"]
    good = review_token(KEY.encode(), "ana@example.org", item, NOW + timedelta(days=1))
    with httpx.Client(base_url=served.url) as client:
        opened = client.get(f"/items/{item}", params={"t": good, "v": "relevant"})
        assert opened.status_code == 303 and opened.headers["location"] == f"/items/{item}?v=relevant"
        assert "monitor_session" in opened.headers["set-cookie"] and "HttpOnly" in opened.headers["set-cookie"]
        page = client.get(opened.headers["location"])
        assert "reviewing as <b>ana@example.org</b>" in page.text
        assert reviews(served.store_url) == []                      # opening a link casts no verdict
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        client.post(f"/items/{item}/review", data={"verdict": "relevant", "csrf": token,
                                                   "topics": ["critical-minerals", "export-controls"]})
    assert reviews(served.store_url)[0].review.reviewer == "ana@example.org"

    with httpx.Client(base_url=served.url) as client:
        parts = good.split(".")
        parts[1] = base64.urlsafe_b64encode(b"eve@example.org").decode().rstrip("=")   # another recipient
        forged = client.get(f"/items/{item}", params={"t": ".".join(parts)})
        assert forged.status_code == 403 and "not valid" in forged.text
        assert "monitor_session" not in forged.headers.get("set-cookie", "")
        other_key = review_token(b"another-key-0123456789", "ana@example.org", item, NOW + timedelta(days=1))
        assert client.get(f"/items/{item}", params={"t": other_key}).status_code == 403
        expired = review_token(KEY.encode(), "ana@example.org", item, NOW - timedelta(minutes=1))
        late = client.get(f"/items/{item}", params={"t": expired})   # on this machine: the item anyway
        assert late.status_code == 303 and late.headers["location"] == f"/items/{item}?expired=1"
        assert "monitor_session" not in late.headers.get("set-cookie", "")
        assert "has expired; you are reviewing as tester" in client.get(late.headers["location"]).text
        elsewhere = client.get(f"/items/{served.ids['ga']}", params={"t": good})
        assert elsewhere.status_code == 403 and "another item" in elsewhere.text
        assert "monitor_session" not in client.cookies


def test_feeds_page_and_keywords_dry_run_write_nothing(served):
    with httpx.Client(base_url=served.url, timeout=60) as client:
        feeds = client.get("/feeds")
        assert feeds.status_code == 200 and "Rohstoff-Ticker" in feeds.text and "Asia Wire" in feeds.text
        form = client.get("/keywords")
        assert form.status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        before = [(v.id, v.flagged, v.topics) for v in _all(served.store_url)]
        run = client.post("/keywords", data={"csrf": token, "days": "3", "critical-minerals": "",
                                             "export-controls": "Codelco\n# a comment", "mute": ""})
        assert run.status_code == 200, run.text
        newly = re.search(r"would newly flag</th><td class=\"num\">(\d+)", run.text)
        assert newly and int(newly.group(1)) >= 1 and "Codelco quarterly results" in run.text
        assert 'export-controls = [\n  &#34;Codelco&#34;,\n]' in run.text            # the block for the config
        broken = client.post("/keywords", data={"csrf": token, "days": "3", "export-controls": "re:(",
                                                "critical-minerals": "", "mute": ""})
        assert broken.status_code == 400 and "keywords.export-controls[0]" in broken.text
        assert client.post("/keywords", data={"days": "3"}).status_code == 403
    assert [(v.id, v.flagged, v.topics) for v in _all(served.store_url)] == before


def test_the_keywords_dry_run_names_newly_flagged_items_no_digest_would_mail(served):
    """Each period is mailed once: `monitor reclassify` says how many newly flagged articles
    fall before the end of the last digest already made; the page's dry run did not."""
    from monitor.storage import ledger

    def dry_run(client):
        token = csrf_of(client, "/keywords")
        run = client.post("/keywords", data={"csrf": token, "days": "3", "critical-minerals": "",
                                             "export-controls": "Codelco", "mute": ""})
        assert run.status_code == 200, run.text
        return run.text

    with httpx.Client(base_url=served.url, timeout=60) as client:
        assert "no digest would mail them" not in dry_run(client)      # no digest made yet
        store = open_store(served.store_url)
        try:
            with store._begin() as conn:
                ledger.insert_digest(conn, "2031-01-02", NOW - timedelta(days=1),
                                     NOW + timedelta(hours=2), NOW)
        finally:
            store.close()
        page = dry_run(client)
    said = re.search(r"(\d+) of the (\d+) newly flagged article\(s\) fall before the end of the last "
                     r"digest already made \(2031-01-02, its period ended [0-9-]+ [0-9:]+ UTC\): "
                     r"reclassifying would flag them, no digest would mail them", page)
    assert said and said.group(1) == said.group(2) != "0", page


def test_the_keywords_dry_run_says_when_the_model_is_unavailable(tmp_path, store_url):
    """Without its model the dry run sets keyword-only verdicts against the stored ones: the
    config's own rules, unchanged, "would drop" items. `monitor keywords test` says the
    model is unavailable; the page had not, so the model's absence read as the edit's effect."""
    fill(store_url)
    config = write_config(tmp_path / "monitor.toml", store_url, tmp_path / "outbox",
                          extra=f'[classifier]\nmodel = "{tmp_path / "gone.skops"}"\n')
    with Served(config) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        token = csrf_of(client, "/keywords")
        run = client.post("/keywords", data={"csrf": token, "days": "3", "critical-minerals": "",
                                             "export-controls": "Codelco", "mute": ""})
    assert run.status_code == 200 and "The model is unavailable (" in run.text
    assert "gone.skops" in run.text


def test_the_keywords_page_starts_from_the_config_as_it_is_now(served):
    """`monitor serve` runs for days beside config edits: the keywords page showed the rules
    the server had read at its start, and pasting its block back undid the edit."""
    with httpx.Client(base_url=served.url, timeout=60) as client:
        assert "Codelco" not in client.get("/keywords").text
        with served.config.open("a", encoding="utf-8") as config:
            config.write('[keywords]\nexport-controls = ["Codelco"]\n')
        page = client.get("/keywords")
        assert re.search(r'<textarea name="export-controls"[^>]*>Codelco</textarea>', page.text), page.text
        served.config.write_text(served.config.read_text(encoding="utf-8") + "[poll]\nbogus = 1\n",
                                 encoding="utf-8")
        kept = client.get("/keywords")                  # an invalid edit: the previous config stays
        assert kept.status_code == 200 and ">Codelco</textarea>" in kept.text


def _all(store_url):
    store = open_store(store_url)
    try:
        return store.review_list(include_unflagged=True, limit=None)
    finally:
        store.close()


def test_a_page_from_another_host_name_is_refused(served):
    """Bound to loopback, only this machine's names are served (no DNS rebinding)."""
    assert httpx.get(served.url + "/", headers={"Host": "evil.example"}).status_code == 400


def test_on_loopback_a_request_passed_on_by_a_proxy_is_refused(served):
    """No password is asked for on loopback: a proxy in front would open the pages to
    whoever reaches the proxy, so what it passes on is refused with what to do instead."""
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host", "Via",
                   "X-Forwarded-Proto"):
        refused = httpx.get(served.url + "/", headers={header: "203.0.113.9"})
        assert refused.status_code == 403 and "serve.behind_proxy" in refused.text, header
    post = httpx.post(f"{served.url}/items/{served.ids['co']}/review", data={"verdict": "relevant"},
                      headers={"X-Forwarded-For": "203.0.113.9"})
    assert post.status_code == 403 and reviews(served.store_url) == []
    assert httpx.get(served.url + "/").status_code == 200


def test_behind_a_proxy_sign_in_is_needed_and_each_forwarded_address_counts(tmp_path, store_url):
    from monitor.web.access import FAILED_SIGN_INS

    ids = fill(store_url)
    config = write_config(tmp_path / "monitor.toml", store_url, tmp_path / "outbox",
                          extra='username = "desk"\npassword_env = "DESK_PASSWORD"\n')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    plain = write_config(tmp_path / "plain.toml", store_url, tmp_path / "outbox",
                         extra="behind_proxy = true\n")
    refused = subprocess.run([sys.executable, "-m", "monitor", "--config", str(plain), "serve",
                              "--port", "0"], capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "behind a proxy" in refused.stderr     # no sign-in set
    with Served(config, "--behind-proxy", env={"DESK_PASSWORD": "s3cret-pass"}) as server:
        proxy = {"Host": "monitor.example.org", "X-Forwarded-Proto": "https"}
        assert httpx.get(server.url + "/", headers=proxy).status_code == 401
        ok = httpx.get(server.url + "/", headers={**proxy, "X-Forwarded-For": "198.51.100.7"},
                       auth=("desk", "s3cret-pass"))
        assert ok.status_code == 200 and "reviewing as <b>desk</b>" in ok.text
        guesses = [httpx.get(server.url + "/", auth=("desk", f"guess{i}"),
                             headers={**proxy, "X-Forwarded-For": "203.0.113.9"}).status_code
                   for i in range(FAILED_SIGN_INS + 1)]
        assert guesses == [401] * FAILED_SIGN_INS + [429]
        other = httpx.get(server.url + "/", headers={**proxy, "X-Forwarded-For": "198.51.100.7"},
                          auth=("desk", "s3cret-pass"))
        assert other.status_code == 200          # another address behind the same proxy
        link = review_token(KEY.encode(), "ben@example.org", ids["co"], NOW + timedelta(days=1))
        opened = httpx.get(f"{server.url}/items/{ids['co']}", params={"t": link},
                           headers={**proxy, "X-Forwarded-For": "198.51.100.8"})
        assert opened.status_code == 303 and "secure" in opened.headers["set-cookie"].lower()
        with httpx.Client(base_url=server.url) as client:   # nginx's default Host, the name aside
            passed = {"X-Forwarded-Host": "monitor.example.org", "X-Forwarded-Proto": "https",
                      "X-Forwarded-For": "198.51.100.7"}
            page = client.get(f"/items/{ids['co']}", headers=passed, auth=("desk", "s3cret-pass"))
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            client.cookies.set("monitor_csrf", page.cookies["monitor_csrf"])
            form = {"verdict": "irrelevant", "csrf": token}
            foreign = client.post(f"/items/{ids['co']}/review", data=form, auth=("desk", "s3cret-pass"),
                                  headers={**passed, "Origin": "https://evil.example"})
            assert foreign.status_code == 403
            saved = client.post(f"/items/{ids['co']}/review", data=form, auth=("desk", "s3cret-pass"),
                                headers={**passed, "Origin": "https://monitor.example.org"})
            assert saved.status_code == 303, saved.text
            for name, port, origin in (("Monitor.Example.org:443", "", "https://monitor.example.org"),
                                       ("monitor.example.org", "8443", "https://monitor.example.org:8443")):
                again = client.post(f"/items/{ids['co']}/review", data=form, auth=("desk", "s3cret-pass"),
                                    headers={**passed, "X-Forwarded-Host": name, "X-Forwarded-Port": port,
                                             "Origin": origin})
                assert again.status_code == 303, (name, again.text)
    assert "from 203.0.113.9" in server.stderr and "s3cret" not in server.stderr


def test_another_loopback_address_serves_the_url_it_prints(tmp_path, store_url):
    fill(store_url)
    config = write_config(tmp_path / "monitor.toml", store_url, tmp_path / "outbox")
    with Served(config, "--host", "127.0.0.2") as server:
        assert server.url.startswith("http://127.0.0.2:")
        assert httpx.get(server.url + "/").status_code == 200
        assert httpx.get(server.url + "/", headers={"Host": "evil.example"}).status_code == 400


def test_serve_refuses_to_start_open_to_the_network(tmp_path):
    config = write_config(tmp_path / "monitor.toml", f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "out")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "serve",
                             "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "needs access control" in result.stderr
    assert "monitor serve --host 0.0.0.0:" in result.stderr
    # the host from the config: the message names its key and file, not a --host never given
    opened = write_config(tmp_path / "open.toml", f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "out",
                          extra='host = "0.0.0.0"\n')
    from_config = subprocess.run([sys.executable, "-m", "monitor", "--config", str(opened), "serve",
                                  "--port", "0"], capture_output=True, text=True, env=env)
    assert from_config.returncode == 2 and "needs access control" in from_config.stderr
    assert f"monitor serve (serve.host = '0.0.0.0' in {opened}):" in from_config.stderr
    # behind a proxy on loopback: the message names the flag (it had blamed serve.host)
    proxied = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "serve", "--port", "0",
                              "--behind-proxy"], capture_output=True, text=True, env=env)
    assert proxied.returncode == 2 and "monitor serve --behind-proxy: bound beyond" in proxied.stderr
    missing = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "serve", "--port", "0"],
                             capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "no store at" in missing.stderr


@contextmanager
def _app_server(store_url: str, access):
    """The app with the given access rules (those of a server bound beyond this machine,
    say), listening on 127.0.0.1: its URL; stopped and its store closed on leaving."""
    import socket

    import uvicorn

    from monitor.config import parse_config
    from monitor.web.app import create_app

    config = parse_config({"store": {"url": store_url}}, "test.toml")
    store = open_store(store_url)
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(config, store, access), log_config=None,
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


def test_off_loopback_needs_a_link_or_basic_credentials(tmp_path, store_url):
    from monitor.web.access import Access

    ids = fill(store_url)
    access = Access(loopback=False, link_key=KEY.encode(), username="desk", password="s3cret-pass")
    with _app_server(store_url, access) as url:
        anonymous = httpx.get(url + "/")
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(url + "/", auth=("desk", "wrong")).status_code == 401
        assert httpx.get(url + "/export.json", auth=("eve", "s3cret-pass")).status_code == 401
        signed_in = httpx.get(url + "/", auth=("desk", "s3cret-pass"))
        assert signed_in.status_code == 200 and "reviewing as <b>desk</b>" in signed_in.text
        with httpx.Client(base_url=url) as client:
            link = review_token(KEY.encode(), "ben@example.org", ids["co"], NOW + timedelta(days=1))
            assert client.get(f"/items/{ids['co']}", params={"t": link}).status_code == 303
            assert "reviewing as <b>ben@example.org</b>" in client.get("/feeds").text
        assert httpx.get(url + "/", cookies={"monitor_session": "e30.forged"}).status_code == 401
        old = review_token(KEY.encode(), "ben@example.org", ids["co"], NOW - timedelta(days=1))
        late = httpx.get(f"{url}/items/{ids['co']}", params={"t": old})
        assert late.status_code == 403 and "expired on" in late.text            # nobody signed in


def test_off_loopback_healthz_tells_only_those_let_in_why_the_store_failed(tmp_path, store_url, caplog):
    """/healthz answers without sign-in (a probe has no link): it told anyone who asked the
    store's URL, host, user and database with the driver's error (a password given in the
    URL's query string too)."""
    if not store_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL database dropped under the server (an SQLite file deleted "
                    "under it: test_a_store_file_deleted_or_replaced_under_the_server_…)")
    from sqlalchemy import create_engine, make_url, text

    from monitor.web.access import Access

    fill(store_url)
    access = Access(loopback=False, link_key=KEY.encode(), username="desk", password="s3cret-pass")
    name = make_url(store_url).database
    with _app_server(store_url, access) as url:
        assert httpx.get(url + "/healthz").text == "ok"
        admin = create_engine(store_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()
        with caplog.at_level("ERROR", logger="monitor.serve"):
            stranger = httpx.get(url + "/healthz")
        assert stranger.status_code == 503 and stranger.text == "store unavailable"
        assert name in caplog.text                                   # the reason is logged
        signed_in = httpx.get(url + "/healthz", auth=("desk", "s3cret-pass"))
        assert signed_in.status_code == 503 and name in signed_in.text


def test_wrong_basic_passwords_are_logged_and_then_refused_for_a_while(tmp_path, store_url, caplog):
    from monitor.web.access import FAILED_SIGN_INS, Access

    ids = fill(store_url)
    access = Access(loopback=False, link_key=KEY.encode(), username="desk", password="s3cret-pass")
    with _app_server(store_url, access) as url:
        with httpx.Client(base_url=url) as reviewer:        # a colleague behind the same address
            link = review_token(KEY.encode(), "ben@example.org", ids["co"], NOW + timedelta(days=1))
            assert reviewer.get(f"/items/{ids['co']}", params={"t": link}).status_code == 303
            with caplog.at_level("WARNING", logger="monitor.serve"):
                codes = [httpx.get(url + "/", auth=("desk", f"guess{i}")).status_code
                         for i in range(FAILED_SIGN_INS + 2)]
            assert codes == [401] * FAILED_SIGN_INS + [429, 429]
            right = httpx.get(url + "/", auth=("desk", "s3cret-pass"))    # not even checked now
            assert right.status_code == 429 and int(right.headers["retry-after"]) > 0
            assert reviewer.get("/feeds").status_code == 200             # a session goes on
        assert caplog.text.count("Basic sign-in refused for user 'desk' from 127.0.0.1") == FAILED_SIGN_INS
        assert "its Basic sign-ins are refused (429)" in caplog.text
        assert "guess" not in caplog.text and "s3cret" not in caplog.text


def test_on_loopback_no_wrong_password_counts(tmp_path, store_url):
    """On this machine no password is asked for, so none is counted against it."""
    from monitor.web.access import FAILED_SIGN_INS, Access

    fill(store_url)
    access = Access(loopback=True, link_key=None, username="desk", password="s3cret-pass")
    with _app_server(store_url, access) as url:
        for _ in range(FAILED_SIGN_INS + 2):
            assert httpx.get(url + "/", auth=("desk", "wrong")).status_code == 200
        assert httpx.get(url + "/").status_code == 200


def test_odd_ids_dates_and_notes_get_answers_not_errors(served):
    item = served.ids["ga"]
    with httpx.Client(base_url=served.url) as client:
        assert client.get("/", params={"to": "9999-12-31"}).status_code == 200
        assert client.get("/export.json", params={"to": "9999-12-31"}).status_code == 200
        for huge in ("9223372036854775808", "99999999999999999999"):
            assert client.get(f"/items/{huge}").status_code == 404
        token = csrf_of(client, f"/items/{item}")
        huge = client.post("/items/99999999999999999999/review",
                           data={"verdict": "irrelevant", "csrf": token})
        assert huge.status_code == 404
        long = client.post(f"/items/{item}/review",
                           data={"verdict": "irrelevant", "csrf": token, "note": "x" * 2001})
        assert long.status_code == 400 and "at most 2,000" in long.text
        assert reviews(served.store_url) == []
        escape = client.post(f"/items/{item}/review",
                             data={"verdict": "irrelevant", "csrf": token, "note": "a\x1b[31mb"})
        assert escape.status_code == 400 and "control character (U+001B)" in escape.text
        for odd in ("/?older=%C2%B2", "/export.csv?older=%C2%B2", "/?newer=-1", "/?older=99999999999999999999",
                    "/?older=12345678"):        # "²" passes str.isdigit; no such item
            assert client.get(odd).status_code == 200, odd
        assert "older: there is no item #12345678; the newest are shown" in client.get("/?older=12345678").text
        # past PostgreSQL's integer (article.id there): no such item either, not a store error
        for beyond in ("/?older=2147483648", "/?newer=2147483648", "/export.csv?older=2147483648"):
            assert client.get(beyond).status_code == 200, beyond
        assert "older: there is no item #2147483648" in client.get("/?older=2147483648").text
        days = client.post("/keywords", data={"csrf": token, "days": "²", "critical-minerals": "",
                                              "export-controls": "", "mute": ""})
        assert days.status_code == 400 and "days: expected a whole number" in days.text
        assert reviews(served.store_url) == []
        lines = client.post(f"/items/{item}/review", data={
            "verdict": "irrelevant", "csrf": token, "note": "first line\r\n  second  line "})
        assert lines.status_code == 303
    [view] = reviews(served.store_url)
    assert view.review.note == "first line\n  second  line"      # as typed, as the CLI keeps it


def test_off_this_machine_the_keywords_page_runs_no_new_regular_expression(tmp_path, store_url):
    """One backtracking regular expression holds the interpreter for minutes: whoever a
    review link lets in may try phrases and the config's own re: rules, not new ones."""
    from monitor.web.access import Access

    fill(store_url)
    access = Access(loopback=False, link_key=KEY.encode(), username="desk", password="s3cret-pass")
    with _app_server(store_url, access) as url:
        with httpx.Client(base_url=url, auth=("desk", "s3cret-pass"), timeout=60) as client:
            token = csrf_of(client, "/keywords")
            form = {"csrf": token, "days": "3", "critical-minerals": "", "mute": ""}
            new = client.post("/keywords", data={**form, "export-controls": "Codelco\nre:(\\w+\\s?)+$"})
            assert new.status_code == 400 and "a new re: rule can be tried only" in new.text
            plain = client.post("/keywords", data={**form, "export-controls": "Codelco"})
            assert plain.status_code == 200 and "Codelco quarterly results" in plain.text


def test_a_review_key_too_short_to_be_used_is_named_at_start(tmp_path, store_url):
    fill(store_url)
    config = write_config(tmp_path / "monitor.toml", store_url, tmp_path / "outbox")
    with Served(config, env={"MONITOR_REVIEW_KEY": "short"}) as server:
        assert httpx.get(server.url + "/").status_code == 200
    out = server.proc.stdout.read()
    assert "$MONITOR_REVIEW_KEY is shorter than 16 characters, so review links are off" in out


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_stopping_serve_with_ctrl_c_or_sigterm_is_a_success(tmp_path, store_url, how):
    """uvicorn raises the stop signal again after its graceful shutdown: Ctrl-C printed
    "Aborted!" and exited 1, SIGTERM ended the process with 143; `monitor run` exits 0."""
    import signal as signals

    fill(store_url)
    config = write_config(tmp_path / "monitor.toml", store_url, tmp_path / "outbox")
    server = Served(config)
    with server:
        assert httpx.get(server.url + "/healthz").text == "ok"
        server.proc.send_signal(getattr(signals, how))
        code = server.proc.wait(timeout=30)
    assert code == 0, server.stderr
    assert "Aborted" not in server.stderr


def test_a_hashtag_phrase_from_the_config_is_a_phrase_on_the_keywords_page():
    """The page fills its text areas with the config's phrases; "#rareearths" was taken for
    a comment, so the unchanged rules 'would drop' items and the block to paste lost it."""
    from monitor.web.app import _spec

    assert _spec({"critical-minerals": "#rareearths\n# a note\n#\nrare earth*\n"}) == {
        "critical-minerals": ("#rareearths", "rare earth*")}


def test_a_verdict_given_after_the_session_ended_says_it_was_not_saved_and_keeps_the_note(tmp_path, store_url):
    """An item page left open until its review link's session ended: the click on a
    verdict answered only "Open an item from a review link in the digest.", without saying
    that nothing was saved, and the note typed was gone."""
    from monitor.tokens import session_value
    from monitor.web.access import Access

    ids = fill(store_url)
    item = ids["co"]
    access = Access(loopback=False, link_key=KEY.encode())
    with _app_server(store_url, access) as url, httpx.Client(base_url=url) as client:
        client.cookies.set("monitor_session", session_value(KEY.encode(), "ana@example.org",
                                                            NOW + timedelta(days=1)))
        token = csrf_of(client, f"/items/{item}")
        client.cookies.set("monitor_session", session_value(KEY.encode(), "ana@example.org",
                                                            NOW - timedelta(minutes=1)))
        form = {"verdict": "irrelevant", "csrf": token, "note": "weekly price table, no news"}
        late = client.post(f"/items/{item}/review", data=form)
        assert late.status_code == 403 and late.headers["content-type"].startswith("text/html")
        assert f"Your verdict (not relevant) on item #{item} was not saved" in late.text
        assert "no longer signed in" in late.text and "weekly price table, no news" in late.text
        foreign = client.post(f"/items/{item}/review", data=form, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403 and "weekly price table" not in foreign.text
    assert reviews(store_url) == []


def test_error_pages_are_pages_a_phone_can_read(tmp_path):
    """A page that does not exist, a GET on the verdict's address and a store gone away
    were answered in plain text, which a phone lays out in a desktop's width (the line tiny,
    no way back to the list): they are now pages of the site, with its navigation."""
    store_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    item = fill(store_url)["ga"]
    config = write_config(tmp_path / "monitor.toml", store_url, tmp_path / "outbox")
    with Served(config) as server, httpx.Client(base_url=server.url) as client:
        answers = {404: client.get("/no-such-page"), 405: client.get(f"/items/{item}/review")}
        (tmp_path / "monitor.db").unlink()
        answers[503] = client.get("/")
        for status, page in answers.items():
            assert page.status_code == status
            assert page.headers["content-type"].startswith("text/html"), status
            assert '<html lang="en">' in page.text and 'name="viewport"' in page.text
            assert '<a href="/"' in page.text and "default-src 'none'" in page.headers["content-security-policy"]
        assert "no such page" in answers[404].text and answers[405].headers["allow"] == "POST"
        assert "the store cannot be read right now" in answers[503].text and "monitor.db" in answers[503].text
        assert answers[503].headers["retry-after"] == "30"


def test_an_item_page_leads_to_the_next_item_nobody_has_reviewed(served):
    """Going through the backlog from an item: its page links the next flagged item not yet
    reviewed, in the list's order (then from the newest again); reviewed ones are passed
    over; with none left it says so. It had meant the list again after every verdict."""
    ids = served.ids
    nxt = re.compile(r'Next to review: <a href="/items/(\d+)"')
    with httpx.Client(base_url=served.url) as client:
        def following(key: str) -> int | None:
            found = nxt.search(client.get(f"/items/{ids[key]}").text)
            return int(found.group(1)) if found else None

        assert following("ga") == ids["xss"]
        token = csrf_of(client, f"/items/{ids['xss']}")
        client.post(f"/items/{ids['xss']}/review", data={"verdict": "irrelevant", "csrf": token})
        assert following("ga") == ids["li"]                 # the reviewed one passed over
        assert following("old") == ids["ga"]                # the oldest: from the newest again
        for key in ("ga", "li", "cjk", "chips", "co"):
            client.post(f"/items/{ids[key]}/review", data={"verdict": "irrelevant", "csrf": token})
        assert following("chips") == ids["old"]
        last = client.get(f"/items/{ids['old']}").text
        assert nxt.search(last) is None and "Nothing else is waiting for review" in last
