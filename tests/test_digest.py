"""The digest against a real store and a real SMTP server (aiosmtpd) on 127.0.0.1."""

import json
import os
import re
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.delivery import DigestJob
from monitor.digest import build_digest, render, subject
from monitor.exceptions import UsageError
from monitor.mail import OutboxMailer, SmtpMailer, build_message
from monitor.storage import open_store

from digest_data import ITEMS, T0, fill
from smtpserver import SmtpServer, make_certificate

GOLDEN = Path(__file__).parent / "golden" / "digest.html"
NOW = T0 + timedelta(hours=3)        # 07:00 UTC = 09:00 Europe/Berlin
RCPTS = ["ana@example.org", "ben@example.org", "cy@example.org"]


def config(tmp_path, smtp=None, **digest):
    data = {"store": {"url": f"sqlite:///{tmp_path / 'm.db'}"},
            "digest": {"recipients": RCPTS, "outbox_dir": str(tmp_path / "outbox"),
                       "timezone": "Europe/Berlin", **digest}}
    if smtp:
        data["smtp"] = {"max_attempts": 3, "retry_base_seconds": 0, "timeout_seconds": 5, **smtp}
    return parse_config(data, "test.toml")


@pytest.fixture
def store(store_url):
    s = fill(store_url)
    yield s
    s.close()


def job(store, cfg, mailer=None):
    return DigestJob(store, cfg, mailer, config_file="config/monitor.toml", sleep=lambda s: None)


def parts(message):
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_outbox_when_no_smtp_and_rerun_sends_nothing(store, tmp_path):
    cfg = config(tmp_path)
    outcome = job(store, cfg).run(NOW)
    assert outcome.sent == RCPTS and outcome.items == 5
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert len(files) == 6 and sum(f.endswith(".eml") for f in files) == 3
    again = job(store, cfg).run(NOW)
    assert again.sent == [] and again.already == RCPTS
    assert "already sent" in again.summary()
    assert len(list((tmp_path / "outbox").iterdir())) == 6
    resent = job(store, cfg).run(NOW, resend=True)          # nothing unsent: nobody again
    assert resent.sent == [] and resent.already == RCPTS
    one = job(store, cfg).run(NOW, resend=True, recipients=["ben@example.org"])
    assert one.sent == ["ben@example.org"]              # a file of its own, beside the first
    assert len(list((tmp_path / "outbox").iterdir())) == 8 and len(list(
        (tmp_path / "outbox").glob("*ben@example.org*.eml"))) == 2
    with pytest.raises(UsageError, match="no delivery to zed@example.org"):
        job(store, cfg).run(NOW, resend=True, recipients=["zed@example.org"])


def test_smtp_message_parts_headers_escaping_and_cjk(store, tmp_path):
    server = SmtpServer().start()
    try:
        cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none"})
        outcome = job(store, cfg).run(NOW)
    finally:
        server.stop()
    assert outcome.sent == RCPTS
    msg = server.recorder.received_by("ana@example.org")[0]
    assert msg.get_content_type() == "multipart/alternative"
    for header in ("Date", "Message-ID", "From", "To", "Subject"):
        assert msg[header], header
    assert msg["To"] == "ana@example.org" and "Bcc" not in msg
    assert msg["Subject"] == ("Critical minerals & export controls 2025-06-03: 3 on export controls, "
                              "4 on critical minerals — China tightens export licensing for gallium and germanium")
    assert msg["From"] == "monitor digest <monitor@localhost.localdomain>"
    assert msg["List-Id"] == "monitor digest <digest.localhost.localdomain>"
    text, html = parts(msg)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Bcc: victim" not in msg.as_string().split("\n\n", 1)[0]
    assert "稀土出口管制：商务部发布新规" in html and "稀土出口管制：商务部发布新规" in text
    assert "&lt;" not in text and "<script>" in text   # plain text is not HTML-escaped
    ids = {m["Message-ID"] for _, m in server.recorder.messages}
    assert len(ids) == 3


SUBJECTS = (
    "Critical minerals & export controls 2025-06-03: 12 export controls — 미국, 중국 희토류 수출통제에 대응 나서",
    "Critical minerals & export controls 2025-06-03: 1 export controls — Zölle auf Seltene Erden: "
    "Regierung prüft Exportkontrollen für Gallium",
    'Critical minerals & export controls 2025-06-03: 3 export controls — "Quoted" (paren) — x',
    "稀土 " * 40 + "=?utf-8?q?not-an-encoded-word?=",
)


def test_a_non_ascii_subject_reads_back_as_written_through_smtp_and_the_outbox(tmp_path):
    # the standard library's folding had dropped the space in "중국 희토류" and doubled the
    # one before "—"; every line of the header must also stay within 78 characters
    server = SmtpServer().start()
    try:
        mailer = SmtpMailer("127.0.0.1", server.port, security="none", timeout=10)
        for line in SUBJECTS:
            mailer.send(build_message(sender="monitor@example.org", recipient="ana@example.org",
                                      subject=line, html="<p>x</p>", text="x", when=NOW), "ana@example.org")
    finally:
        server.stop()
    assert [m["Subject"] for m in server.recorder.received_by("ana@example.org")] == list(SUBJECTS)
    outbox = OutboxMailer(tmp_path / "outbox")
    for line in SUBJECTS:
        raw = Path(outbox.send(build_message(sender="monitor@example.org", recipient="ben@example.org",
                                             subject=line, html="<p>x</p>", text="x", when=NOW),
                               "ben@example.org")).read_bytes()
        head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
        assert max(len(row.rstrip(b"\r")) for row in head.split(b"\n")) <= 78
        assert message_from_bytes(raw, policy=policy.default)["Subject"] == line


def test_a_short_non_ascii_text_part_goes_out_7bit_clean(tmp_path):
    """A quiet day's text part (short lines, an en dash in its period line) had gone out as
    raw 8-bit bytes, with no BODY=8BITMIME on MAIL FROM (smtplib adds it only for SMTPUTF8):
    RFC 6152 allows 8-bit data only so; every part is quoted-printable or base64 now."""
    server = SmtpServer().start()
    try:
        mailer = SmtpMailer("127.0.0.1", server.port, security="none", timeout=10)
        text = "Mon 02 Jun 2025 09:00 – Tue 03 Jun 2025 09:00\nNothing new: Zölle, 稀土.\n"
        mailer.send(build_message(sender="monitor@example.org", recipient="ana@example.org",
                                  subject="quiet day", html="<p>Nichts Neues – Zölle</p>", text=text,
                                  when=NOW), "ana@example.org")
    finally:
        server.stop()
    message = server.recorder.received_by("ana@example.org")[0]
    parts = [p for p in message.walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p["Content-Transfer-Encoding"] in ("7bit", "quoted-printable", "base64") for p in parts)
    assert parts[0].get_content() == text.replace("\n", "\r\n")


def test_an_address_beyond_ascii_is_mailed_as_far_as_the_server_can_take_it(tmp_path):
    """A domain beyond ASCII ("müller.example") had crashed every digest as the sender (the
    From header refused it) and, as a recipient, failed for good at a server without
    SMTPUTF8 with advice to check smtp.security; it goes out as its A-label, which every
    server takes. A local part beyond ASCII ("zoë@") needs SMTPUTF8: a server offering it
    gets the address as written, one without it a permanent error saying so; an outbox
    copy has it in its To header as written (RFC 6532), not as an encoded word (which no
    address may hold)."""
    from monitor.exceptions import DeliveryError

    def message(sender, recipient):
        return build_message(sender=sender, recipient=recipient, subject="Zölle", html="<p>x</p>",
                             text="x", when=NOW)

    server = SmtpServer(smtputf8=False).start()
    try:
        mailer = SmtpMailer("127.0.0.1", server.port, security="none", timeout=10)
        mailer.send(message("monitor@müller.example", "ana@bücher.example"), "ana@bücher.example")
        with pytest.raises(DeliveryError, match="SMTPUTF8") as refused:
            mailer.send(message("monitor@example.org", "zoë@example.org"), "zoë@example.org")
    finally:
        server.stop()
    assert refused.value.permanent and "zoë@example.org" in str(refused.value)
    assert "smtp.security" not in str(refused.value)
    got = server.recorder.received_by("ana@xn--bcher-kva.example")[0]
    assert got["To"] == "ana@xn--bcher-kva.example"
    assert got["From"] == "monitor digest <monitor@xn--mller-kva.example>"
    assert got["Message-ID"].endswith("@xn--mller-kva.example>")

    server = SmtpServer().start()
    try:
        SmtpMailer("127.0.0.1", server.port, security="none", timeout=10).send(
            message("monitor@example.org", "zoë@example.org"), "zoë@example.org")
    finally:
        server.stop()
    assert server.recorder.received_by("zoë@example.org")[0]["To"] == "zoë@example.org"

    raw = Path(OutboxMailer(tmp_path / "outbox").send(message("monitor@example.org", "zoë@example.org"),
                                                      "zoë@example.org")).read_bytes()
    assert "\nTo: zoë@example.org\n".encode() in raw and b"=?utf-8?q?zo" not in raw


def test_a_sender_whose_address_goes_beyond_ascii_before_the_at_is_mailed_or_refused_saying_so(
        tmp_path):
    """digest.sender = "zoë@…" raised an uncaught ValueError (NonASCIILocalPartDefect) while
    building every copy, whatever the server or the outbox: no digest went out, and no
    error said why. It goes to a server offering SMTPUTF8 as written, fails for good at one
    without it saying so, and is written as it is in an outbox copy."""
    from monitor.exceptions import DeliveryError

    def message():
        return build_message(sender="zoë@example.org", recipient="ana@example.org",
                             subject="Zölle", html="<p>x</p>", text="x", when=NOW)

    server = SmtpServer().start()
    try:
        SmtpMailer("127.0.0.1", server.port, security="none", timeout=10).send(message(),
                                                                               "ana@example.org")
    finally:
        server.stop()
    assert server.recorder.received_by("ana@example.org")[0]["From"] == "monitor digest <zoë@example.org>"

    server = SmtpServer(smtputf8=False).start()
    try:
        with pytest.raises(DeliveryError, match="SMTPUTF8") as refused:
            SmtpMailer("127.0.0.1", server.port, security="none", timeout=10).send(
                message(), "ana@example.org")
    finally:
        server.stop()
    assert refused.value.permanent and "zoë@example.org (digest.sender)" in str(refused.value)

    raw = Path(OutboxMailer(tmp_path / "outbox").send(message(), "ana@example.org")).read_bytes()
    assert raw.startswith("From: monitor digest <zoë@example.org>\n".encode())


def test_one_story_once_with_every_source(store, tmp_path):
    cfg = config(tmp_path)
    _, html, text = job(store, cfg).render(job(store, cfg).store.get_digest("x") or _record(store, cfg), NOW)
    body = html.split("<body", 1)[1]                   # (the subject in <title> names it too)
    assert body.count("China tightens export licensing for gallium and germanium") == 1
    assert re.search(r'Metals Desk, <a href="https://trade\.example/ga-2"[^>]*>Trade Wire</a>', html)
    assert "Metals Desk, Trade Wire" in text and "2 articles" in text
    assert "also Trade Wire: https://trade.example/ga-2" in text          # every source linked


def _record(store, cfg):
    job(store, cfg).run(NOW)
    return store.get_digest("2025-06-03")


def test_starttls_and_auth(store, tmp_path):
    import ssl

    cert, key = make_certificate(tmp_path)
    server = SmtpServer(tls_files=(cert, key), auth=("monitor", "pw-123")).start()
    os.environ["TEST_DIGEST_PW"] = "pw-123"
    try:
        cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "starttls",
                                     "username": "monitor", "password_env": "TEST_DIGEST_PW"})
        mailer = SmtpMailer.from_config(cfg.smtp)
        mailer.ssl_context = ssl.create_default_context(cafile=str(cert))
        outcome = job(store, cfg, mailer).run(NOW)
    finally:
        server.stop()
        del os.environ["TEST_DIGEST_PW"]
    assert outcome.sent == RCPTS and len(server.recorder.messages) == 3


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_mail_server_with_a_certificate_of_its_own_is_trusted_through_smtp_ca_file(
        store, tmp_path, security):
    """A relay with a self-signed certificate (or one from a company's own CA) could not be
    trusted from the config at all, and the error gave OpenSSL's words alone; it names the
    untrusted certificate and smtp.ca_file, which trusts it."""
    cert, key = make_certificate(tmp_path)
    server = SmtpServer(tls_files=(cert, key), implicit_tls=security == "ssl").start()
    try:
        smtp = {"host": "127.0.0.1", "port": server.port, "security": security}
        untrusted = job(store, config(tmp_path, smtp=smtp)).run(NOW)
        errors = {d.last_error for d in store.get_digest("2025-06-03").deliveries}
        trusted = job(store, config(tmp_path, smtp={**smtp, "ca_file": str(cert)})).run(NOW)
    finally:
        server.stop()
    (error,) = errors
    assert untrusted.retry == RCPTS and "certificate is not trusted" in error and "smtp.ca_file" in error
    assert trusted.sent == RCPTS and len(server.recorder.messages) == 3
    from monitor.config import config_warnings

    missing = config(tmp_path, smtp={**smtp, "ca_file": str(tmp_path / "relay.pem")})
    assert [w for w in config_warnings(missing) if w.startswith("smtp.ca_file: no file at")]


def test_a_missing_smtp_ca_file_holds_the_copies_for_a_retry(store, tmp_path):
    """`config check` says no copy goes out "until it is there": a missing smtp.ca_file
    failed every copy for good at the first try, so the file put in place an hour later
    sent nothing without a --resend. The copies wait for a retry now."""
    cert, key = make_certificate(tmp_path)
    server = SmtpServer(tls_files=(cert, key)).start()
    relay = tmp_path / "relay.pem"
    try:
        smtp = {"host": "127.0.0.1", "port": server.port, "security": "starttls", "ca_file": str(relay)}
        first = job(store, config(tmp_path, smtp=smtp)).run(NOW)
        error = {d.last_error for d in store.get_digest("2025-06-03").deliveries}
        relay.write_bytes(cert.read_bytes())            # the certificate put in place
        later = job(store, config(tmp_path, smtp=smtp)).run(NOW + timedelta(hours=1))
    finally:
        server.stop()
    assert first.retry == RCPTS and all("smtp.ca_file" in e for e in error)
    assert later.sent == RCPTS and len(server.recorder.messages) == 3


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_a_security_setting_that_does_not_fit_the_port_is_named_in_the_error(tmp_path, security):
    """TLS from the first byte to a plain port failed with OpenSSL's "wrong version number"
    alone, and a plain greeting awaited from a port that speaks TLS from the first byte
    (465) timed out with smtplib's words alone: both retried for a day without a word on
    smtp.security."""
    from monitor.exceptions import DeliveryError

    cert, key = make_certificate(tmp_path)
    server = SmtpServer(tls_files=(cert, key), implicit_tls=True) if security == "starttls" else SmtpServer()
    server.start()
    try:
        message = build_message(sender="monitor@example.org", recipient="ana@example.org",
                                subject="s", html="<p>x</p>", text="x", when=NOW)
        with pytest.raises(DeliveryError) as caught:
            SmtpMailer("127.0.0.1", server.port, security=security, timeout=2).send(
                message, "ana@example.org")
    finally:
        server.stop()
    error = caught.value
    assert not error.permanent and f"SMTP 127.0.0.1:{server.port}" in str(error)
    wanted = 'needs smtp.security = "starttls"' if security == "ssl" else 'needs smtp.security = "ssl"'
    assert wanted in str(error)
    assert server.recorder.messages == []


