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
