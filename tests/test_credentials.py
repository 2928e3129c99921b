"""Credentials in a feed URL: sent as HTTP Basic auth, never printed or logged (#16)."""

import base64
import subprocess
import sys

from monitor.redact import masked_url

SECRET = "s3cr3t-pw"


def test_masked_url_hides_only_the_password():
    assert masked_url(f"https://ana:{SECRET}@feeds.example/rss") == "https://ana:***@feeds.example/rss"
    assert masked_url("https://feeds.example/rss?a=b@c") == "https://feeds.example/rss?a=b@c"
    assert masked_url("postgresql+psycopg://u:pw@db/monitor") == "postgresql+psycopg://u:***@db/monitor"


def _outputs(tmp_path, feeds: dict[str, str], *more: list[str]) -> list[str]:
    """stdout and stderr of `poll` (text and JSON logs), `config check`, `feeds` and ``more``
    commands, on a config with these feeds (name: url)."""
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        f'[poll]\ncontact_url = "http://127.0.0.1/contact"\n'
        f'[digest]\noutbox_dir = "{tmp_path / "outbox"}"\nrecipients = ["a@example.org"]\n'
        'send_when_empty = true\n'
        + "".join(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds.items()))
    outputs = []
    for args in (["poll", "--all"], ["--log-format", "json", "poll", "--all"], ["config", "check"],
                 ["feeds"], *more):
        done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode in (0, 1), done.stderr
        outputs += [done.stdout, done.stderr]
    return outputs


def test_credentials_are_sent_and_appear_in_no_output(feed_server, feed_file, tmp_path):
    good = feed_server.add("/private", feed_file("rss2.xml"))
    bad = feed_server.add("/down", b"down", status=503, content_type="text/plain")

    def with_auth(url):
        return url.replace("http://", f"http://ana:{SECRET}@")

    outputs = _outputs(tmp_path, {"private": with_auth(good), "down": with_auth(bad)},
                       ["digest", "--preview", str(tmp_path / "preview.html")])
    outputs.append((tmp_path / "preview.html").read_text())
    expected = "Basic " + base64.b64encode(f"ana:{SECRET}".encode()).decode()
    sent = [headers.get("Authorization") for path, headers in feed_server.requests]
    assert sent and all(value == expected for value in sent)          # both feeds, every poll
    assert all(SECRET not in text for text in outputs)
    assert any("ana:***@" in text for text in outputs)                # shown, masked
    assert any("503" in text for text in outputs)                     # the failure was reported


def test_masked_url_hides_query_string_keys():
    assert masked_url("https://feeds.example/rss?token=abc123&lang=de") == \
        "https://feeds.example/rss?token=***&lang=de"
    assert masked_url("https://h/f?API-Key=k1;page=2#top") == "https://h/f?API-Key=***;page=2#top"
    assert masked_url("https://h/f?X-Amz-Signature=s1&X-Amz-Credential=c1&author=me") == \
        "https://h/f?X-Amz-Signature=***&X-Amz-Credential=***&author=me"
    assert masked_url("https://h/f?q=token&key=") == "https://h/f?q=token&key="   # nothing secret
    assert masked_url("redirected 6 times; last to http://h/x?access_token=t9") == \
        "redirected 6 times; last to http://h/x?access_token=***"


def test_query_string_keys_appear_in_no_output(feed_server, tmp_path):
    """A feed keyed by ?token=, one whose redirect leads to a signed URL, one that fails:
    neither key reaches the log, `poll`, `feeds`, `config check` or the stored error."""
    loop = "/signed?X-Amz-Signature=sig-SECRET-2"
    feed_server.add(loop, b"", status=302, headers={"Location": loop})
    keyed = feed_server.add("/keyed?token=tok-SECRET-1", b"", status=302, headers={"Location": loop})
    down = feed_server.add("/down?api_key=key-SECRET-3", b"down", status=503,
                           content_type="text/plain")
    outputs = _outputs(tmp_path, {"keyed": keyed, "down": down})
    assert feed_server.hits["/keyed?token=tok-SECRET-1"] >= 1       # the key was sent
    assert feed_server.hits["/down?api_key=key-SECRET-3"] >= 1
    text = "\n".join(outputs)
    assert "SECRET" not in text
    assert "token=***" in text and "api_key=***" in text and "X-Amz-Signature=***" in text
    assert "redirect" in text and "503" in text