def test_a_connection_that_times_out_is_not_blamed_on_smtp_security(tmp_path):
    """A connection never taken (a firewall dropping port 25, a host down) timed out with
    the advice that port 465 needs smtp.security = "ssl", as if a greeting had not come on
    a port that speaks TLS: a starttls relay at 587 behind such a firewall was told to
    change a setting that was right. A listening socket whose accept queue is full drops
    further connections, as such a firewall does."""
    import socket

    from monitor.exceptions import DeliveryError

    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    queued = []
    for _ in range(3):                      # the queue holds one; the others wait unanswered
        waiting = socket.socket()
        waiting.setblocking(False)
        waiting.connect_ex(("127.0.0.1", port))
        queued.append(waiting)
    message = build_message(sender="monitor@example.org", recipient="ana@example.org",
                            subject="s", html="<p>x</p>", text="x", when=NOW)
    try:
        with pytest.raises(DeliveryError) as caught:
            SmtpMailer("127.0.0.1", port, security="starttls", timeout=1).send(message, "ana@example.org")
    finally:
        for waiting in queued:
            waiting.close()
        listener.close()
    assert "timed out" in str(caught.value) and not caught.value.permanent
    assert "smtp.security" not in str(caught.value)


@pytest.mark.parametrize(("password", "reply", "status"), [
    ("wrong", None, "failed"),
    ("right", "454 4.7.0 Temporary authentication failure", "retry")],
    ids=["wrong-password", "454-temporary"])
def test_a_refused_sign_in_fails_for_good_only_when_the_reply_is_permanent(
        store, tmp_path, password, reply, status):
    """535 (a wrong password) fails the copies for good; a 4xx reply to AUTH ("454
    Temporary authentication failure": the mail server's password backend away for a
    moment) is temporary like any other 4xx, and the copies stay open for the retries (it
    had failed them after one try). The password is never stored."""
    server = SmtpServer(auth=("monitor", "right"), auth_reply=reply).start()
    os.environ["TEST_DIGEST_PW"] = password
    try:
        cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none",
                                     "username": "monitor", "password_env": "TEST_DIGEST_PW"})
        outcome = job(store, cfg).run(NOW)
    finally:
        server.stop()
        del os.environ["TEST_DIGEST_PW"]
    assert (outcome.failed, outcome.retry) == ((RCPTS, []) if status == "failed" else ([], RCPTS))
    deliveries = store.get_digest("2025-06-03").deliveries
    assert {d.status for d in deliveries} == {status} and password not in str(deliveries)


@pytest.mark.parametrize("settings", [{"security": "starttls"}, {"username": "monitor",
                                                                 "password_env": "TEST_DIGEST_PW"}],
                         ids=["no-starttls", "no-auth"])
def test_a_server_without_starttls_or_auth_is_a_settings_failure_not_retried(store, tmp_path, settings,
                                                                             monkeypatch):
    monkeypatch.setenv("TEST_DIGEST_PW", "pw")
    server = SmtpServer().start()                    # plain SMTP: offers neither
    try:
        cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none",
                                     **settings})
        outcome = job(store, cfg).run(NOW)
    finally:
        server.stop()
    assert outcome.failed == RCPTS and outcome.retry == []
    errors = {d.last_error for d in store.get_digest("2025-06-03").deliveries}
    assert all("check smtp.security" in e for e in errors), errors


def test_faults_then_recovery_give_each_recipient_exactly_one_copy(store, tmp_path):
    server = SmtpServer()                               # not started yet: connection refused
    cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none",
                                 "max_attempts": 5})
    down = job(store, cfg).run(NOW, wait_for_retries=False)
    assert down.retry == RCPTS and down.sent == []
    server.start()
    try:
        server.recorder.faults = {"ben@example.org": ["451 4.3.0 try later"],
                                  "cy@example.org": ["550 5.1.1 no such user"]}
        first = job(store, cfg).run(NOW + timedelta(minutes=5), wait_for_retries=False)
        second = job(store, cfg).run(NOW + timedelta(minutes=10), wait_for_retries=False)
        third = job(store, cfg).run(NOW + timedelta(minutes=20), wait_for_retries=False)
    finally:
        server.stop()
    assert first.sent == ["ana@example.org"] and first.retry == ["ben@example.org"]
    assert first.failed == ["cy@example.org"]
    assert second.sent == ["ben@example.org"]
    assert third.sent == [] and sorted(third.already) == ["ana@example.org", "ben@example.org"]
    assert len(server.recorder.received_by("ana@example.org")) == 1
    assert len(server.recorder.received_by("ben@example.org")) == 1
    assert server.recorder.received_by("cy@example.org") == []
    cy = [d for d in store.get_digest("2025-06-03").deliveries if d.recipient == "cy@example.org"][0]
    assert cy.status == "failed" and cy.attempts == 2
    assert cy.last_error == (f"SMTP 127.0.0.1:{server.port} refused the recipient cy@example.org: "
                             "550 5.1.1 no such user")


def test_temporary_failures_stay_open_after_max_attempts_and_a_later_run_sends(store, tmp_path):
    server = SmtpServer()                            # not started: connection refused
    cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none"})
    outcome = job(store, cfg).run(NOW)              # the CLI way: retries within the call
    assert outcome.retry == RCPTS and outcome.failed == []
    deliveries = store.get_digest("2025-06-03").deliveries
    assert {d.attempts for d in deliveries} == {3} and {d.status for d in deliveries} == {"retry"}
    assert all(d.next_attempt_at <= NOW + timedelta(hours=1) for d in deliveries)   # capped
    server.start()
    try:
        later = job(store, cfg).run(NOW + timedelta(hours=5))          # a plain re-run
        again = job(store, cfg).run(NOW + timedelta(hours=6))
    finally:
        server.stop()
    assert later.sent == RCPTS and again.sent == [] and again.already == RCPTS
    assert all(len(server.recorder.received_by(r)) == 1 for r in RCPTS)


