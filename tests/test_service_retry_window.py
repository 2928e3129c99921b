"""Temporary delivery failures around a stop: the service's retries of a digest's copies."""

from datetime import datetime, timezone

from smtpserver import SmtpServer
from test_service import write_config


def _service(tmp_path, feed_server, feed_file, smtp, start):
    from monitor.service import Service

    clock = {"now": start}
    config = tmp_path / "monitor.toml"
    write_config(config, tmp_path / "m.db", [("wire", feed_server.add("/rss", feed_file("rss2.xml")))],
                 smtp_port=smtp.port, send_at="06:00")
    return Service(str(config), clock=lambda: clock["now"]), clock


def _statuses(service, day):
    return [d.status for d in service.store.get_digest(day).deliveries]


def _each_day_sent_once(service, smtp):
    """The 4th's digest and the 5th's sent, one copy each, and no other."""
    assert _statuses(service, "2025-06-04") == ["sent"]
    assert _statuses(service, "2025-06-05") == ["sent"]
    assert len(smtp.recorder.received_by("ana@example.org")) == 2


def test_a_catch_up_digest_refused_for_a_moment_is_retried_by_the_running_service(
        tmp_path, feed_server, feed_file):
    """Down across yesterday's send time, started at 05:50 before today's: yesterday's digest
    is made at start and its copy refused once (451). Its period ended 23 h 50 min before, so
    the ticks stopped retrying it ten minutes later: it stayed "retry" for good while the
    service ran ("will retry at …" in the log)."""
    smtp = SmtpServer().start()
    smtp.recorder.faults["ana@example.org"] = ["451 4.3.0 try again later"]
    service, clock = _service(tmp_path, feed_server, feed_file, smtp,
                              datetime(2025, 6, 3, 12, 0, tzinfo=timezone.utc))
    try:
        service.dispatch()
        clock["now"] = datetime(2025, 6, 5, 5, 50, tzinfo=timezone.utc)     # down since the 3rd
        service.missed_digest()
        assert _statuses(service, "2025-06-04") == ["retry"]
        clock["now"] = datetime(2025, 6, 5, 6, 30, tzinfo=timezone.utc)     # the next tick
        service.dispatch()
        _each_day_sent_once(service, smtp)
    finally:
        service.store.close()
        smtp.stop()


def test_yesterdays_copy_refused_before_a_stop_goes_out_at_a_start_past_its_retry_window(
        tmp_path, feed_server, feed_file):
    """A copy refused (451) at 06:00, the service stopped at 07:00 and started again 25 hours
    later: "at its next start when it was down past them" it is sent. The start left
    yesterday's digest to the ticks, whose 24 hours had passed: it stayed "retry"."""
    smtp = SmtpServer().start()
    smtp.recorder.faults["ana@example.org"] = ["451 4.3.0 try again later"]
    service, clock = _service(tmp_path, feed_server, feed_file, smtp,
                              datetime(2025, 6, 4, 5, 0, tzinfo=timezone.utc))
    try:
        service.dispatch()
        clock["now"] = datetime(2025, 6, 4, 6, 0, tzinfo=timezone.utc)
        service.scheduled_digest()
        assert _statuses(service, "2025-06-04") == ["retry"]
        clock["now"] = datetime(2025, 6, 5, 8, 0, tzinfo=timezone.utc)      # down 07:00 → 08:00 next day
        service.missed_digest()
        service.dispatch()
        _each_day_sent_once(service, smtp)
    finally:
        service.store.close()
        smtp.stop()