def test_masked_url_hides_the_keys_a_review_found_shown():
    for url, shown in [
            ("https://h/f?subscription-key=S1&lang=de", "https://h/f?subscription-key=***&lang=de"),
            ("https://h/f?auth_key=S2&user_key=S2b", "https://h/f?auth_key=***&user_key=***"),
            ("https://h/f?api%5Fkey=S3", "https://h/f?api%5Fkey=***"),
            ("https://S4@h/f", "https://***@h/f"),                     # a token as user name
            ("https://h/f?jwt=S6&credentials=S7", "https://h/f?jwt=***&credentials=***")]:
        assert masked_url(url) == shown
    inside = masked_url("last to https://h/login?next=https%3A%2F%2Fh%2Ff%3Ftoken%3DS5")
    assert "S5" not in inside and "login?next=" in inside
    # not secrets: a keyword, a monkey, a database user name
    assert masked_url("https://h/f?keyword=x&monkey=1") == "https://h/f?keyword=x&monkey=1"
    assert masked_url("postgresql+psycopg://monitor@db/m") == "postgresql+psycopg://monitor@db/m"


def test_an_error_stored_unmasked_by_an_older_version_is_shown_masked(tmp_path):
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from sqlalchemy import text

    from monitor.storage import open_store

    now = datetime.now(timezone.utc)
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.sync_feeds([SimpleNamespace(name="old", url="https://o.example/rss", lang=None,
                                          interval_minutes=None, silent_after_days=None)], now)
        with store.engine.begin() as conn:   # as an older version stored it, unmasked
            conn.execute(text("UPDATE feed SET error_count = 3, last_error = 'too many "
                              "redirects; last to https://s3.example/x?X-Amz-Signature=OLD-1'"))
        shown = [h.last_error for h in store.feed_health(now, 3) if h.name == "old"]
        assert shown and "OLD-1" not in shown[0] and "X-Amz-Signature=***" in shown[0]
    finally:
        store.close()


def test_the_analysts_feed_health_view_shows_no_feed_url(tmp_path):
    import sqlite3
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from monitor.storage import open_store

    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.sync_feeds([SimpleNamespace(name="keyed", lang=None, interval_minutes=None,
                                          silent_after_days=None,
                                          url="https://carol:PASS-9@k.example/rss?api_key=KEY-9")],
                         datetime.now(timezone.utc))
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "m.db") as db:
        rows = db.execute("SELECT * FROM feed_health").fetchall()
    assert rows and "keyed" in repr(rows)
    assert "PASS-9" not in repr(rows) and "KEY-9" not in repr(rows)


def test_every_kind_of_secret_parameter_is_masked():
    # the names README and the module promise: keys, tokens, signatures, passwords, sessions,
    # codes …, in any case, with "-", "_", "." or brackets, percent-encoded too
    names = ["sig", "sign", "hmac", "pwd", "pass", "auth", "Authorization", "session", "sid",
             "code", "hash", "token", "access_token", "client_secret", "Password", "passwd",
             "apikey", "signature", "X-Amz-Signature", "credential", "passphrase", "sessionid",
             "jwt", "bearer", "key", "subscription-key", "api[key]", "user[password]",
             "access%5Ftoken", "session%5Fid", "client.secret"]
    for name in names:
        shown = masked_url(f"https://h/f?lang=de&{name}=S3CRET-V&page=2")
        assert shown == f"https://h/f?lang=de&{name}=***&page=2", name


def test_a_secret_after_a_semicolon_separator_is_masked():
    assert masked_url("https://h/f?page=2;token=S3CRET-V") == "https://h/f?page=2;token=***"