def test_an_outbox_under_a_file_is_a_failed_copy_retried_once_the_folder_is_fixed(store, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outbox's parent should be", encoding="utf-8")
    cfg = config(tmp_path, outbox_dir=str(blocker / "outbox"))
    outcome = job(store, cfg).run(NOW)                  # no traceback, no copy left "sending"
    assert outcome.sent == [] and outcome.retry == RCPTS
    fixed = config(tmp_path)
    again = job(store, fixed).run(NOW)
    assert again.sent == RCPTS and len(list((tmp_path / "outbox").glob("*.eml"))) == 3


def test_an_outbox_on_a_full_disk_leaves_no_partial_file(store, tmp_path):
    """The file-size limit stands in for a full disk: the write stops part-way (EFBIG)."""
    script = (
        "import resource, signal, sys\n"
        "from datetime import datetime, timezone\n"
        "from pathlib import Path\n"
        "from monitor.exceptions import DeliveryError\n"
        "from monitor.mail import OutboxMailer, build_message\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))\n"
        "m = build_message(sender='d@example.org', recipient='ana@example.org', subject='s',\n"
        "                  html='<p>' + 'x' * 3000 + '</p>', text='y' * 3000,\n"
        "                  when=datetime(2025, 6, 3, 7, tzinfo=timezone.utc))\n"
        "try:\n"
        "    OutboxMailer(Path(sys.argv[1])).send(m, 'ana@example.org')\n"
        "except DeliveryError as exc:\n"
        "    print('refused:', exc)\n")
    import subprocess
    import sys

    outbox = tmp_path / "outbox"
    done = subprocess.run([sys.executable, "-c", script, str(outbox)], capture_output=True, text=True)
    assert "refused: cannot write to the outbox" in done.stdout, done.stderr
    assert list(outbox.iterdir()) == []              # no truncated .eml, no 0-byte file


def test_temporary_files_a_killed_writer_left_in_the_outbox_are_removed_once_stale(store, tmp_path):
    import os
    import time

    outbox = tmp_path / "outbox"
    outbox.mkdir()
    stale = outbox / ".digest-20250602-070000-ana@example.org-abc123.eml.part"
    fresh = outbox / ".digest-20250603-065959-ben@example.org-def456.eml.part"   # a writer's
    other = outbox / ".notes.part"
    for partial in (stale, fresh, other):
        partial.write_bytes(b"From: d@example.org\r\n")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    os.utime(other, (two_hours_ago, two_hours_ago))
    assert job(store, config(tmp_path)).run(NOW).sent == RCPTS
    assert not stale.exists() and fresh.exists() and other.exists()   # only ours, only old


def test_interrupted_send_is_not_repeated(store, tmp_path):
    cfg = config(tmp_path)
    record = _record(store, cfg)
    store.set_delivery(record, "ben@example.org", status="sending")
    outcome = job(store, cfg).run(NOW + timedelta(minutes=1))
    assert outcome.unknown == ["ben@example.org"] and "unknown whether delivered" in outcome.summary()
    assert outcome.interrupted == {}        # this digest's own: said once, under unknown
    d = [d for d in store.get_digest("2025-06-03").deliveries if d.recipient == "ben@example.org"][0]
    assert d.status == "unknown"


def test_a_copy_a_killed_run_left_sending_is_marked_by_the_next_days_digest_run(store, tmp_path,
                                                                                caplog):
    """Digests sent only from cron: no service marks a dead run's copy of an earlier day.
    The next `monitor digest` (any day's) marks it unknown and says so — in the log and in
    its summary, with the command that sends it again — and never re-sends it by itself;
    a copy of an earlier day another run has claimed within its lease is left to it."""
    cfg = config(tmp_path)
    job(store, cfg).run(NOW)
    record = store.get_digest("2025-06-03")
    store.set_delivery(record, "ben@example.org", status="sending",       # killed mid-send
                       next_attempt_at=NOW + timedelta(minutes=2))
    tomorrow = NOW + timedelta(days=1)
    store.set_delivery(record, "cy@example.org", status="sending",        # being sent now
                       next_attempt_at=tomorrow + timedelta(minutes=2))
    with caplog.at_level("WARNING", logger="monitor"):
        outcome = job(store, cfg).run(tomorrow)
    assert outcome.digest_date == "2025-06-04" and outcome.interrupted == {"2025-06-03": ["ben@example.org"]}
    assert ("digest 2025-06-03: a run was interrupted while sending it; unknown whether delivered "
            "(not re-sent; monitor digest --date 2025-06-03 --resend sends again) to ben@example.org"
            ) in outcome.summary()
    assert ("digest 2025-06-03 to ben@example.org: interrupted while sending" in caplog.text
            and "monitor digest --date 2025-06-03 --resend" in caplog.text)
    statuses = {d.recipient: (d.status, d.last_error) for d in store.get_digest("2025-06-03").deliveries}
    assert statuses["ben@example.org"] == ("unknown", "interrupted while sending")
    assert statuses["cy@example.org"][0] == "sending"
    assert len(list((tmp_path / "outbox").glob("digest-20250603-*ben@example.org*.eml"))) == 1
    again = job(store, cfg).run(tomorrow + timedelta(minutes=1))       # said once, not each run
    assert again.interrupted == {} and "interrupted" not in again.summary()
    resent = job(store, cfg).run(tomorrow, day="2025-06-03", resend=True)
    assert resent.sent == ["ben@example.org"] and "cy@example.org" in resent.elsewhere


def test_a_resend_sends_a_copy_a_killed_run_left_sending_in_one_go(store, tmp_path):
    """The copy is marked unknown before the resend looks, not after it passed it over as
    claimed (the analyst had to run --resend twice)."""
    cfg = config(tmp_path)
    job(store, cfg).run(NOW)
    store.set_delivery(store.get_digest("2025-06-03"), "ben@example.org", status="sending",
                       next_attempt_at=NOW + timedelta(minutes=2))
    later = NOW + timedelta(hours=1)
    assert job(store, cfg).run(later, resend=True).sent == ["ben@example.org"]
    assert job(store, cfg).run(later, resend=True, recipients=["cy@example.org"]).sent == ["cy@example.org"]


def test_the_digest_command_from_cron_marks_an_earlier_days_dead_copy_and_exits_1(tmp_path):
    """`monitor digest` with no service running: the earlier day's copy a killed run left
    "sending" is marked unknown, said on stdout and in the log, and the exit status is 1
    (a copy may not have been delivered); the next run is quiet about it."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = fill(url)
    cfg = config(tmp_path)
    job(store, cfg).run(NOW)
    store.set_delivery(store.get_digest("2025-06-03"), "ben@example.org", status="sending",
                       next_attempt_at=NOW + timedelta(minutes=2))
    store.close()
    path = tmp_path / "monitor.toml"
    path.write_text(f'[store]\nurl = "{url}"\n[digest]\nrecipients = {RCPTS!r}\n'
                    f'timezone = "Europe/Berlin"\noutbox_dir = "{tmp_path / "outbox"}"\n'.replace("'", '"'),
                    encoding="utf-8")
    root = Path(__file__).resolve().parent.parent

    def cron_run():
        return subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "digest"],
                              cwd=root, capture_output=True, text=True, timeout=120)

    first, second = cron_run(), cron_run()
    assert first.returncode == 1, (first.stdout, first.stderr)
    assert "digest 2025-06-03: a run was interrupted while sending it" in first.stdout
    assert "digest 2025-06-03 to ben@example.org: interrupted while sending" in first.stderr
    assert second.returncode == 0 and "interrupted" not in second.stdout + second.stderr, second
    with open_store(url) as reopened:
        ben = [d for d in reopened.get_digest("2025-06-03").deliveries if d.recipient == "ben@example.org"]
    assert ben[0].status == "unknown"
    assert len(list((tmp_path / "outbox").glob("digest-20250603-*ben@example.org*.eml"))) == 1


def test_a_reply_lost_after_data_is_unknown_and_never_re_sent(store, tmp_path):
    server = SmtpServer().start()
    server.recorder.drop_after_data = {"ben@example.org"}      # takes the message, hangs up
    cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none",
                                 "max_attempts": 4})
    try:
        first = job(store, cfg).run(NOW)                     # the CLI way: retries in the call
        again = job(store, cfg).run(NOW + timedelta(minutes=30))
    finally:
        server.stop()
    assert first.sent == ["ana@example.org", "cy@example.org"]
    assert first.unknown == ["ben@example.org"] and first.retry == first.failed == []
    assert "unknown whether delivered" in first.summary()
    assert again.sent == [] and again.unknown == ["ben@example.org"]
    assert len(server.recorder.received_by("ben@example.org")) == 1       # never twice
    ben = [d for d in store.get_digest("2025-06-03").deliveries if d.recipient == "ben@example.org"][0]
    assert ben.status == "unknown" and "no reply came back" in ben.last_error and ben.attempts == 1


def test_each_article_in_exactly_one_digest(store, tmp_path):
    cfg = config(tmp_path)
    first = job(store, cfg).run(NOW)
    second = job(store, cfg).run(NOW + timedelta(days=1))
    assert first.items == 5 and second.items == 0


def test_an_article_reviewed_not_relevant_before_the_digest_is_left_out(store, tmp_path):
    from datetime import datetime, timezone

    from sqlalchemy import text as sql

    with store.engine.connect() as conn:
        rows = dict(conn.execute(sql("SELECT title, id FROM article")).all())
    nickel = next(i for t, i in rows.items() if "Nickel ore" in t)
    chile = next(i for t, i in rows.items() if "Codelco" in t)
    at = datetime(2025, 6, 3, 5, 0, tzinfo=timezone.utc)
    store.add_reviews({nickel: ()}, "irrelevant", "ore, not news", "ana", at)
    store.add_reviews({chile: ()}, "irrelevant", None, "ana", at)
    store.add_reviews({chile: ("critical-minerals",)}, "relevant", "on second thought", "ben", at)
    first = job(store, config(tmp_path)).run(NOW)
    mailed = {a.title for a in store.digest_articles(store.get_digest(first.digest_date))}
    assert first.items == 4 and not any("Nickel ore" in t for t in mailed)
    assert any("Codelco" in t for t in mailed)       # the current verdict counts, not history


def test_a_copy_of_a_story_already_mailed_is_not_mailed_again(store, store_url, tmp_path):
    cfg = config(tmp_path)
    assert job(store, cfg).run(NOW).items == 5
    later = T0 + timedelta(days=1)
    ga, li = ITEMS[0], ITEMS[2]
    copies = [      # the next day through another feed: ga-1's link, li-1's title and text
        ("Metals", "ga-1", *ga[2:8], 10),      # same link as Metals Desk's (https://metals…/ga-1)
        ("Late Wire", "li-1", *li[2:8], 20),   # other link, same content hash ("li-1")
        ("Late Wire", "new", "Kazakhstan opens a tungsten mine", "Output starts in May.",
         ("critical-minerals",), 0.9, ("KZ",), ("tungsten",), 30)]
    fill(store_url, copies, later).close()
    second = job(store, cfg).run(NOW + timedelta(days=1))
    assert second.items == 1
    assert [a.title for a in store.digest_articles(store.get_digest(second.digest_date))] == [
        "Kazakhstan opens a tungsten mine"]


def test_a_link_alone_does_not_make_a_copy(store, store_url, tmp_path):
    """Feeds that give every item their home page, and a daily briefing under one title and
    link, still have their new stories mailed; a story with the link, title and time of
    one mailed before is a copy, even when another feed gives it a shorter text."""
    home = "https://home.example/"
    day0 = [("Home Wire", "h1", "Lithium mine approved in Portugal", "Savannah gets a licence.",
             ("critical-minerals",), 0.9, ("PT",), ("lithium",), 30),
            ("Brief Wire", "b1", "Daily export controls briefing", "Gallium licences.",
             ("export-controls",), 0.9, ("CN",), ("gallium",), 40)]
    fill(store_url, day0, links={"h1": home, "b1": "https://brief.example/daily"}).close()
    assert job(store, config(tmp_path)).run(NOW).items == 7
    ga = ITEMS[0]
    day1 = [("Home Wire", "h2", "Cobalt exports from Congo resume", "The ban ends.",
             ("critical-minerals",), 0.9, ("CD",), ("cobalt",), 10),
            ("Brief Wire", "b2", "Daily export controls briefing", "Antimony rules.",
             ("export-controls",), 0.9, ("CN",), ("antimony",), 20),
            ("Metals Late", "ga-short", ga[2], "China tightens gallium licensing.", *ga[4:8], 30)]
    fill(store_url, day1, T0 + timedelta(days=1),
         links={"h2": home, "b2": "https://brief.example/daily",
                "ga-short": "https://metals.example/ga-1"},
         published={"ga-short": T0 + timedelta(minutes=10)}).close()
    second = job(store, config(tmp_path)).run(NOW + timedelta(days=1))
    assert sorted(a.text for a in store.digest_articles(store.get_digest(second.digest_date))) == [
        "Antimony rules.", "The ban ends."]


def test_an_article_a_poll_commits_after_a_digest_it_predates_goes_out_with_the_next(
        store, store_url, tmp_path):
    cfg = config(tmp_path)
    assert job(store, cfg).run(NOW).items == 5
    # stamped "first seen" 10 minutes before that digest's end, committed after it was made
    late = [("Slow Wire", "late", "Chile's lithium output rises", "Up 8 % on the year.",
             ("critical-minerals",), 0.9, ("CL",), ("lithium",), 170)]
    fill(store_url, late).close()
    assert job(store, cfg).run(NOW + timedelta(days=1)).items == 1


def test_a_resend_or_an_earlier_day_goes_only_to_its_own_recipients(store, tmp_path):
    assert job(store, config(tmp_path)).run(NOW).sent == RCPTS
    more = config(tmp_path, recipients=[*RCPTS, "dan@example.org"])
    one = job(store, more).run(NOW, resend=True, recipients=["ben@example.org"])
    assert one.sent == ["ben@example.org"]
    later = job(store, more).run(NOW + timedelta(days=1), day="2025-06-03")   # yesterday's
    assert later.sent == [] and "dan@example.org" not in later.already
    assert "dan@example.org" not in {d.recipient for d in store.get_digest("2025-06-03").deliveries}
    today = job(store, more).run(NOW)                    # today's: a new recipient gets it
    assert today.sent == ["dan@example.org"]
    cased = config(tmp_path, recipients=["Ana@Example.org", *RCPTS[1:], "dan@example.org"])
    assert job(store, cased).run(NOW).sent == []         # the same mailbox, written otherwise
    again = job(store, cased).run(NOW, resend=True, recipients=["BEN@example.org"])
    assert again.sent == ["ben@example.org"]


def test_a_resend_leaves_a_copy_another_run_is_sending_to_it(store, tmp_path):
    cfg = config(tmp_path)
    job(store, cfg).run(NOW)
    record = store.get_digest("2025-06-03")
    store.set_delivery(record, "ben@example.org", status="sending",        # claimed elsewhere
                       next_attempt_at=NOW + timedelta(minutes=5))
    store.set_delivery(record, "cy@example.org", status="failed")
    again = job(store, cfg).run(NOW, resend=True)
    assert again.sent == ["cy@example.org"] and "ben@example.org" in again.elsewhere
    named = job(store, cfg).run(NOW, resend=True, recipients=["ben@example.org"])
    assert named.sent == [] and len(list((tmp_path / "outbox").glob("*ben@*.eml"))) == 1


def test_a_stopping_service_begins_no_further_copy(store, tmp_path):
    begun = []
    digest_job = DigestJob(store, config(tmp_path), None, sleep=lambda s: None,
                           stopping=lambda: bool(begun) or begun.append(1) is not None)
    outcome = digest_job.run(NOW)
    assert outcome.sent == ["ana@example.org"]
    assert [d.status for d in store.get_digest("2025-06-03").deliveries] == ["sent", "pending", "pending"]
    assert job(store, config(tmp_path)).run(NOW).sent == ["ben@example.org", "cy@example.org"]


def test_a_delivered_copy_is_recorded_though_the_store_is_locked_a_while(store, tmp_path, monkeypatch):
    from monitor.exceptions import StorageError

    real, refusals = store.set_delivery, []

    def locked_twice(record, recipient, **values):
        if values.get("status") == "sent" and len(refusals) < 2:
            refusals.append(recipient)
            raise StorageError("the store is locked by another writer")
        return real(record, recipient, **values)

    monkeypatch.setattr(store, "set_delivery", locked_twice)
    outcome = job(store, config(tmp_path)).run(NOW)
    assert outcome.sent == RCPTS and refusals == ["ana@example.org", "ana@example.org"]
    assert {d.status for d in store.get_digest("2025-06-03").deliveries} == {"sent"}


def test_a_delivered_copy_is_recorded_though_the_store_is_down_for_seconds(store, tmp_path,
                                                                            monkeypatch):
    """PostgreSQL restarting (or failing over) refuses connections at once, without the
    busy timeout SQLite waits within each try: the tries to record a delivered copy are
    spread over time, so a store down for a few seconds does not leave a delivered copy
    'sending' (then 'unknown', exit 1) and the other recipients unsent."""
    from monitor.delivery import MIN_LEASE
    from monitor.exceptions import StorageError

    waited: list[float] = []
    real = store.set_delivery

    def down_for_ten_seconds(record, recipient, **values):
        if values.get("status") == "sent" and sum(waited) < 10:
            raise StorageError("connection refused")
        return real(record, recipient, **values)

    monkeypatch.setattr(store, "set_delivery", down_for_ten_seconds)
    digest_job = DigestJob(store, config(tmp_path), None, config_file="config/monitor.toml",
                           sleep=waited.append)
    outcome = digest_job.run(NOW)
    assert outcome.sent == RCPTS
    assert {d.status for d in store.get_digest("2025-06-03").deliveries} == {"sent"}
    assert 10 <= sum(waited) < MIN_LEASE.total_seconds() / 2


def test_two_runs_adding_one_new_recipient_at_once_make_one_delivery(store, tmp_path, monkeypatch):
    import monitor.storage.ledger as ledger

    job(store, config(tmp_path)).run(NOW)
    record = store.get_digest("2025-06-03")
    with store.engine.begin() as conn:
        ledger.add_recipients(conn, record.id, ["dan@example.org"])
    monkeypatch.setattr(ledger, "_deliveries", lambda conn, digest_id: ())  # read before it
    with store.engine.begin() as conn:
        ledger.add_recipients(conn, record.id, ["dan@example.org"])        # no IntegrityError
    monkeypatch.undo()
    assert [d.recipient for d in store.get_digest("2025-06-03").deliveries].count("dan@example.org") == 1


def test_a_day_before_the_latest_digest_is_refused_not_sent_empty(store, tmp_path):
    assert job(store, config(tmp_path)).run(NOW).items == 5
    with pytest.raises(UsageError, match="a later digest already covers its time"):
        job(store, config(tmp_path)).run(NOW, day="2025-06-02")
    with pytest.raises(UsageError, match="a later digest already covers its time"):
        job(store, config(tmp_path)).preview(NOW, day="2025-06-02")
    assert store.get_digest("2025-06-02") is None


def test_a_later_rounds_claim_is_taken_at_its_own_time(store, tmp_path, monkeypatch):
    """Retry rounds wait (retry_base_seconds × 1, 2 …); the claim of a copy in a later
    round holds its lease from when it is taken, not from when the run began."""
    import monitor.delivery as delivery

    elapsed = {"s": 0.0}
    monkeypatch.setattr(delivery.time, "monotonic", lambda: elapsed["s"])
    server = SmtpServer().start()
    leases = []

    class Watching(SmtpMailer):
        def send(self, message, recipient):
            [d] = [d for d in store.get_digest("2025-06-03").deliveries if d.recipient == recipient]
            leases.append((d.next_attempt_at - NOW).total_seconds() - elapsed["s"])
            return super().send(message, recipient)

    try:
        server.recorder.faults = {"ana@example.org": ["451 4.3.0 try later"] * 2}
        cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none",
                                     "max_attempts": 3, "retry_base_seconds": 300},
                     recipients=["ana@example.org"])
        job_ = DigestJob(store, cfg, Watching.from_config(cfg.smtp), config_file="x",
                         sleep=lambda s: elapsed.__setitem__("s", elapsed["s"] + s))
        assert job_.run(NOW).sent == ["ana@example.org"]
    finally:
        server.stop()
    assert len(leases) == 3 and all(lease >= 120 for lease in leases), leases


def test_empty_period_respects_send_when_empty(tmp_path):
    store = fill(f"sqlite:///{tmp_path / 'm.db'}", items=[])
    quiet = job(store, config(tmp_path, send_when_empty=False)).run(NOW)
    assert quiet.sent == [] and "no mail" in quiet.note
    store.close()
    store = fill(f"sqlite:///{tmp_path / 'n.db'}", items=[])
    cfg = config(tmp_path, send_when_empty=True)
    cfg = cfg.model_copy(update={"store": cfg.store.model_copy(update={"url": f"sqlite:///{tmp_path / 'n.db'}"})})
    loud = job(store, cfg).run(NOW)
    assert loud.sent == RCPTS
    eml = next((tmp_path / "outbox").glob("*.eml")).read_bytes()
    plain = message_from_bytes(eml, policy=policy.default).get_body(("plain",)).get_content()
    assert "Nothing new was flagged" in plain
    store.close()


def test_an_empty_digest_offers_no_story_links_or_ids(tmp_path, monkeypatch):
    """The "nothing new" copy ended with "Relevant / Not relevant open the story … (links
    valid until …)" and "mark it with monitor review mark ID" (ID: the #number of a story)
    under no story, link or id at all."""
    monkeypatch.setenv("MONITOR_REVIEW_KEY", "digest-test-key-0123456789")
    store = fill(f"sqlite:///{tmp_path / 'm.db'}", items=[])
    try:
        cfg = config(tmp_path, send_when_empty=True, review_url="https://monitor.example")
        assert job(store, cfg).run(NOW).sent == RCPTS
    finally:
        store.close()
    eml = next((tmp_path / "outbox").glob("*.eml")).read_bytes()
    plain, html = parts(message_from_bytes(eml, policy=policy.default))
    for part in (plain, " ".join(html.split())):
        assert "Nothing new was flagged" in part and "monitor keywords test" in part
        assert "links valid until" not in part and "monitor review mark ID" not in part


def test_switching_send_when_empty_on_mails_todays_empty_digest_once(tmp_path):
    """Today's empty digest was made while send_when_empty was off: after switching it on,
    the next run mails the "nothing new" copy (as to recipients added since), once; it had
    said "send_when_empty is off", which was no longer true, and sent nothing."""
    store = fill(f"sqlite:///{tmp_path / 'm.db'}", items=[])
    try:
        quiet = job(store, config(tmp_path, send_when_empty=False)).run(NOW)
        assert quiet.sent == [] and quiet.note == "nothing flagged and send_when_empty is off: no mail"
        loud = job(store, config(tmp_path, send_when_empty=True)).run(NOW + timedelta(minutes=5))
        assert loud.sent == RCPTS and not loud.note
        again = job(store, config(tmp_path, send_when_empty=True)).run(NOW + timedelta(minutes=9))
        assert again.sent == [] and again.already == RCPTS
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3
    finally:
        store.close()


def test_max_items_counts_the_rest(store, tmp_path):
    cfg = config(tmp_path, max_items=2)
    _, html, text = job(store, cfg).render(_record(store, cfg), NOW)
    assert "and 1 more critical minerals story" in text or "and 2 more" in text
    assert html.count('class="item"') == 2


def test_golden_html(store, tmp_path):
    """A fixed set of articles renders to the reviewed HTML and plain text (UPDATE_GOLDEN=1
    rewrites both)."""
    cfg = config(tmp_path)
    articles = store.digest_candidates(T0 - timedelta(days=1), NOW)
    clusters = {a.id: min(b.id for b in articles if b.title.startswith(a.title[:40])) for a in articles}
    digest = build_digest(articles, clusters, digest_date="2025-06-03", period_start=T0 - timedelta(hours=21),
                          period_end=NOW, zone=cfg.digest.zone(), max_items=40, config_file="config/monitor.toml")
    html, text = render(digest, subject(cfg.digest.subject, digest))
    golden_text = GOLDEN.with_suffix(".txt")
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(html, encoding="utf-8")
        golden_text.write_text(text, encoding="utf-8")
    assert html == GOLDEN.read_text(encoding="utf-8")
    assert text == golden_text.read_text(encoding="utf-8")
    # CSS inlined for mail clients, but for the phone's @media rule, which no style attribute
    # can hold
    assert 'style="' in html and [s.strip()[:6] for s in re.findall(r"<style>(.*?)</style>", html, re.S)] == ["@media"]
    assert not re.search(r"(src|href)=\"(?!https?://)", html)  # no remote or odd resources


def test_no_recipients_says_so_rather_than_blaming_send_when_empty(store, tmp_path):
    outcome = job(store, config(tmp_path, recipients=[], send_when_empty=True)).run(NOW)
    assert outcome.sent == [] and "no recipients in digest.recipients" in outcome.summary()
    assert "send_when_empty" not in outcome.summary()


def _digest_processes(tmp_path, server, count: int, wait_for_data: bool = False):
    """``count`` ``monitor digest --date 2025-06-03`` processes on one store and one SMTP
    server: started together, or each next one once the server is taking a message.
    Returns [(exit code, stdout, stderr)]."""
    import subprocess
    import sys

    fill(f"sqlite:///{tmp_path / 'm.db'}").close()
    path = tmp_path / "monitor.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
                    f'[digest]\nrecipients = {RCPTS!r}\ntimezone = "Europe/Berlin"\n'
                    f'outbox_dir = "{tmp_path / "outbox"}"\n'
                    f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
                    'max_attempts = 1\ntimeout_seconds = 10\n'.replace("'", '"'), encoding="utf-8")
    command = [sys.executable, "-m", "monitor", "--config", str(path), "digest", "--date", "2025-06-03"]
    root = Path(__file__).resolve().parent.parent
    procs = []
    for _ in range(count):
        procs.append(subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
        if wait_for_data:
            assert server.recorder.data_started.wait(60), "the first process never sent"
    return [(p.wait(120), *p.communicate()) for p in procs]


def _sent_by(output: str) -> list[str]:
    found = re.search(r"; sent ([^;\n]+)", output)
    return found.group(1).split(", ") if found else []


@pytest.mark.parametrize("wait_for_data", [False, True], ids=["started-together", "second-while-sending"])
def test_digests_run_at_once_send_each_copy_once_and_say_who_sent_it(tmp_path, wait_for_data):
    server = SmtpServer().start()
    server.recorder.data_delay = 0.7               # each message takes a while to go out
    try:
        results = _digest_processes(tmp_path, server, 3, wait_for_data)
    finally:
        server.stop()
    for code, out, err in results:
        assert code == 0 and "Traceback" not in err and "--resend" not in out, (code, out, err)
    assert sorted(r for _, out, _ in results for r in _sent_by(out)) == RCPTS   # each by one
    for recipient in RCPTS:
        assert len(server.recorder.received_by(recipient)) == 1
    for _, out, _ in results:                       # who did not send says who did, or is
        others = set(RCPTS) - set(_sent_by(out))
        assert all(r in out.split("; sent ")[-1] or r in out for r in others), out
        assert ("already sent to" in out or "claimed by another run" in out
                or not others), out


def test_postgresql_openers_of_digests_wait_for_the_one_making_a_digest(store, store_url):
    """The advisory lock of open_digest: while one process makes the digest of a day
    (inside its transaction: it has read the period's articles and is clustering them),
    another opening the same day and a third opening the next day wait for that lock —
    not for a row it wrote — and go on when it commits: the same day's opener gets its
    digest (one delivery per recipient, nothing clustered twice), the next day's starts
    where it ended and holds none of its articles. Without the lock the next day's opener
    read the same uncommitted period, took the same articles, and the first one's digest
    failed on the unique article."""
    if not store_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's advisory lock (SQLite serialises writers itself)")
    import threading

    from sqlalchemy import create_engine, text

    inside, go_on = threading.Event(), threading.Event()
    clustered: list[str] = []
    results: dict = {}

    def making(articles):                  # the first opener, inside its transaction
        clustered.append("first")
        inside.set()
        assert go_on.wait(60)
        return {}

    def opener(name, day, end, clusterer):
        other = store if name == "first" else open_store(store_url)     # a connection of its own
        try:
            results[name] = other.open_digest(day, end, T0 - timedelta(days=1), RCPTS, False,
                                              clusterer, end)
        except Exception as exc:        # said by the asserts below
            results[name] = exc
        finally:
            if other is not store:
                other.close()

    def cluster_as(name):
        return lambda articles: clustered.append(name) or {}

    end, next_end = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    threads = [threading.Thread(target=opener, args=("first", "2025-06-03", end, making))]
    threads[0].start()
    watcher = create_engine(store_url)
    try:
        assert inside.wait(60), results
        threads += [threading.Thread(target=opener, args=("same day", "2025-06-03", end,
                                                          cluster_as("same day"))),
                    threading.Thread(target=opener, args=("next day", "2025-06-04", next_end,
                                                          cluster_as("next day")))]
        for thread in threads[1:]:
            thread.start()
        waiting = 0
        for _ in range(600):            # both wait on the advisory lock (at most 60 s)
            with watcher.connect() as conn:
                waiting = conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")).scalar_one()
            if waiting == 2 or results:         # (an opener that did not wait is done)
                break
            time.sleep(0.1)
        assert waiting == 2 and clustered == ["first"], (waiting, clustered, results)
    finally:
        go_on.set()
        for thread in threads:
            thread.join(60)
        watcher.dispose()
    first, same, later = results["first"], results["same day"], results["next day"]
    assert not any(isinstance(r, Exception) for r in (first, same, later)), results
    assert (first[1], same[1], later[1]) == (True, False, True)     # made: said once, by its maker
    first, same, later = first[0], same[0], later[0]
    assert clustered == ["first", "next day"]          # the same day's was made once
    assert same.id == first.id and [d.recipient for d in same.deliveries] == RCPTS
    assert len(first.article_ids) == 3 and first.period_end == end
    assert later.period_start == end and len(later.article_ids) == 2
    assert not set(first.article_ids) & set(later.article_ids)


def test_a_run_that_lost_the_race_to_make_a_digest_does_not_say_it_made_it(store, tmp_path, caplog):
    """Two runs both saw no digest; the second then found the first's. It had refused it as
    covered by "a later digest" (its own day's), and would have logged "N articles for M
    recipients" as if it had made the digest; it now goes on with that digest, quietly."""
    cfg = config(tmp_path)
    caplog.set_level("INFO", logger="monitor")
    job(store, cfg).run(NOW)
    made = [r.getMessage() for r in caplog.records if "articles for" in r.getMessage()]
    assert made == ["digest 2025-06-03: 5 articles for 3 recipients"]
    caplog.clear()
    late = job(store, cfg)
    looks = []

    def first_look_misses(day, real=store.get_digest):
        looks.append(day)
        return None if len(looks) == 1 else real(day)

    late.store.get_digest = first_look_misses
    outcome = late.run(NOW)   # its first look missed the digest the other run made meanwhile
    assert outcome.sent == [] and outcome.already == RCPTS   # that one, not "a later digest covers"
    assert not [r for r in caplog.records if "articles for" in r.getMessage()]


@pytest.mark.parametrize(("checks", "tries"), [
    ((2, 15, 60, 180, 24 * 60 - 5, 24 * 60 + 30), [1, 1, 1, 1, 1, 0]),
    ((2, 15, 60, 180, 24 * 60 + 1), [1, 1, 1, 1, 0]),     # due, but a minute past the 24 h
])
def test_the_service_retries_a_digest_past_midnight_and_gives_up_after_24_hours(tmp_path, checks,
                                                                                 tries):
    """Sent at 23:50 local time into an SMTP outage: the service's retry job keeps trying
    after midnight (the digest is then yesterday's) and stops 24 hours after the period."""
    from monitor.service import Service

    class Clock:
        def __init__(self, now):
            self.now = now

        def __call__(self):
            return self.now

    server = SmtpServer().start()
    server.recorder.faults = {"ana@example.org": ["421 4.3.2 try later"] * 2,
                              "ben@example.org": ["421 4.3.2 try later"] * 1000}
    fill(f"sqlite:///{tmp_path / 'm.db'}").close()
    path = tmp_path / "monitor.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
                    f'[classifier]\nmodel = "{tmp_path / "no-model.skops"}"\n'
                    '[digest]\nrecipients = ["ana@example.org", "ben@example.org"]\n'
                    'timezone = "Europe/Berlin"\nsend_at = "23:50"\n'
                    f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
                    'max_attempts = 1\nretry_base_seconds = 60\ntimeout_seconds = 5\n', encoding="utf-8")
    clock = Clock(T0.replace(hour=21, minute=50))              # 23:50 in Berlin
    service = Service(str(path), clock=clock)
    attempts = []
    try:
        service.digest()
        for minutes in checks:
            clock.now = T0.replace(hour=21, minute=50) + timedelta(minutes=minutes)
            before = len(server.recorder.faults["ben@example.org"])
            service._retry_deliveries()
            attempts.append(before - len(server.recorder.faults["ben@example.org"]))
        record = service.store.get_digest("2025-06-03")
    finally:
        service.store.close()
        server.stop()
    assert len(server.recorder.received_by("ana@example.org")) == 1       # third try, after midnight
    assert attempts == tries                       # retried within 24 h of the period, not after
    ben = [d for d in record.deliveries if d.recipient == "ben@example.org"][0]
    assert ben.status == "retry" and ben.attempts == 1 + sum(tries) and "421" in ben.last_error


def test_no_section_eats_the_digest_and_both_topic_stories_come_first():
    """44 export-control stories, 123 critical-minerals ones and 2 about both, 40 slots:
    both-topic stories first, the rest shared (19 + 19), each overflow line names its
    command."""
    from datetime import timezone
    from zoneinfo import ZoneInfo

    from monitor.digest import share_out
    from monitor.types import DigestArticle

    def article(i, topics, score):
        return DigestArticle(id=i, title=f"Story {i}", text=f"Text {i}.", url=f"https://n.example/{i}",
                             source=f"Feed {i % 7}", published=T0 + timedelta(minutes=i),
                             first_seen=T0 + timedelta(minutes=i), language="en", topics=topics,
                             score=score, reasons=(), countries=(), minerals=())

    articles = ([article(i, ("export-controls",), 0.99) for i in range(44)]
                + [article(100 + i, ("critical-minerals",), 0.6) for i in range(123)]
                + [article(900, ("critical-minerals", "export-controls"), 0.5),
                   article(901, ("critical-minerals", "export-controls"), 0.4)])
    digest = build_digest(articles, {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("Europe/Berlin"),
                          max_items=40)
    shown = {s.topic: (len(s.stories), s.more) for s in digest.sections}
    assert [s.topic for s in digest.sections] == ["both", "export-controls", "critical-minerals", "low"]
    assert shown == {"both": (2, 0), "export-controls": (19, 25), "critical-minerals": (19, 104),
                     "low": (0, 0)}
    html, text = render(digest, "subject")
    assert ("and 104 more critical minerals stories:\n    monitor review list --topic critical-minerals "
            f"--since {T0:%Y-%m-%dT%H:%M}\n") in text
    assert text.index("EXPORT CONTROLS AND CRITICAL MINERALS") < text.index("== EXPORT CONTROLS ==")
    assert share_out([0, 3, 100], 40) == [0, 3, 37] and share_out([5, 5, 5], 4) == [2, 1, 1]
    assert share_out([0, 0, 0], 40) == [0, 0, 0] and share_out([9, 9], 0) == [0, 0]
    assert digest.sections[0].stories[0].lead.published.tzinfo is timezone.utc


def test_the_digest_command_is_honest_about_files_dates_and_paths(tmp_path):
    """No [smtp]: it says the copy was written, and where; a future --date and an
    unwritable --preview path are clear errors (exit 2), no traceback."""
    import subprocess
    import sys

    fill(f"sqlite:///{tmp_path / 'm.db'}").close()
    path = tmp_path / "monitor.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
                    f'[digest]\nrecipients = ["ana@example.org"]\ntimezone = "Europe/Berlin"\n'
                    f'outbox_dir = "{tmp_path / "outbox"}"\n', encoding="utf-8")
    root = Path(__file__).resolve().parent.parent

    def monitor(*args):
        return subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "digest", *args],
                              cwd=root, capture_output=True, text=True, timeout=120)

    sent = monitor("--date", "2025-06-03")
    [eml] = (tmp_path / "outbox").glob("*.eml")
    assert sent.returncode == 0, sent.stderr
    assert f"not mailed (no [smtp] section): written to {eml} for ana@example.org" in sent.stdout
    assert "; sent ana" not in sent.stdout
    future = monitor("--date", "2999-01-01")
    assert future.returncode == 2 and "--date 2999-01-01 is in the future" in future.stderr
    missing = monitor("--preview", str(tmp_path / "no-such-folder" / "out.html"))
    assert missing.returncode == 2 and "--preview: cannot write" in missing.stderr
    assert "Traceback" not in future.stderr + missing.stderr


