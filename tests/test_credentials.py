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


def test_credentials_are_sent_and_appear_in_no_output(feed_server, feed_file, tmp_path):
    good = feed_server.add("/private", feed_file("rss2.xml"))
    bad = feed_server.add("/down", b"down", status=503, content_type="text/plain")

    def with_auth(url):
        return url.replace("http://", f"http://ana:{SECRET}@")

    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        f'[poll]\ncontact_url = "http://127.0.0.1/contact"\n'
        f'[digest]\noutbox_dir = "{tmp_path / "outbox"}"\nrecipients = ["a@example.org"]\n'
        f'send_when_empty = true\n'
        f'[[feeds]]\nname = "private"\nurl = "{with_auth(good)}"\n'
        f'[[feeds]]\nname = "down"\nurl = "{with_auth(bad)}"\n')
    outputs = []
    for args in (["poll", "--all"], ["--log-format", "json", "poll", "--all"], ["config", "check"],
                 ["feeds"], ["digest", "--preview", str(tmp_path / "preview.html")]):
        done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode in (0, 1), done.stderr
        outputs += [done.stdout, done.stderr]
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
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        f'[poll]\ncontact_url = "http://127.0.0.1/contact"\n'
        f'[digest]\noutbox_dir = "{tmp_path / "outbox"}"\nrecipients = ["a@example.org"]\n'
        f'[[feeds]]\nname = "keyed"\nurl = "{keyed}"\n'
        f'[[feeds]]\nname = "down"\nurl = "{down}"\n')
    outputs = []
    for args in (["poll", "--all"], ["--log-format", "json", "poll", "--all"], ["config", "check"],
                 ["feeds"]):
        done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode in (0, 1), done.stderr
        outputs += [done.stdout, done.stderr]
    assert feed_server.hits["/keyed?token=tok-SECRET-1"] >= 1       # the key was sent
    assert feed_server.hits["/down?api_key=key-SECRET-3"] >= 1
    text = "\n".join(outputs)
    assert "SECRET" not in text
    assert "token=***" in text and "api_key=***" in text and "X-Amz-Signature=***" in text
    assert "redirect" in text and "503" in text