def test_user_info_is_masked_over_plain_http_and_for_any_user_name():
    assert masked_url("http://TOKEN-S3CRET@h/f") == "http://***@h/f"
    assert masked_url("https://Ana.Smith-2:S3CRET@h/f") == "https://Ana.Smith-2:***@h/f"
    assert masked_url("redirected to http://u_1:S3CRET@10.0.0.1:8080/f") == \
        "redirected to http://u_1:***@10.0.0.1:8080/f"


def test_credentials_in_an_encoded_url_inside_a_value_are_masked():
    shown = masked_url("last to https://h/login?next=https%3A%2F%2Fana%3AS3CRET%40h%2Ff")
    assert "S3CRET" not in shown and "login?next=" in shown and "ana" in shown


def test_an_encoded_url_without_a_secret_is_shown_as_it_is():
    url = "https://h/login?next=https%3A%2F%2Fh%2Ff%3Fa%3Db&lang=de"
    assert masked_url(url) == url


def test_a_password_holding_an_unencoded_at_sign_is_masked_whole():
    # fetched with the password "S3C@RET" (the authority's last "@" ends it), so shown without
    # any of it, in a feed URL and in a store URL alike
    assert masked_url("https://ana:S3C@RET@h/f") == "https://ana:***@h/f"
    assert masked_url("postgresql+psycopg://u:S3C@RET@db:5432/monitor?sslmode=require") == \
        "postgresql+psycopg://u:***@db:5432/monitor?sslmode=require"
    assert masked_url("https://ana:S3CRET@h/f?next=a@b") == "https://ana:***@h/f?next=a@b"


def test_a_token_user_name_is_masked_whatever_the_case_of_the_scheme():
    assert masked_url("HTTPS://TOKEN-S3CRET@h/f") == "HTTPS://***@h/f"
    assert masked_url("Http://TOKEN-S3CRET@h/f") == "Http://***@h/f"
    assert masked_url("https://TOKEN-S3CRET:@h/f") == "https://***:***@h/f"    # an empty password


def test_store_errors_mask_a_password_given_in_the_query_string():
    # libpq takes the password as a query parameter too; SQLAlchemy's hide_password hides
    # only the user info's, and the error reached logs, `monitor feeds` and serve's pages
    import pytest

    pytest.importorskip("psycopg")
    from monitor.exceptions import StorageError
    from monitor.storage.store import open_store

    url = "postgresql+psycopg://monitor@127.0.0.1:1/monitor?password=S3CRET-PG&connect_timeout=2"
    with pytest.raises(StorageError) as caught:
        open_store(url)
    assert "S3CRET-PG" not in str(caught.value)
    assert "password=***" in str(caught.value)


def test_a_store_password_holding_a_question_mark_or_a_hash_is_masked(tmp_path, monkeypatch):
    """SQLAlchemy reads a store URL's password up to its first "@", "?" and "#" included:
    the masking that stopped at them showed such a password whole (config check, the
    service's start line, `store copy`), which the older masking had hidden."""

    from click.testing import CliRunner

    import monitor.cli

    for url in ("postgresql+psycopg://monitor:pa?sS3CRET@db.example/monitor",
                "postgresql+psycopg://monitor:pa#sS3CRET@db.example:5432/monitor?sslmode=require"):
        assert "S3CRET" not in masked_url(url)
        assert masked_url(url).startswith("postgresql+psycopg://monitor:***@db.example")
    assert masked_url("https://ana:S3CRET@h?next=a") == "https://ana:***@h?next=a"
    assert masked_url("https://h?u=a:b@c") == "https://h?u=a:b@c"          # no user info
    config = tmp_path / "monitor.toml"
    config.write_text('[[feeds]]\nname = "x"\nurl = "http://127.0.0.1:1/feed"\n', encoding="utf-8")
    monkeypatch.setenv("MONITOR_STORE_URL", "postgresql+psycopg://monitor:pa?sS3CRET@db.example/m")
    shown = CliRunner().invoke(monitor.cli.cli, ["--config", str(config), "config", "check"]).output
    assert "S3CRET" not in shown and "monitor:***@db.example" in shown