def test_why_is_said_in_an_analysts_words_and_each_story_shows_its_id_and_language(store, tmp_path):
    from monitor.digest import Story, why
    from monitor.types import DigestArticle

    cfg = config(tmp_path)
    _, html, text = job(store, cfg).render(_record(store, cfg), NOW)
    assert "Why: export control… · model 0.97" in text           # the lead of the gallium story
    assert "classifier critical-minerals" not in text and "export control*" not in text
    ids = {a.id for a in store.digest_articles(store.get_digest("2025-06-03"))}
    shown = set(map(int, re.findall(r"\| #(\d+)\n", text)))
    assert len(shown) == 4 and shown <= ids                 # one id per story, a real article
    assert shown == set(map(int, re.findall(r" · #(\d+)</p>", html)))
    body = html.split("<body", 1)[1]
    assert body.count('lang="en"') == 8 and text.count(" | EN") == 4   # title and snippet

    def story(reasons, title="Seltene Erden: China verschärft Exportkontrollen"):
        lead = DigestArticle(id=1, title=title, text="", url=None, source="s", published=T0,
                             first_seen=T0, language="de", topics=("critical-minerals",), score=0.9,
                             reasons=reasons, countries=(), minerals=())
        return Story(lead, (lead,), 1.0)

    reasons = ("classifier critical-minerals 0.91", "classifier export-controls 0.12",
               'keyword "seltene* Erden"', 'keyword "Exportkontroll*"', 'keyword "seltene* Erden"')
    glossed = "seltene Erden (rare earths), Exportkontroll… (export control) in the title · model 0.91"
    assert why(story(reasons), "critical-minerals") == glossed      # a German article: glossed
    assert why(story(reasons), "both") == glossed
    assert why(story(("classifier unavailable", 'keyword "lithium"')), "critical-minerals") == \
        "lithium · keywords only (model unavailable)"
    assert why(story(("classifier critical-minerals 0.88", 'from story "Rare earth quota"')),
               "critical-minerals") == "model 0.88 · from the passage “Rare earth quota”"


