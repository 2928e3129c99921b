"""Signed review links and sessions (monitor.tokens), and the list filters (monitor.web.filters)."""

import base64
from datetime import date, datetime, timedelta, timezone

import pytest

from monitor.tokens import ReviewLinks, TokenError, read_review_token, read_session, review_token, session_value
from monitor.web.access import FAILED_SIGN_INS, Access, csrf_ok, is_loopback, same_origin
from monitor.web.filters import ListFilter

KEY = b"k" * 32
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)


def test_a_review_token_says_who_opens_which_item_until_when():
    token = review_token(KEY, "ana@example.org", 42, NOW + timedelta(days=14))
    grant = read_review_token(KEY, token, NOW)
    assert (grant.recipient, grant.article_id, grant.expires) == ("ana@example.org", 42, NOW + timedelta(days=14))
    assert review_token(KEY, "ben@example.org", 42, NOW + timedelta(days=14)) != token


@pytest.mark.parametrize("change, reason", [
    (lambda t: t.replace(".42.", ".43."), "forged"),                     # another item
    (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "forged"),
    (lambda t: "v2" + t[2:], "malformed"),
    (lambda t: t.rsplit(".", 1)[0], "malformed"),                        # cut off when copied
    (lambda t: "", "malformed"),
])
def test_a_changed_token_is_refused(change, reason):
    token = review_token(KEY, "ana@example.org", 42, NOW + timedelta(days=1))
    with pytest.raises(TokenError) as refused:
        read_review_token(KEY, change(token), NOW)
    assert refused.value.reason == reason


def test_a_token_of_another_key_or_past_its_day_is_refused():
    token = review_token(KEY, "ana@example.org", 42, NOW + timedelta(hours=1))
    with pytest.raises(TokenError, match="signature does not match"):
        read_review_token(b"x" * 32, token, NOW)
    with pytest.raises(TokenError, match="expired on 2026-12-06 09:00 UTC") as late:
        read_review_token(KEY, token, NOW + timedelta(hours=1))
    assert late.value.reason == "expired"


def test_links_carry_the_recipients_token_and_the_choice():
    links = ReviewLinks("https://monitor.example", KEY, "ana@example.org", NOW + timedelta(days=14))
    url = links.url(7, "irrelevant")
    assert url.startswith("https://monitor.example/items/7?t=v1.") and url.endswith("&v=irrelevant")
    token = url.split("t=", 1)[1].split("&", 1)[0]
    assert read_review_token(KEY, token, NOW).recipient == "ana@example.org"


def test_sessions_are_signed_and_expire():
    value = session_value(KEY, "ana@example.org", NOW + timedelta(hours=2))
    assert read_session(KEY, value, NOW) == "ana@example.org"
    assert read_session(KEY, value, NOW + timedelta(hours=2)) is None
    assert read_session(b"x" * 32, value, NOW) is None
    body, signature = value.split(".")
    assert read_session(KEY, body + "x." + signature, NOW) is None
    assert read_session(KEY, "garbage", NOW) is None


def test_access_rules():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("monitor.example")
    assert Access(loopback=False, link_key=None).problem() is not None
    assert Access(loopback=False, link_key=KEY).problem() is None
    assert Access(loopback=True, link_key=None, username="desk").problem() is not None   # no password
    basic = Access(loopback=False, link_key=None, username="desk", password="pw")
    assert basic.reviewer({}, "Basic ZGVzazpwdw==", NOW) == "desk"                      # desk:pw
    assert basic.reviewer({}, "Basic ZGVzazpQVw==", NOW) is None                        # desk:PW
    assert basic.reviewer({}, "Basic !!!", NOW) is None
    assert Access(loopback=True, link_key=None, local_user="ana").reviewer({}, None, NOW) == "ana"
    token = "a" * 43
    assert csrf_ok(token, token) and not csrf_ok(token, None) and not csrf_ok(None, None)
    assert not csrf_ok("short", "short")
    assert same_origin(None, "http", "127.0.0.1:8765")
    assert same_origin("http://127.0.0.1:8765", "http", "127.0.0.1:8765")
    assert not same_origin("null", "http", "127.0.0.1:8765")
    assert not same_origin("https://evil.example", "http", "127.0.0.1:8765")


def test_list_filters_are_checked_and_kept_in_the_links():
    from zoneinfo import ZoneInfo

    f = ListFilter.from_query({"from": "2026-12-01", "to": "2026-12-05", "topic": "export-controls",
                               "country": "cn", "mineral": "Gallium", "lang": "DE", "q": "  licence   regime ",
                               "status": "unreviewed", "older": "3"})
    assert (f.since, f.until, f.country, f.mineral, f.language, f.text, f.older) == (
        date(2026, 12, 1), date(2026, 12, 5), "CN", "gallium", "de", "licence regime", 3)
    filters = f.store_filters()
    assert filters["until"] == datetime(2026, 12, 6, tzinfo=timezone.utc)       # the last day included
    berlin = f.store_filters(ZoneInfo("Europe/Berlin"))                          # days in the digest's zone
    assert berlin["since"] == datetime(2026, 11, 30, 23, tzinfo=timezone.utc)
    assert "older=4" in f.query(older=4) and "older" not in f.query() and "q=licence+regime" in f.query()
    bad = ListFilter.from_query({"topic": "gold", "from": "2026-12-05", "to": "2026-12-01", "older": "-1",
                                 "country": "China"})
    assert (bad.topic, bad.since, bad.until, bad.older, bad.country) == ("", None, None, None, "")
    assert len(bad.problems) == 4 and not bad.active


def test_wrong_passwords_count_per_ipv6_network_and_aged_addresses_are_dropped(monkeypatch):
    now = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)
    access = Access(loopback=False, link_key=None, username="desk", password="right-pass")
    wrong = "Basic " + base64.b64encode(b"desk:guess").decode()
    for n in range(FAILED_SIGN_INS):                   # a new address of one /64 each time
        assert access.failed_sign_in(wrong, f"2001:db8:0:1::{n + 1:x}", now) == "desk"
    assert access.wait_before_sign_in("2001:db8:0:1::ffff", now) > 0
    assert access.wait_before_sign_in("2001:db8:0:2::1", now) == 0           # another network
    assert access.wait_before_sign_in("::ffff:192.0.2.1", now) == 0
    monkeypatch.setattr("monitor.web.access.MAX_COUNTED", 3)
    later = now + timedelta(hours=1)
    for n in range(3):
        access.failed_sign_in(wrong, f"192.0.2.{n}", later)
    assert sorted(access._failed) == ["192.0.2.0", "192.0.2.1", "192.0.2.2"]   # the /64 aged out


def test_whole_numbers_from_outside_are_ascii_digits():
    from monitor.fetch import parse_max_age, parse_retry_after
    from monitor.numbers import is_whole

    now = datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert is_whole("120") and not is_whole("²") and not is_whole("①") and not is_whole("")
    assert parse_retry_after("²", now) is None and parse_retry_after("120", now) == 120.0
    assert parse_max_age("max-age=²") is None and parse_max_age("max-age=60") == 60.0


def test_the_same_origin_whatever_the_case_or_a_default_port():
    assert same_origin("https://m.example", "https", "M.example:443")
    assert same_origin("https://M.EXAMPLE:443", "https", "m.example")
    assert same_origin("http://m.example", "http", "m.example:80")
    assert not same_origin("https://m.example", "https", "m.example:8443")
    assert not same_origin("https://m.example", "http", "m.example")
    assert not same_origin("https://evil.example", "https", "m.example")