def screenshot_day_digest():
    """The digest of docs/screenshot.py's realistic day (the README's picture)."""
    import importlib.util
    from zoneinfo import ZoneInfo

    path = Path(__file__).resolve().parents[1] / "docs" / "screenshot.py"
    spec = importlib.util.spec_from_file_location("docs_screenshot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    day, clusters = module.articles()
    return build_digest(day, clusters, digest_date="2026-03-10", period_start=module.START,
                        period_end=module.START + timedelta(days=1), zone=ZoneInfo("Europe/Berlin"),
                        max_items=40)


def test_the_readme_screenshot_day_renders_with_the_shipped_code():
    """docs/screenshot.py (the README's picture) builds its day with the code the service runs."""
    digest = screenshot_day_digest()
    assert [(s.topic, len(s.stories)) for s in digest.sections] == [
        ("both", 3), ("export-controls", 1), ("critical-minerals", 5), ("low", 0)]
    assert digest.sections[0].stories[0].sources == ("Metals Wire", "Trade Desk", "Rohstoff-Ticker")
    html, text = render(digest, "subject")
    assert "<script" not in html.split("<body", 1)[1] and "#4201" in text


def test_keyword_flags_the_model_disagrees_with_go_to_a_short_low_confidence_block():
    from zoneinfo import ZoneInfo

    from monitor.types import DigestArticle

    def article(i, score, reasons):
        return DigestArticle(id=i, title=f"Story {i}", text="", url=None, source="s",
                             published=T0 + timedelta(minutes=i), first_seen=T0, language="en",
                             topics=("export-controls",), score=score, reasons=reasons,
                             countries=(), minerals=())

    grain = ("classifier critical-minerals 0.01", "classifier export-controls 0.02",
             'keyword "export ban*"')
    articles = ([article(i, 0.9, ("classifier export-controls 0.90",)) for i in range(3)]
                + [article(10 + i, 0.02, grain) for i in range(7)]
                + [article(30, 1.0, ("classifier unavailable", 'keyword "export ban*"'))])
    digest = build_digest(articles, {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    shown = [(s.topic, len(s.stories), s.more) for s in digest.sections if s.stories or s.more]
    assert shown == [("export-controls", 4, 0), ("low", 5, 2)]      # last, at most five
    assert all(st.lead.score == 0.02 for st in digest.sections[-1].stories)
    html, text = render(digest, "subject")
    assert text.index("LOW CONFIDENCE") > text.index("== EXPORT CONTROLS ==")
    tight = build_digest(articles, {}, digest_date="2025-06-03", period_start=T0,
                         period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=4)
    assert [(s.topic, len(s.stories), s.more) for s in tight.sections if s.stories or s.more] == [
        ("export-controls", 4, 0), ("low", 0, 7)]


def test_the_first_line_says_what_the_period_covered(store, tmp_path):
    cfg = config(tmp_path)
    _, html, text = job(store, cfg).render(_record(store, cfg), NOW)
    assert "Coverage: 4 feeds | 5 articles read | 5 flagged" in text
    assert "Coverage: 4 feeds · 5 articles read · 5 flagged" in html


def test_today_is_set_against_the_average_of_the_past_weeks_digests(store, tmp_path):
    from monitor.digest import Coverage

    cfg = config(tmp_path)
    _record(store, cfg)
    digests, topics, minerals = store.earlier_counts("2025-05-28", "2025-06-03")
    assert (digests, topics) == (1, {"critical-minerals": 4.0, "export-controls": 3.0})
    assert minerals == {"gallium": 1.0, "germanium": 1.0, "lithium": 1.0, "nickel": 1.0,
                        "rare-earths": 1.0}
    assert store.earlier_counts("2025-06-04", "2025-06-10") == (0, {}, {})
    articles = store.digest_candidates(T0 - timedelta(days=30), NOW) or store.digest_articles(
        store.get_digest("2025-06-03"))
    coverage = Coverage(feeds=4, failing=1, articles=120, earlier_digests=2,
                        topic_average={"export-controls": 1.5}, mineral_average={"gallium": 0.5})
    digest = build_digest(articles, {}, digest_date="2025-06-04", period_start=T0,
                          period_end=NOW, zone=cfg.digest.zone(), max_items=40, coverage=coverage)
    html, text = render(digest, "subject")
    assert "Coverage: 4 feeds, 1 failing | 120 articles read | 5 flagged" in text
    assert ("Today against the daily average of the 2 earlier digests of the past 7 days:\n"
            "  Export controls 4 (avg 1.5), Critical minerals 5 (avg 0.0)") in text
    assert "gallium (2; avg 0.5)" in text and "avg 1.5" in html     # ga-1, ga-2 not clustered here


def test_a_busy_day_opens_with_its_top_stories_both_topics_first():
    from zoneinfo import ZoneInfo

    from monitor.digest import top_stories
    from monitor.types import DigestArticle

    def article(i, topics, score):
        return DigestArticle(id=i, title=f"Story {i}", text="", url=None, source="s",
                             published=T0, first_seen=T0, language="de", topics=topics,
                             score=score, reasons=(), countries=(), minerals=())

    ec, cm = ("export-controls",), ("critical-minerals",)
    day = ([article(i, ec, 0.9 + i / 100) for i in range(5)] + [article(10 + i, cm, 0.8) for i in range(5)]
           + [article(20, ec + cm, 0.6),                                  # 21: low confidence
              DigestArticle(**{**article(21, cm, 0.1).__dict__, "reasons": ('keyword "lithium"',)})])
    digest = build_digest(day, {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    assert [s.lead.id for s in digest.top] == [20, 4, 3, 2, 1]
    html, text = render(digest, "subject")
    assert "TOP STORIES\n  1. Story 20 (#20)\n  2. Story 4 (#4)" in text
    assert 'href="#s20"' in html and 'id="s20"' in html
    assert top_stories(digest.sections[:1]) == ()                    # one story: no block
    small = build_digest(day[:6], {}, digest_date="2025-06-03", period_start=T0,
                         period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    assert len(small.top) == 3
    assert subject("{counts}", digest) == (                     # as the sections count them
        "6 on export controls, 6 on critical minerals, 1 of low confidence")
    assert "12 stories from 12 flagged articles" in text
    one = build_digest(day[:1], {}, digest_date="2025-06-03", period_start=T0,
                       period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    assert "1 story from 1 flagged article |" in render(one, "subject")[1]
    long = DigestArticle(**{**day[0].__dict__, "title": "Export controls " * 20, "text": "word " * 100})
    wrapped = render(build_digest([long], {}, digest_date="2025-06-03", period_start=T0,
                                  period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"),
                                  max_items=40), "subject")[1]
    assert max(len(line) for line in wrapped.splitlines() if "http" not in line) <= 80
    html = render(build_digest([long], {}, digest_date="2025-06-03", period_start=T0,
                               period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"),
                               max_items=40), "subject")[0]
    assert ("Export controls " * 20).strip() not in html and "Export controls Export" in html  # cut at 300
    empty = build_digest([], {}, digest_date="2025-06-03", period_start=T0,
                         period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    assert subject("{lead}", empty) == "Critical minerals & export controls 2025-06-03"


def test_a_long_lead_title_is_cut_in_the_subject_at_a_word_with_an_ellipsis():
    """The subject's {lead} was cut at 80 characters mid-word ("… citing national securit"):
    a reader could not tell the title goes on."""
    from zoneinfo import ZoneInfo

    from monitor.types import DigestArticle

    title = ("China tightens export controls on gallium and germanium, citing national security "
             "concerns")
    lead = DigestArticle(id=1, title=title, text="", url=None, source="s", published=T0, first_seen=T0,
                         language="en", topics=("export-controls",), score=0.9, reasons=(),
                         countries=(), minerals=())
    digest = build_digest([lead], {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    line = subject("{lead}", digest)
    assert line == "China tightens export controls on gallium and germanium, citing national…"
    assert len(line) <= 80
    short = build_digest([DigestArticle(**{**lead.__dict__, "title": "Gallium curbs"})], {},
                         digest_date="2025-06-03", period_start=T0, period_end=T0 + timedelta(days=1),
                         zone=ZoneInfo("UTC"), max_items=40)
    assert subject("{lead}", short) == "Gallium curbs"


def test_a_bulletin_shows_the_passage_that_was_flagged_and_terms_get_english():
    from monitor.digest import Story, passage_snippet, why
    from monitor.types import DigestArticle

    text = ("国务院总理主持召开常务会议，研究部署稳就业工作，会议要求各地加大支持力度。\n"
            "商务部发布公告\n商务部宣布对锑相关物项实施出口管制，自公告之日起执行。相关企业须申请许可。")
    lead = DigestArticle(id=7, title="新闻联播", text=text, url=None, source="s", published=T0,
                         first_seen=T0, language="zh", topics=("export-controls",), score=0.9,
                         reasons=("classifier export-controls 0.90", 'from story "商务部发布公告"',
                                  'keyword "出口管制"', 'keyword "锑"'), countries=(), minerals=())
    assert passage_snippet(lead).startswith("商务部发布公告")
    assert why(Story(lead, (lead,), 1.0), "export-controls") == (
        "出口管制 (export control), 锑 (antimony) · model 0.90 · from the passage “商务部发布公告”")
    plain = DigestArticle(**{**lead.__dict__, "reasons": ('keyword "出口管制"',), "language": "en"})
    assert passage_snippet(plain).startswith("国务院总理") and why(Story(plain, (plain,), 1.0),
                                                                   "export-controls") == "出口管制"
    polish = DigestArticle(**{**lead.__dict__, "language": "pl", "reasons": (
        'keyword "kontrol* eksport*"', 'keyword "surowc* krytyczn*"')})
    assert why(Story(polish, (polish,), 1.0), "export-controls") == (     # the longest gloss
        "kontrol eksport… (export control), surowc krytyczn… (critical raw materials)")


def test_the_country_table_is_countries_by_export_controls_and_the_days_top_minerals():
    digest = screenshot_day_digest()
    assert digest.table_columns == ("export-controls", "gallium", "antimony", "cobalt", "copper")
    assert len(digest.table) == 8 and digest.table[0] == ("CN", {"export-controls": 3, "gallium": 1,
                                                                 "antimony": 1})
    html, text = render(digest, "subject")
    assert "  China                    Export controls: 3, gallium: 1, antimony: 1" in text
    assert re.search(r'<th scope="col"[^>]*>gallium</th>', html)
    assert "DR Congo" in text and "DR Congo" in html and "Kinshasa" not in html   # press names


def test_every_feed_the_header_counts_as_failing_is_named_in_the_footer(store, tmp_path):
    from sqlalchemy import text as sql

    with store.engine.begin() as conn:      # one failed poll, three, none: failing, broken, ok
        conn.execute(sql("UPDATE feed SET error_count = 1, last_error = 'HTTP 500' "
                         "WHERE name = 'Trade Wire'"))
        conn.execute(sql("UPDATE feed SET error_count = 3, last_error = 'HTTP 404' "
                         "WHERE name = 'Asia Wire'"))
    html = job(store, config(tmp_path)).preview(NOW)
    assert "2 failing" in html
    footer = html[html.index("Feeds needing attention"):]
    assert "Trade Wire (failing: HTTP 500)" in footer and "Asia Wire (broken: HTTP 404)" in footer
    assert "Metals Desk" not in footer


def test_an_undated_entry_is_not_taken_for_the_newest_and_says_so():
    from zoneinfo import ZoneInfo

    from monitor.types import DigestArticle

    def article(i, published, seen):
        return DigestArticle(id=i, title=f"Story {i}", text=f"Text {i}.", url=None, source="s",
                             published=published, first_seen=seen, language="en",
                             topics=("export-controls",), score=0.9, reasons=(), countries=(), minerals=())

    dated = article(1, T0 + timedelta(hours=20), T0 + timedelta(hours=21))
    undated = article(2, T0 + timedelta(hours=23), T0 + timedelta(hours=23))    # seen last
    oldest = article(3, T0, T0 + timedelta(hours=1))
    digest = build_digest([dated, undated, oldest], {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("Europe/Berlin"), max_items=20)
    [section] = [s for s in digest.sections if s.stories]
    assert [s.lead.id for s in section.stories] == [1, 2, 3]
    html, text = render(digest, "subject")
    assert "s | undated, seen 04 Jun 05:00 | EN | #2" in text and "s | 04 Jun 02:00 | EN | #1" in text


def test_a_first_digest_on_the_day_clocks_go_back_covers_one_local_day(tmp_path, store_url):
    from datetime import datetime, timezone

    store = open_store(store_url)
    try:
        send = datetime(2026, 10, 25, 6, 0, tzinfo=timezone.utc)        # 07:00 in Berlin (CET)
        html = job(store, config(tmp_path, send_at="07:00")).preview(send + timedelta(minutes=5),
                                                                     day="2026-10-25")
    finally:
        store.close()
    assert "Sat 24 Oct 2026 07:05 – Sun 25 Oct 2026 07:05 (Europe/Berlin)" in html   # 25 hours


def test_the_general_term_is_no_column_of_the_country_table():
    """"critical minerals" is the topic's name too: as a column it counted every story."""
    from zoneinfo import ZoneInfo

    from monitor.types import DigestArticle

    def article(i, minerals):
        return DigestArticle(id=i, title=f"Story {i}", text=f"Text {i}.", url=None, source="s",
                             published=T0, first_seen=T0, language="en", topics=("critical-minerals",),
                             score=0.9, reasons=(), countries=("CL",), minerals=minerals)

    articles = [article(i, ("critical-minerals",)) for i in range(5)] + [article(9, ("lithium",))]
    digest = build_digest(articles, {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("Europe/Berlin"), max_items=20)
    assert digest.table_columns == ("export-controls", "lithium")
    assert digest.table == (("CL", {"lithium": 1}),)
    gb = [DigestArticle(id=20 + i, title=f"UK story {i}", text="t", url=None, source="s", published=T0,
                        first_seen=T0, language="en", topics=("critical-minerals",), score=0.9,
                        reasons=(), countries=("GB",), minerals=("critical-minerals",)) for i in range(3)]
    digest = build_digest(articles + gb, {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("Europe/Berlin"), max_items=20)
    assert digest.table == (("CL", {"lithium": 1}),)      # GB's stories fill no column: no empty row


def test_with_review_url_each_recipient_gets_links_signed_for_them(store, tmp_path, monkeypatch, caplog):
    from monitor.tokens import read_review_token

    key = "digest-test-key-0123456789"
    monkeypatch.setenv("MONITOR_REVIEW_KEY", key)
    server = SmtpServer().start()
    try:
        cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none"},
                     review_url="https://monitor.example/", review_link_days=10)
        assert job(store, cfg).run(NOW).sent == RCPTS
        messages = {r: server.recorder.received_by(r)[0] for r in RCPTS}
    finally:
        server.stop()
    links = {}
    for recipient, message in messages.items():
        text, html = parts(message)
        found = re.findall(r"https://monitor\.example/items/(\d+)\?t=([\w.-]+)&v=(relevant|irrelevant)", text)
        assert len(found) == 2 * 4 and re.findall(r'href="https://monitor\.example/items/\d+\?t=', html)
        for article_id, token, _ in found:
            grant = read_review_token(key.encode(), token, NOW)
            assert (grant.recipient, grant.article_id) == (recipient, int(article_id))
            # ten days from the moment the copy is made (the run's start plus the time it
            # has taken: over a second on a busy machine)
            assert timedelta(0) <= grant.expires - (NOW + timedelta(days=10)) < timedelta(minutes=1)
        links[recipient] = {t for _, t, _ in found}
        assert "one click records your verdict" in " ".join(text.split())
    assert links["ana@example.org"].isdisjoint(links["ben@example.org"])

    monkeypatch.delenv("MONITOR_REVIEW_KEY")                      # the key missing: ids, a warning
    cfg = config(tmp_path / "again", review_url="https://monitor.example")
    (tmp_path / "again").mkdir()
    fresh = fill(f"sqlite:///{tmp_path / 'again' / 'm.db'}")
    try:
        with caplog.at_level("WARNING", logger="monitor.digest"):
            job(fresh, cfg).run(NOW)
    finally:
        fresh.close()
    eml = next((tmp_path / "again" / "outbox").glob("*.eml")).read_text()
    assert "/items/" not in eml and "monitor review mark ID" in eml
    assert sum("MONITOR_REVIEW_KEY" in r.getMessage() for r in caplog.records) == 1


def test_the_plain_text_part_shows_where_a_long_title_was_cut():
    from monitor.digest import one_line

    title = "China's rare-earth magnet export licences " * 10
    cut = one_line(title, 160)
    assert len(cut) <= 160 and cut.endswith("…") and title.startswith(cut[:-1] + " ")
    assert one_line("short\r\ntitle", 160) == "short title"


# --- the ledger's retry times, resend and lease, on the run's own clock (time.monotonic fixed)

def _frozen_job(store, cfg, monkeypatch, mailer=None, sleeps=None):
    import monitor.delivery as delivery

    monkeypatch.setattr(delivery.time, "monotonic", lambda: 0.0)   # the run's clock stays at now
    return DigestJob(store, cfg, mailer, config_file="x",
                     sleep=(sleeps.append if sleeps is not None else lambda s: None))


def test_the_first_try_is_at_once_and_later_rounds_wait_the_base_then_double(store, tmp_path,
                                                                            monkeypatch):
    down = SmtpServer()                                  # not started: connection refused
    cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": down.port, "security": "none",
                                 "max_attempts": 3, "retry_base_seconds": 10},
                 recipients=["ana@example.org"])
    sleeps: list[float] = []
    outcome = _frozen_job(store, cfg, monkeypatch, sleeps=sleeps).run(NOW)
    assert outcome.retry == ["ana@example.org"]
    assert sleeps == [10, 20]


def test_a_temporary_failure_is_tried_again_after_a_minute_at_least_and_an_hour_at_most(
        store, tmp_path, monkeypatch):
    down = SmtpServer()                                  # not started: connection refused

    def waits(base, hours):
        cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": down.port, "security": "none",
                                     "max_attempts": 1, "retry_base_seconds": base},
                     recipients=["ana@example.org"])
        found = []
        for hour in hours:                               # the service's way: one try a run
            now = NOW + timedelta(hours=hour)
            _frozen_job(store, cfg, monkeypatch).run(now, day="2025-06-03", wait_for_retries=False)
            [d] = store.get_digest("2025-06-03").deliveries
            assert d.status == "retry"
            found.append((d.attempts, (d.next_attempt_at - now).total_seconds()))
        return found

    assert waits(0, [0]) == [(1, 60)]                    # no base: a minute, not at once
    assert waits(1000, [1, 2, 3]) == [(2, 2000), (3, 3600), (4, 3600)]  # doubling, capped at 1 h


def test_a_resend_sends_again_the_copies_that_may_not_have_arrived(store, tmp_path):
    cfg = config(tmp_path)
    record = _record(store, cfg)
    store.set_delivery(record, "ben@example.org", status="unknown", last_error="no reply came back")
    store.set_delivery(record, "cy@example.org", status="failed", last_error="550")
    again = job(store, cfg).run(NOW, resend=True)
    assert again.sent == ["ben@example.org", "cy@example.org"]
    assert again.already == ["ana@example.org"]
    assert len(list((tmp_path / "outbox").glob("*ana@example.org*.eml"))) == 1
    deliveries = store.get_digest("2025-06-03").deliveries
    assert all(d.status == "sent" and d.sent_at is not None for d in deliveries)  # the ledger says when


def test_a_delivered_copy_the_store_never_records_is_an_error_said_loudly(store, tmp_path,
                                                                         monkeypatch, caplog):
    from monitor.exceptions import StorageError

    real = store.set_delivery

    def locked(record, recipient, **values):
        if values.get("status") == "sent":
            raise StorageError("the store is locked by another writer")
        return real(record, recipient, **values)

    monkeypatch.setattr(store, "set_delivery", locked)
    with pytest.raises(StorageError):
        job(store, config(tmp_path, recipients=["ana@example.org"])).run(NOW)
    assert "DELIVERED (the mail server accepted it)" in caplog.text
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1          # sent once, not again


def test_a_claim_lasts_a_few_times_the_smtp_timeout(store, tmp_path, monkeypatch):
    """A sender counts as gone only after connect, greeting, envelope and data could each
    have used the whole SMTP timeout: its claim outlasts four timeouts."""
    server = SmtpServer().start()
    leases = []

    class Watching(SmtpMailer):
        def send(self, message, recipient):
            [d] = store.get_digest("2025-06-03").deliveries
            leases.append((d.next_attempt_at - NOW).total_seconds())
            return super().send(message, recipient)

    try:
        cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none",
                                     "timeout_seconds": 60}, recipients=["ana@example.org"])
        mailer = Watching.from_config(cfg.smtp)
        assert _frozen_job(store, cfg, monkeypatch, mailer).run(NOW).sent == ["ana@example.org"]
    finally:
        server.stop()
    assert len(leases) == 1 and leases[0] >= 4 * 60, leases


# --- the ledger's selection: the period, flagged only, each article in one digest

def _add(store, key, minutes, flagged=True, url="https://metals.example/x", published="seen",
         title=None):
    """One more article of the feed "Metals Desk", first seen ``minutes`` after T0."""
    from sqlalchemy import text

    from digest_data import verdict
    from monitor.types import ArticleWrite, FeedOutcome, ParsedArticle, Verdict
    from monitor.feedstate import feed_outcome
    from storeview import due_feeds

    when = T0 + timedelta(minutes=minutes)
    [feed] = [f for f in due_feeds(store, T0 + timedelta(days=30), include_all=True)
              if f.name == "Metals Desk"]
    parsed = ParsedArticle(key=key, guid=key, url=url and f"{url}/{key}",
                           title=title or f"Cobalt story {key}",
                           text=f"Cobalt export quotas, part {key}.",
                           published=when if published == "seen" else published, language=None,
                           content_hash=key)
    judged = (verdict(("critical-minerals",), 0.9) if flagged else
              Verdict(flagged=False, topics=(), score=0.1, reasons=(), model_version="test"))
    outcome = FeedOutcome(polled_at=when, next_check_at=when + timedelta(hours=1), status=200)
    store.save_poll(feed.id, [ArticleWrite(parsed, "en", judged)], feed_outcome(feed, outcome, new=True))
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT id FROM article WHERE guid = :k"), {"k": key}).scalar_one()


def test_a_digest_holds_the_flagged_articles_of_its_period_each_in_one_digest_only(store, tmp_path):
    cfg = config(tmp_path)
    plain = _add(store, "plain", 100, flagged=False)
    _add(store, "dated", 120, title="Cobalt story plain-ish")
    undated = _add(store, "undated", 150, url=None, published=None)   # seen in the period's last hour
    first = _record(store, cfg)
    assert plain not in first.article_ids and undated in first.article_ids
    # after the first digest, without a link: the title and time of one it carried, another
    # text (not a copy: only the same text, or the same link, title and time, make one)
    no_link = _add(store, "no-link", 4 * 60, url=None, title="Cobalt story plain-ish",
                   published=T0 + timedelta(minutes=120))
    job(store, cfg).run(NOW + timedelta(days=1))
    second = store.get_digest("2025-06-04")
    assert second is not None and second.article_ids == (no_link,)    # a story without a link too
    assert not set(first.article_ids) & set(second.article_ids)


def test_each_digests_period_starts_where_the_last_one_ended(store, tmp_path):
    cfg = config(tmp_path)
    first = _record(store, cfg)
    late = _add(store, "late", 3 * 60 + 12 * 60)               # half a day after the first digest
    job(store, cfg).run(NOW + timedelta(days=2))               # the service was down a day
    second = store.get_digest("2025-06-05")
    job(store, cfg).run(NOW + timedelta(days=3))
    third = store.get_digest("2025-06-06")
    assert second.period_start == first.period_end and late in second.article_ids
    assert third.period_start == second.period_end


def test_a_digest_with_articles_is_mailed_whatever_send_when_empty_says(store, tmp_path):
    cfg = config(tmp_path, send_when_empty=False)
    late = job(store, cfg).run(NOW + timedelta(days=1), day="2025-06-03")    # a day late
    assert late.items > 0 and late.sent == RCPTS


def test_a_recipient_written_in_other_case_is_the_same_mailbox_mailed_once(store, tmp_path):
    job(store, config(tmp_path, recipients=["Ana@Example.org", "ben@example.org"])).run(NOW)
    again = job(store, config(tmp_path, recipients=["ana@example.org", "BEN@example.org"])).run(NOW)
    assert again.sent == [] and len(store.get_digest("2025-06-03").deliveries) == 2
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_each_digests_ledger_is_its_own(store, tmp_path):
    cfg = config(tmp_path)
    first = _record(store, cfg)
    store.set_delivery(first, "ben@example.org", status="retry", next_attempt_at=NOW)
    job(store, cfg).run(NOW + timedelta(days=1), wait_for_retries=False)   # sends 2025-06-04
    assert {d.status for d in store.get_digest("2025-06-04").deliveries} == {"sent"}
    [ben] = [d for d in store.get_digest("2025-06-03").deliveries if d.recipient == "ben@example.org"]
    assert ben.status == "retry"                        # still owed, not marked by the next day's


def test_a_story_stored_days_ago_and_republished_flagged_in_the_period_is_in_the_digest(store,
                                                                                       tmp_path):
    from sqlalchemy import text

    old = _add(store, "update", -3 * 24 * 60, flagged=False)          # first seen three days ago
    again = _add(store, "update", 100, title="Cobalt story update: quotas cut")   # changed, flagged
    with store.engine.connect() as conn:
        seen = conn.execute(text("SELECT first_seen_at FROM article WHERE id = :i"), {"i": old}).scalar()
    assert again == old and str(seen).startswith("2025-05-31")        # the same row, seen before
    assert old in _record(store, config(tmp_path)).article_ids


# --- what the exploratory tests of 2026-12-07 found ---------------------------------------

def _one(i, topics, score, reasons=(), title=None, text=""):
    from monitor.types import DigestArticle

    return DigestArticle(id=i, title=title or f"Story {i}", text=text, url=None, source="s",
                         published=T0, first_seen=T0, language="en", topics=topics,
                         score=score, reasons=tuple(reasons), countries=(), minerals=())


def _built(articles, clusters=None):
    from zoneinfo import ZoneInfo

    return build_digest(articles, clusters or {}, digest_date="2025-06-03", period_start=T0,
                        period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)


def test_a_story_no_longer_flagged_is_left_out_of_a_digest_built_again():
    """A resend (or a preview of the day, or a recipient added later) builds the digest
    with each article's current verdict: an article a mute phrase and `monitor reclassify`
    unflagged since was filed under critical minerals with "model 0.00", and the subject's
    counts no longer matched the sections."""
    unflagged = _one(8, (), 0.0, ['keyword "entity list"', "classifier export-controls 0.99",
                                  'muted by "entity list"'], title="US adds Chinese firms to entity list")
    kept = _one(9, ("critical-minerals",), 0.9, ["classifier critical-minerals 0.90"])
    digest = _built([unflagged, kept])
    assert [(s.topic, [st.lead.id for st in s.stories]) for s in digest.sections if s.stories] == [
        ("critical-minerals", [9])]
    assert (digest.total_stories, digest.total_articles) == (1, 1)
    assert subject("{counts}", digest) == "1 on critical minerals"


def test_only_a_keywords_flag_is_low_confidence():
    """The low-confidence block is for keyword flags the model disagrees with; a model's own
    flag under a low `classifier.threshold` (0.05 here) belongs to its topic's section."""
    by_model = _one(1, ("critical-minerals",), 0.17, ["classifier critical-minerals 0.17"])
    by_keyword = _one(2, ("critical-minerals",), 0.1, ['keyword "lithium"',
                                                       "classifier critical-minerals 0.10"])
    digest = _built([by_model, by_keyword])
    sections = {s.topic: [st.lead.id for st in s.stories] for s in digest.sections}
    assert sections["critical-minerals"] == [1] and sections["low"] == [2]


def test_the_fullest_of_copies_that_score_alike_leads_the_story():
    """Copies whose scores differ in the eighth decimal: the fullest leads (a trimmed copy
    gave the story a snippet cut mid-word); a copy the model scores clearly higher still does."""
    full = "China said licences will be required for every shipment of gallium. " * 3
    copies = [_one(1, ("export-controls",), 0.9999999826, text=full),
              _one(2, ("export-controls",), 0.9999999701, text=full + "More."),
              _one(3, ("export-controls",), 0.9999999952, text=full[:150])]
    [story] = _built(copies, {1: 1, 2: 1, 3: 1}).sections[1].stories
    assert story.lead.id == 2
    stronger = [_one(4, ("export-controls",), 0.95, text=full[:150]),
                _one(5, ("export-controls",), 0.80, text=full)]
    assert _built(stronger, {4: 4, 5: 4}).sections[1].stories[0].lead.id == 4


def test_why_says_in_the_title_when_the_title_matched_through_hyphens():
    from monitor.digest import why

    article = _one(1, ("critical-minerals", "export-controls"), 1.0,
                   ['keyword "rare earth"', 'keyword "export control*"',
                    "classifier export-controls 1.00"],
                   title="Rare-earth export-control rules widen to magnets", text="New rules.")
    [story] = _built([article]).sections[0].stories
    assert why(story, "both") == "rare earth, export control… in the title · model 1.00"
    muted = _one(2, (), 0.0, ['keyword "entity list"', "classifier export-controls 1.00",
                              'muted by "entity list"'], title="US adds firms to entity list")
    from monitor.digest import Story

    assert why(Story(muted, (muted,), 0.0), "both") == (           # the review page's item
        'entity list in the title · model 1.00 · muted by "entity list"')


def test_the_and_n_more_command_lists_the_stories_the_digest_counted(tmp_path):
    """A late feed: its stories were published days before the period and first seen in
    it. The digest takes them; its "and N more" command (`--since`, which reads publication
    dates) listed none of them. It now names the digest itself (`--digest DATE`), and a
    date with no digest is a clear error."""
    from click.testing import CliRunner

    import monitor.cli
    from digest_data import ITEMS

    late = {key: T0 - timedelta(days=5) for _, key, *_ in ITEMS}
    fill(f"sqlite:///{tmp_path / 'm.db'}", published=late).close()
    cfg_file = tmp_path / "monitor.toml"
    cfg_file.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n[digest]\n'
                        f'recipients = ["ana@example.org"]\ntimezone = "Europe/Berlin"\n'
                        f'max_items = 1\noutbox_dir = "{tmp_path / "outbox"}"\n', encoding="utf-8")
    with open_store(f"sqlite:///{tmp_path / 'm.db'}") as store:
        cfg = config(tmp_path, max_items=1)
        assert job(store, cfg).run(NOW).items == 5
        eml = sorted((tmp_path / "outbox").glob("*ana@example.org*.eml"))[0]
    text = message_from_bytes(eml.read_bytes(), policy=policy.default).get_body(
        ("plain",)).get_content()
    said = re.findall(r"and (\d+) more [^:]*:\n +(monitor review list [^\n]*)\n", text)
    assert said and all("--digest 2025-06-03" in command for _, command in said)
    runner = CliRunner()
    for count, command in said:
        args = command.split()[1:]
        result = runner.invoke(monitor.cli.cli, ["--config", str(cfg_file), *args])
        assert result.exit_code == 0, result.output
        listed = int(re.search(r"^(\d+) article\(s\)", result.output, re.M).group(1))
        assert listed >= int(count) > 0, (command, result.output)
    missing = runner.invoke(monitor.cli.cli, ["--config", str(cfg_file), "review", "list",
                                              "--digest", "2025-06-09"])
    assert missing.exit_code == 2 and "no digest of that date" in missing.output
    bad = runner.invoke(monitor.cli.cli, ["--config", str(cfg_file), "review", "list",
                                          "--digest", "June 3"])
    assert bad.exit_code == 2 and "expected a date such as" in bad.output


def test_a_later_monitor_digest_sends_the_copies_earlier_runs_left(tmp_path):
    """A copy left pending by a stop (or in retry when the service was down past its day of
    retries) is sent by any later `monitor digest` run, as the README says; a plain run
    looked at today's digest only."""
    from click.testing import CliRunner

    import monitor.cli

    store = fill(f"sqlite:///{tmp_path / 'm.db'}")
    cfg_file = tmp_path / "monitor.toml"
    cfg_file.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n[digest]\n'
                        f'recipients = {json.dumps(RCPTS)}\ntimezone = "Europe/Berlin"\n'
                        f'outbox_dir = "{tmp_path / "outbox"}"\n', encoding="utf-8")
    try:
        assert job(store, config(tmp_path)).run(NOW).sent == RCPTS          # 2025-06-03
        record = store.get_digest("2025-06-03")
        store.set_delivery(record, "ben@example.org", status="pending")    # as a stop leaves it
    finally:
        store.close()
    result = CliRunner().invoke(monitor.cli.cli, ["--config", str(cfg_file), "digest"])
    assert result.exit_code == 0, result.output
    assert "digest 2025-06-03: 5 articles" in result.output and "ben@example.org" in result.output
    with open_store(f"sqlite:///{tmp_path / 'm.db'}") as again:
        assert {d.recipient: d.status for d in again.get_digest("2025-06-03").deliveries} == {
            r: "sent" for r in RCPTS}
    again = CliRunner().invoke(monitor.cli.cli, ["--config", str(cfg_file), "digest"])
    assert again.exit_code == 0 and "2025-06-03" not in again.output      # sent once


def test_an_old_story_shows_its_year_and_one_dated_ahead_is_undated_and_neither_bends_the_ranks():
    """A feed re-sent a 2019 story: shown "03 Jun 14:00" inside the period, it looked like
    yesterday's, and as the oldest it made every other story equally new. A story dated 20
    hours after the digest was made showed that time and ranked as the newest."""
    from zoneinfo import ZoneInfo

    from monitor.types import DigestArticle

    def article(i, published, seen, score=0.9):
        return DigestArticle(id=i, title=f"Gallium export licences, story {i}", text="Text.", url=None,
                             source="Wire", published=published, first_seen=seen, language="en",
                             topics=("export-controls",), score=score, reasons=(), countries=(),
                             minerals=())

    start, end = T0, T0 + timedelta(days=1)
    articles = [article(1, datetime(2019, 6, 3, 12, tzinfo=timezone.utc), start + timedelta(hours=2)),
                article(2, end + timedelta(hours=20), start + timedelta(hours=22)),
                article(3, start + timedelta(hours=1), start + timedelta(hours=2)),
                article(4, start + timedelta(hours=20), start + timedelta(hours=21))]
    digest = build_digest(articles, {}, digest_date="2025-06-04", period_start=start, period_end=end,
                          zone=ZoneInfo("Europe/Berlin"), max_items=40)
    _, text = render(digest, "subject")
    assert "| 03 Jun 2019 14:00 |" in text
    seen = (start + timedelta(hours=22)).astimezone(ZoneInfo("Europe/Berlin"))
    assert f"| undated, seen {seen:%d %b %H:%M} |" in text
    ranks = {s.lead.id: s.rank for section in digest.sections for s in section.stories}
    assert ranks[4] > ranks[3] + 0.02            # 19 hours newer still counts
    assert ranks[2] < ranks[4]                   # dated ahead: not the newest


def test_a_feed_link_with_spaces_stays_one_link_and_injects_no_line_of_its_own():
    """Feeds send links with spaces ("…/Rare Earths Report.html"): the plain text showed them
    as they were, so a mail client linked ".../Rare" alone, and a link carrying "Relevant:
    https://…" after a space read as a review link of its own; a line separator or a
    bidirectional override in a link turned the line around. Such characters are
    percent-encoded in both parts; a link's other characters are left as they are."""
    from zoneinfo import ZoneInfo

    from monitor.types import DigestArticle

    links = {1: "https://metals.example/news/Rare Earths Report.html",
             2: "https://metals.example/p?x=1 Relevant: https://evil.example/steal",
             3: "https://metals.example/a\u2028b\u202ec\"d<e>",
             4: "https://metals.example/zölle?q=%20ok&r=1"}

    def article(i, outlet):
        return DigestArticle(id=i, title=f"Gallium export licences, part {i}", text="Text.",
                             url=links[i], source=outlet, published=T0, first_seen=T0,
                             language="en", topics=("export-controls",), score=0.9,
                             reasons=("classifier export-controls 0.90",), countries=(), minerals=())

    articles = [article(i, f"Wire {i}") for i in links]
    digest = build_digest(articles, {i: 1 for i in links}, digest_date="2025-06-03",
                          period_start=T0, period_end=T0 + timedelta(days=1),
                          zone=ZoneInfo("UTC"), max_items=40)
    html, text = render(digest, "subject")
    assert "https://metals.example/news/Rare%20Earths%20Report.html" in text
    assert "https://metals.example/p?x=1%20Relevant:%20https://evil.example/steal" in text
    assert "https://metals.example/a%E2%80%A8b%E2%80%AEc%22d%3Ce%3E" in text
    assert "https://metals.example/zölle?q=%20ok&r=1" in text
    assert not re.search(r"(?m)^\s*Relevant: https://evil", text)
    assert "\u2028" not in text and "\u202e" not in text
    assert 'href="https://metals.example/news/Rare%20Earths%20Report.html"' in html


def test_every_link_of_the_html_has_its_own_colour_and_the_verdict_line_its_size():
    """The HTML declares light and dark schemes but paints the page light: a link without
    a colour of its own took the client's dark-mode one, and "relevant" / "not relevant"
    (and a second source's link) showed pale lilac on white; the verdict line, without a
    style, was also larger than the story's title."""
    from zoneinfo import ZoneInfo

    from monitor.tokens import ReviewLinks
    from monitor.types import DigestArticle

    def article(i, outlet):
        return DigestArticle(id=i, title="Gallium export licences tightened", text="Text.",
                             url=f"https://n.example/{i}", source=outlet, published=T0,
                             first_seen=T0, language="en", topics=("export-controls",), score=0.9,
                             reasons=("classifier export-controls 0.90",), countries=(), minerals=())

    digest = build_digest([article(1, "Wire"), article(2, "Desk")], {1: 1, 2: 1},
                          digest_date="2025-06-03", period_start=T0, period_end=T0 + timedelta(days=1),
                          zone=ZoneInfo("UTC"), max_items=40)
    links = ReviewLinks("https://monitor.example", b"k" * 32, "ana@example.org", NOW + timedelta(days=14))
    html, _ = render(digest, "subject", links=links)
    anchors = re.findall(r"<a [^>]*>", html)
    assert len(anchors) >= 4 and [a for a in anchors if "color:" not in a] == []
    assert re.search(r'<p class="review" style="[^"]*font-size: 1[23]px', html)


def test_the_plain_text_keeps_to_78_characters_but_for_links_and_commands():
    """The README promises the plain text wrapped at 78 characters: the country rows (95–152
    characters) and the "and N more" lines were not; and the low-confidence block's line
    read "1 more low confidence: flagged by keywords, the model disagrees story" with a
    command that listed every unreviewed article."""
    from zoneinfo import ZoneInfo

    from monitor.types import DigestArticle

    minerals = ("platinum-group-metals", "high-purity-quartz", "praseodymium", "silicon-metal")

    def article(i, topics, score, reasons=()):
        return DigestArticle(id=i, title=f"Story {i} on supply", text="Text.", url=f"https://n.example/{i}",
                             source="Wire", published=T0 + timedelta(minutes=i),
                             first_seen=T0 + timedelta(minutes=i + 1), language="en", topics=topics,
                             score=score, reasons=reasons, countries=("CN", "US", "PL"),
                             minerals=minerals)

    articles = ([article(i, ("export-controls", "critical-minerals"), 0.9) for i in range(30)]
                + [article(100 + i, ("critical-minerals",), 0.1, ('keyword "rare earth"',))
                   for i in range(12)])
    digest = build_digest(articles, {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("Europe/Berlin"),
                          max_items=10)
    _, text = render(digest, "subject")
    long = [line for line in text.splitlines() if len(line) > 78
            and "https://" not in line and not line.startswith("    monitor review list ")]
    assert long == []
    assert "China                    Export controls: 30," in text
    rows = text.split("By country:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert rows and not [r for r in rows if r.rstrip().endswith(":") or len(r) > 78]  # a count stays by its name
    assert "more low-confidence stories:\n    monitor review list --below 0.3 --since" in text


def test_bidirectional_overrides_from_a_feed_never_reach_the_digest():
    """A feed's U+202E (right-to-left override) in a title, outlet or text passed into the
    subject, the text part and the HTML meta line: a mail client showed the rest of the line
    reversed, so the id "#12" an analyst types into `monitor review mark` read "21#"."""
    from zoneinfo import ZoneInfo

    from monitor.types import DigestArticle

    spoof = "\u202e"
    story = DigestArticle(id=12, title=f"Gallium curbs{spoof} widen", text=f"Beijing{spoof} widened\u2066 curbs.",
                          url="https://news.example/a", source="wire", published=T0, first_seen=T0,
                          language="en", topics=("export-controls",), score=0.9, reasons=(), countries=("CN",),
                          minerals=("gallium",), publisher=f"Reuters{spoof}")
    digest = build_digest([story], {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    html, text = render(digest, "subject")
    line = subject("{counts} — {lead}", digest)
    for part in (html, text, line):
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", part)
    assert "Gallium curbs widen" in text and "Reuters | " in text and "#12" in text
    assert "Gallium curbs widen" in line


def test_outbox_copies_and_a_new_store_are_readable_by_the_service_user_only(tmp_path):
    """Under the usual umask 022 the store (feed URLs with their passwords and keys) and the
    outbox copies (each recipient's signed review links, a sign-in for 14 days) were readable
    by every user of the machine."""
    import stat
    import subprocess
    import sys

    old = os.umask(0o022)
    try:
        outbox = OutboxMailer(tmp_path / "outbox")
        made = Path(outbox.send(build_message(sender="monitor@example.org", recipient="ana@example.org",
                                              subject="s", html="<p>x</p>", text="x", when=NOW),
                                "ana@example.org"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    config = tmp_path / "m.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "var" / "m.db"}"\n')
    done = subprocess.run(["sh", "-c", f'umask 022 && "{sys.executable}" -m monitor --config "{config}" poll'],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    db = tmp_path / "var" / "m.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in db.parent.glob("m.db*"))
    db.chmod(0o640)                                          # an analyst shares it on purpose
    assert subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "poll"],
                          capture_output=True).returncode == 0
    assert stat.S_IMODE(db.stat().st_mode) == 0o640


def test_a_service_tick_makes_one_round_and_never_sleeps(store, tmp_path, monkeypatch):
    """The service's way (``wait_for_retries=False``): each due copy is tried once a tick; a
    copy whose retry falls due while slow sends to the others go on waits for the next
    tick, rather than the tick sleeping out a backoff on the scheduler's only thread."""
    import monitor.delivery as delivery

    elapsed = {"s": 0.0}
    monkeypatch.setattr(delivery.time, "monotonic", lambda: elapsed["s"])
    server = SmtpServer().start()

    class Slow(SmtpMailer):
        def send(self, message, recipient):
            elapsed["s"] += 120                      # each copy takes the server two minutes
            return super().send(message, recipient)

    sleeps: list[float] = []
    try:
        server.recorder.faults = {"ana@example.org": ["451 4.3.0 try later"] * 3}
        cfg = config(tmp_path, smtp={"host": "127.0.0.1", "port": server.port, "security": "none",
                                     "max_attempts": 3, "retry_base_seconds": 60})
        job_ = DigestJob(store, cfg, Slow.from_config(cfg.smtp), config_file="x",
                         sleep=sleeps.append)
        outcome = job_.run(NOW, wait_for_retries=False)
    finally:
        server.stop()
    assert sleeps == [] and outcome.retry == ["ana@example.org"]
    assert outcome.sent == ["ben@example.org", "cy@example.org"]
    [ana] = [d for d in store.get_digest("2025-06-03").deliveries if d.recipient == "ana@example.org"]
    assert ana.attempts == 1


def test_an_article_flagged_by_an_edit_after_a_late_digests_period_goes_out_with_the_next(
        store, tmp_path):
    """A digest made late (the service was down at its time) ends at its own send_at; an
    article its feed's edit flagged after that end belongs to the next digest's period."""
    old = T0 - timedelta(days=3)
    edited = _add(store, "edit", -3 * 24 * 60, flagged=False, published=old)
    assert _add(store, "edit", 10 * 60, title="Cobalt story edit: quotas cut", published=old) == edited
    cfg = config(tmp_path)
    job(store, cfg).run(NOW + timedelta(days=1), day="2025-06-03")     # a day late
    late = store.get_digest("2025-06-03")
    assert late.period_end == T0 + timedelta(hours=1)                   # 07:00 Berlin
    assert late.article_ids and edited not in late.article_ids
    job(store, cfg).run(NOW + timedelta(days=1))
    assert edited in store.get_digest("2025-06-04").article_ids


def test_the_past_weeks_average_is_per_digest_a_quiet_day_included(store, tmp_path):
    cfg = config(tmp_path)
    _record(store, cfg)
    assert job(store, cfg).run(NOW + timedelta(days=1)).items == 0    # a quiet day: a digest too
    digests, topics, minerals = store.earlier_counts("2025-05-29", "2025-06-04")
    assert (digests, topics) == (2, {"critical-minerals": 2.0, "export-controls": 1.5})
    assert minerals["gallium"] == 0.5


def test_what_no_digest_will_carry_is_judged_against_the_latest_digest(store, tmp_path):
    """``reclassify`` and ``keywords test`` name the articles that fall before the end of the
    last digest made: the latest one's end, not the first's."""
    cfg = config(tmp_path)
    carried = _record(store, cfg).article_ids[0]                    # mailed: not among them
    job(store, cfg).run(NOW + timedelta(days=1))
    second = store.get_digest("2025-06-04")
    between = _add(store, "between", 12 * 60, flagged=False)      # between the two digests
    assert store.before_last_digest([carried, between]) == (
        [between], ("2025-06-04", second.period_end))


def test_the_countries_of_every_article_are_read_however_many_a_digest_holds(store):
    """Codes are read 500 articles at a time: the 500th is the first chunk's last."""
    from sqlalchemy import select

    import monitor.storage.ledger as ledger
    from monitor.storage.tables import COUNTRY

    with store.engine.connect() as conn:
        article_id, code = conn.execute(select(COUNTRY.c.article_id, COUNTRY.c.code).limit(1)).first()
        ids = [*range(-499, 0), article_id, -1000]
        assert code in ledger._codes(conn, COUNTRY, ids)[article_id]


def test_a_long_round_up_shows_the_item_naming_its_mineral_not_its_start():
    """A numbered morning round-up flagged as a whole (no passage of its own): its first
    items are about stocks and oil; the snippet shows the item that names the tungsten it
    is filed under, not three lines of index futures."""
    from monitor.digest import passage_snippet
    from monitor.types import DigestArticle

    items = [f"{n}. Index futures moved {n} tenths of a point in early trade, dealers said."
             for n in range(1, 8)]
    items.append("8. The commerce department will ban exports of tungsten scrap from next month, "
                 "with exemptions on request.")
    items.append("9. A carmaker recalled vans over a faulty seat belt.")
    text = " ".join(items)
    lead = DigestArticle(id=3, title="Morning round-up", text=text, url=None, source="s",
                         published=T0, first_seen=T0, language="en",
                         topics=("critical-minerals",), score=0.95,
                         reasons=("classifier critical-minerals 0.95",), countries=(),
                         minerals=("tungsten",))
    assert passage_snippet(lead).startswith("… 8. The commerce department will ban exports of tungsten")
    # a text whose start names it, or that a snippet shows whole, starts at its start
    early = DigestArticle(**{**lead.__dict__, "text": items[7] + " " + " ".join(items[:7])})
    assert passage_snippet(early).startswith("8. The commerce department")
    short = DigestArticle(**{**lead.__dict__, "text": " ".join(items[5:9])})
    assert passage_snippet(short).startswith("6. Index futures")
    # no sentence starts within reach before the mention: the start, not mid-sentence
    long = DigestArticle(**{**lead.__dict__, "text": "Dealers said " + ", and ".join(
        f"index futures moved {n} tenths" for n in range(1, 30)) + " before a ban on tungsten scrap."})
    assert passage_snippet(long).startswith("Dealers said index futures")


def test_a_story_told_in_two_languages_leads_with_its_english_copy():
    """The digest is written in English: of two copies that score alike, one in Polish with
    the longer text and one in English, the English one leads (title, snippet, link)."""
    from monitor.digest import build_stories
    from monitor.types import DigestArticle

    polish = DigestArticle(id=1, title="Huta Orlen wstrzymuje eksport germanu na miesiąc",
                           text="Zakład w Płocku wstrzymał wysyłki germanu do odbiorców za granicą "
                                "do czasu uzyskania nowych licencji eksportowych.",
                           url=None, source="pl", published=T0, first_seen=T0, language="pl",
                           topics=("critical-minerals",), score=0.951, reasons=(),
                           countries=("PL",), minerals=("germanium",))
    english = DigestArticle(**{**polish.__dict__, "id": 2, "language": "en", "score": 0.948,
                               "title": "Orlen smelter halts germanium exports for a month",
                               "text": "The plant stopped cargoes abroad pending new licences."})
    (story,) = build_stories([polish, english], {1: 1, 2: 1})
    assert story.lead.id == 2
    better = DigestArticle(**{**polish.__dict__, "score": 0.99})     # a clearly better score leads
    (story,) = build_stories([better, english], {1: 1, 2: 1})
    assert story.lead.id == 1


def test_a_story_without_text_has_no_empty_snippet():
    """Many Japanese and Korean feeds give a headline only: the digest showed an empty
    snippet paragraph (HTML) and a line of two spaces (plain text) under each."""
    from zoneinfo import ZoneInfo

    from monitor.digest import render
    from monitor.types import DigestArticle

    lead = DigestArticle(id=4, title="Smelter halts germanium exports for a month", text="",
                         url="https://example.org/a", source="s", published=T0, first_seen=T0,
                         language="en", topics=("critical-minerals",), score=0.9,
                         reasons=("classifier critical-minerals 0.90",), countries=(),
                         minerals=("germanium",))
    digest = build_digest([lead], {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    html, text = render(digest, subject("{counts}", digest))
    assert not re.search(r'<p class="snippet"[^>]*>\s*</p>', html)
    assert "  https://example.org/a\n  Minerals: germanium" in text
    assert not any(line.strip() == "" and line for line in text.splitlines())


def test_the_plain_text_header_keeps_each_count_with_its_label():
    """"Export controls and critical minerals:" ended one line and its "10" began the next;
    a mineral's "(1)" stood alone likewise. A blank line parts the header from what follows."""
    from zoneinfo import ZoneInfo

    from monitor.digest import render
    from monitor.types import DigestArticle

    towns = ("Arlit", "Bayan", "Cobar", "Dalby", "Emmet", "Fargo", "Gympie", "Hobart", "Ipswich", "Jundah")
    articles = [DigestArticle(id=n + 1, title=f"{town} smelter curbs exports of germanium residue",
                              text=f"The {town} plant will need a licence for each cargo of residue.",
                              url=None, source=f"outlet {n}", published=T0 + timedelta(minutes=n),
                              first_seen=T0 + timedelta(minutes=n), language="en",
                              topics=("export-controls", "critical-minerals"), score=0.9,
                              reasons=("classifier export-controls 0.90",), countries=(),
                              minerals=("germanium", "platinum-group-metals"))
                for n, town in enumerate(towns)]
    digest = build_digest(articles, {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    text = render(digest, subject("{counts}", digest))[1]
    assert "Export controls and critical minerals: 10" in text
    assert "platinum-group metals (10)" in text, text
    assert "\n\nTOP STORIES\n" in text


def test_the_plain_text_wraps_chinese_and_japanese_within_the_line():
    """Chinese and Japanese have no spaces to break at: a paragraph of a Chinese bulletin
    stayed one line of several hundred columns in the plain-text part. Every line now fits
    78 columns, a wide character counting two; Korean breaks at its spaces, English as before."""
    import unicodedata
    from zoneinfo import ZoneInfo

    from monitor.digest import render
    from monitor.types import DigestArticle

    zh = ("商务部发布公告，决定对部分稀土相关物项实施出口管制，自公告之日起正式执行，"
          "相关出口经营者应当依法申请许可，未经许可不得出口，违者将依法追究责任。" * 3)
    lead = DigestArticle(id=5, title="商务部：对部分稀土相关物项实施出口管制" * 3, text=zh, url=None,
                         source="s", published=T0, first_seen=T0, language="zh",
                         topics=("export-controls", "critical-minerals"), score=0.97,
                         reasons=("classifier export-controls 0.97", 'keyword "出口管制"'),
                         countries=("CN",), minerals=("rare-earths",))
    digest = build_digest([lead], {}, digest_date="2025-06-03", period_start=T0,
                          period_end=T0 + timedelta(days=1), zone=ZoneInfo("UTC"), max_items=40)
    text = render(digest, subject("{counts}", digest))[1]
    columns = [sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
               for line in text.splitlines()]
    assert max(columns) <= 78, text
    assert "出口管制" in text.replace("\n", "").replace(" ", "")       # nothing lost
    from monitor.digest import wrap

    assert wrap("석유 가격 급등 희토류 공급망 재편 논의", 12) == "석유 가격\n  급등 희토류\n  공급망 재편\n  논의"
    assert wrap("one two three four", 9) == "one two\n  three\n  four"
    assert wrap("出口管制。", 8) == "出口管制。"                              # "。" never starts a line


def test_a_long_text_s_snippet_does_not_start_at_a_decimal_or_an_initial():
    """The snippet of a long text starts at the sentence naming its mineral, "never from
    mid-sentence": but a decimal ("rose 5.5 percent") and an initial ("the U.S. ministry")
    were read as sentence starts, and the snippet began "… 5.5 percent after …"."""
    from monitor.digest import passage_snippet
    from monitor.types import DigestArticle

    filler = " ".join(f"Dealers said index futures moved {n} tenths in early trade." for n in range(1, 7))
    lead = DigestArticle(id=3, title="Morning round-up", text="", url=None, source="s",
                         published=T0, first_seen=T0, language="en",
                         topics=("critical-minerals",), score=0.95,
                         reasons=("classifier critical-minerals 0.95",), countries=(),
                         minerals=("tungsten",))
    for sentence in ("Steel makers said prices rose 5.5 percent after the ban on tungsten scrap.",
                     "The U.S. ministry will ban exports of tungsten scrap.",
                     "Under order No. 61 the ministry bans exports of tungsten scrap."):
        article = DigestArticle(**{**lead.__dict__, "text": f"{filler} {sentence}"})
        assert passage_snippet(article) == "… " + sentence


def test_a_long_text_s_snippet_finds_its_keyword_as_the_rule_does():
    """The sentence naming a keyword was looked for as a plain substring with the ``*``
    taken out: "tin" was found in "Argentina" (the snippet showed a sentence about wheat),
    "seltene* Erden" never in "Seltener Erden", nor a "re:" rule at all."""
    from monitor.digest import passage_snippet
    from monitor.types import DigestArticle

    filler = " ".join(f"Dealers said index futures moved {n} tenths in early trade." for n in range(1, 6))
    more = " ".join(f"Bond yields were {n} points higher by noon." for n in range(1, 8))
    sentence = "The smelter halted tin exports on Monday."
    lead = DigestArticle(id=3, title="Smelter halts tin exports", url=None, source="s",
                         text=f"{filler} Argentina sold more wheat abroad. {more} {sentence}",
                         published=T0, first_seen=T0, language="en",
                         topics=("critical-minerals",), score=0.95,
                         reasons=("classifier critical-minerals 0.95", 'keyword "tin"'),
                         countries=(), minerals=())
    assert passage_snippet(lead) == "… " + sentence
    german = "Die Regierung begrenzt die Ausfuhr Seltener Erden."
    for rule in ("seltene* Erden", "re:seltene[nr]? erden"):
        article = DigestArticle(**{**lead.__dict__, "text": f"{filler} {german}",
                                   "reasons": (f'keyword "{rule}"',)})
        assert passage_snippet(article) == "… " + german, rule
