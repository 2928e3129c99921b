"""`monitor run` as a real subprocess: real scheduler, real feed server, real SMTP server."""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


from smtpserver import SmtpServer

ROOT = Path(__file__).resolve().parents[1]


def write_config(path, db, feeds, smtp_port=None, send_at="06:00", tz="UTC", keywords=None, outbox=None):
    lines = [f'[store]\nurl = "sqlite:///{db}"\n',
             '[poll]\ncontact_url = "http://127.0.0.1/c"\nconnect_timeout_seconds = 3\nread_timeout_seconds = 5\n',
             f'[classifier]\nmodel = "{path.parent / "no-model.skops"}"\n',
             "[keywords]\n" + "".join(f'{k} = {json.dumps(v)}\n' for k, v in (keywords or {}).items()),
             f'[digest]\nsend_at = "{send_at}"\ntimezone = "{tz}"\nrecipients = ["ana@example.org"]\n'
             f'outbox_dir = "{outbox or path.parent / "outbox"}"\n']
    if smtp_port:
        lines.append(f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n')
    for name, url in feeds:
        lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n')
    path.write_text("\n".join(lines), encoding="utf-8")


def start(config, tick=2):
    env = {**os.environ, "MONITOR_TICK_SECONDS": str(tick)}
    return subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "--log-format",
                             "json", "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=config.parent)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, err.decode()


def count(db, sql):
    """The query's count, or -1 while the service is still creating the store."""
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return -1


def zone_near_noon():
    """An Etc/GMT zone where it is now between 11:00 and 13:00, so 'earlier today' exists."""
    offset = 12 - datetime.now(timezone.utc).hour
    offset = max(-12, min(14, offset))
    return "Etc/GMT" + ("+" if offset <= 0 else "-") + str(abs(offset)) if offset else "UTC"


def test_digest_at_send_at_once_keyword_reload_and_sigterm(tmp_path, feed_server, feed_file):
    url = feed_server.add("/rss", feed_file("rss2.xml"))
    smtp = SmtpServer().start()
    due = (datetime.now(timezone.utc) + timedelta(seconds=15)).replace(microsecond=0)
    send_at = due.strftime("%H:%M:%S")              # after the first poll; seconds count
    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, [("rss", url)], smtp.port, send_at=send_at,
                 keywords={"critical-minerals": ["gallium"]})
    proc = start(config)
    try:
        wait_for(lambda: smtp.recorder.messages, 90, "the digest")
        assert datetime.now(timezone.utc) >= due              # at send_at, not at its minute
        assert count(db, "select count(*) from flagged") == 1
        url2 = feed_server.add("/second", feed_file("atom.xml"))
        write_config(config, db, [("rss", url), ("second", url2)], smtp.port, send_at=send_at,
                     keywords={"critical-minerals": ["gallium"], "export-controls": ["Antimon"]})
        wait_for(lambda: count(db, "select count(*) from flagged where reasons like '%Antimon%'") == 1,
                 30, "the edited keywords to apply")
        time.sleep(3)
    finally:
        code, log = stop(proc)
        smtp.stop()
    assert code == 0, log
    assert len(smtp.recorder.messages) == 1
    msg = smtp.recorder.messages[0][1]
    assert "gallium" in msg.get_body(("plain",)).get_content()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(e["message"].startswith("config reloaded") for e in events)
    assert any(e.get("event") == "digest" and e.get("sent") == 1 for e in events)
    assert any(e.get("event") == "cycle" for e in events)


def test_invalid_config_edit_keeps_previous_config(tmp_path, feed_server, feed_file):
    url = feed_server.add("/rss", feed_file("rss2.xml"))
    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, [("rss", url)])
    proc = start(config)
    try:
        wait_for(lambda: db.exists() and count(db, "select count(*) from article") == 3, 30, "first poll")
        config.write_text(config.read_text() + "\n[poll]\nbogus = 1\n")
        time.sleep(5)
        assert proc.poll() is None
    finally:
        code, log = stop(proc)
    assert code == 0
    assert "config change ignored" in log and "monitor.toml" in log


def test_missed_digest_sent_once_and_kill_9_loses_and_repeats_nothing(tmp_path, feed_server, feed_file):
    body = feed_file("rss2.xml")
    feeds = []
    for i in range(50):
        doc = body.replace(b"md-10", f"f{i}-".encode()).replace(b"/news/", f"/n{i}/".encode())
        feeds.append((f"feed {i}", feed_server.add(f"/f{i}", doc, delay=0.15)))
    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, feeds, send_at="06:00", tz=zone_near_noon(),
                 keywords={"critical-minerals": ["gallium"]})
    proc = start(config, tick=1)
    wait_for(lambda: db.exists() and count(db, "select count(*) from article") >= 20, 60, "some articles")
    proc.kill()                                      # kill -9 in the middle of the cycle
    proc.wait()
    stored = count(db, "select count(*) from article")
    assert stored < 150
    with sqlite3.connect(db) as conn:                # the store had begun before today's
        conn.execute("update feed set created_at = datetime('now', '-2 days')")   # send time
    proc = start(config, tick=1)
    try:
        wait_for(lambda: count(db, "select count(*) from article") == 150, 90, "the rest of the feeds")
        wait_for(lambda: count(db, "select count(*) from digest_delivery where status='sent'") == 1, 30,
                 "the missed digest")
        time.sleep(3)
    finally:
        code, _ = stop(proc)
    assert code == 0
    assert count(db, "select count(*) from (select feed_id, key from article group by 1, 2 having count(*) > 1)") == 0
    assert count(db, "select count(distinct feed_id) from article") == 50
    proc = start(config, tick=1)                     # a third start: the ledger says it went
    time.sleep(4)
    code, _ = stop(proc)
    assert count(db, "select count(*) from digest") == 1
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_a_first_start_sends_no_catch_up_digest_before_a_poll_completes(tmp_path, feed_server, feed_file):
    """Started for the first time after send_at: no "nothing new" mail for a day the service
    was never down — nor after a restart the same day, once a poll has completed (a restart
    made a digest the running service would not have: the store began after it fell due);
    down across the next send_at, the missed digest is caught up."""
    from monitor.service import Service

    clock = {"now": datetime(2025, 6, 5, 12, 0, tzinfo=timezone.utc)}
    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, [("wire", feed_server.add("/rss", feed_file("rss2.xml")))], send_at="06:00")
    service = Service(str(config), clock=lambda: clock["now"])
    try:
        service.missed_digest()
        assert service.store.get_digest("2025-06-05") is None
        assert not (tmp_path / "outbox").exists()
        service.dispatch()                                   # the first poll completes
        service.missed_digest()                              # a restart the same day
        service._due_digest()                                # the running service's tick
        assert service.store.get_digest("2025-06-05") is None
        clock["now"] = datetime(2025, 6, 6, 12, 0, tzinfo=timezone.utc)   # down across 06:00
        service.missed_digest()
        assert service.store.get_digest("2025-06-06") is not None
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    finally:
        service.store.close()


def test_the_schedulers_own_warnings_are_json_lines_too():
    """A cycle that outlasts the tick makes APScheduler warn that it skipped a run; with
    --log-format json that line is JSON like every other."""
    code = ("import logging\nfrom monitor.logs import setup_logging\nsetup_logging('info', 'json')\n"
            "logging.getLogger('apscheduler.scheduler').warning('Execution of job skipped')\n"
            "logging.getLogger('apscheduler.scheduler').info('Added job')\n"
            "logging.getLogger('apscheduler.scheduler').warning('Execution of job \"x\" skipped: "
            "maximum number of running instances reached (1)')\n"       # coalescing: debug
            "logging.getLogger('monitor.poll').info('cycle')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(r["logger"], r["level"]) for r in lines] == [
        ("apscheduler.scheduler", "warning"), ("monitor.poll", "info")]


def clocked_service(tmp_path, feed_server, feed_file, start):
    """A Service (in this process) over one feed, on a clock the test moves:
    ``clock["now"]``."""
    from monitor.service import Service

    clock = {"now": start}
    config = tmp_path / "monitor.toml"
    write_config(config, tmp_path / "m.db", [("wire", feed_server.add("/rss", feed_file("rss2.xml")))],
                 send_at="06:00")
    return Service(str(config), clock=lambda: clock["now"]), clock


def test_a_digest_missed_yesterday_is_sent_at_a_start_before_todays_time(tmp_path, feed_server, feed_file):
    """Down across yesterday's send time, started again before today's: yesterday's digest
    goes out at start, once; today's follows at its time."""
    service, clock = clocked_service(tmp_path, feed_server, feed_file,
                                     datetime(2025, 6, 4, 5, 0, tzinfo=timezone.utc))
    try:
        service.dispatch()                                   # running on the 4th before 06:00,
        clock["now"] = datetime(2025, 6, 5, 5, 0, tzinfo=timezone.utc)   # down until the 5th
        service.missed_digest()
        assert service.store.get_digest("2025-06-04") is not None
        service.missed_digest()                              # a second start: nothing more
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
        assert service.store.get_digest("2025-06-05") is None
        clock["now"] = datetime(2025, 6, 5, 6, 0, tzinfo=timezone.utc)
        service.digest()
        assert service.store.get_digest("2025-06-05") is not None
    finally:
        service.store.close()


def _digest_scheduled(tmp_path, feed_server, feed_file, clock, send_at, tz):
    """A service on ``clock`` with one feed and its digest job scheduled on a scheduler that
    is not started (the job is read, and run by hand): (service, job)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from monitor.service import Service

    config = tmp_path / "monitor.toml"
    write_config(config, tmp_path / "m.db", [("wire", feed_server.add("/rss", feed_file("rss2.xml")))],
                 send_at=send_at, tz=tz)
    service = Service(str(config), clock=lambda: clock["now"])
    service.scheduler = BackgroundScheduler(timezone="UTC")
    service._schedule_digest()
    return service, service.scheduler.get_job("digest")


def test_a_digest_job_that_runs_late_past_midnight_makes_the_day_it_fired_for(
        tmp_path, feed_server, feed_file):
    """send_at 23:59 Asia/Kolkata, and the one worker busy with a slow poll until 00:00:31:
    the job took the next day's date, and that day's own job found it "already sent", so a
    day went without a digest. It makes the digest of the day whose send_at fired."""
    clock = {"now": datetime(2025, 6, 4, 18, 0, tzinfo=timezone.utc)}          # 23:30 IST
    service, digest_job = _digest_scheduled(tmp_path, feed_server, feed_file, clock, "23:59", "Asia/Kolkata")
    job = digest_job.func                                         # what fires at send_at
    try:
        service.dispatch()
        clock["now"] = datetime(2025, 6, 4, 18, 30, 31, tzinfo=timezone.utc)    # 00:00:31 IST, 5 June
        job()
        made = service.store.get_digest("2025-06-04")
        assert made is not None and service.store.get_digest("2025-06-05") is None
        assert made.period_end == datetime(2025, 6, 4, 18, 29, tzinfo=timezone.utc)  # 23:59 IST
        clock["now"] = datetime(2025, 6, 5, 18, 29, tzinfo=timezone.utc)        # 23:59 IST, 5 June
        job()
        assert service.store.get_digest("2025-06-05") is not None
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    finally:
        service.store.close()


def test_a_send_at_in_the_skipped_or_repeated_hour_is_due_when_the_trigger_fires_it(
        tmp_path, feed_server, feed_file):
    """send_at 02:03 in Berlin, which 30 March 2025 skips (02:00 CET → 03:00 CEST): the cron
    trigger fires at 03:03 CEST, but the tick compared wall-clock times, found 03:00 past
    02:03 and made the digest at 03:00, three minutes before the time it logged as due (a
    start then did the same, "while the service was down"). In the hour repeated on 26
    October, a start at 02:01 CET, after the first 02:03 had passed while it was down, sent
    nothing until the second 02:03 came."""
    clock = {"now": datetime(2025, 3, 29, 12, 0, tzinfo=timezone.utc)}
    service, digest_job = _digest_scheduled(tmp_path, feed_server, feed_file, clock, "02:03", "Europe/Berlin")
    trigger = digest_job.trigger
    fires = trigger.get_next_fire_time(None, datetime(2025, 3, 30, 0, 0, tzinfo=timezone.utc))
    fires = fires.astimezone(timezone.utc)
    assert fires == datetime(2025, 3, 30, 1, 3, tzinfo=timezone.utc)            # 03:03 CEST
    try:
        service.dispatch()
        clock["now"] = datetime(2025, 3, 30, 1, 0, 30, tzinfo=timezone.utc)      # 03:00:30 CEST
        service.missed_digest()                              # a start
        service.dispatch()                                   # a tick
        assert service.store.get_digest("2025-03-30") is None
        clock["now"] = fires
        service.scheduled_digest()
        made = service.store.get_digest("2025-03-30")
        assert made is not None and made.period_end == fires
        clock["now"] = datetime(2025, 10, 25, 12, 0, tzinfo=timezone.utc)
        service.scheduled_digest()                           # 25 October's (made late)
        clock["now"] = datetime(2025, 10, 26, 1, 1, tzinfo=timezone.utc)         # 02:01 CET
        service.missed_digest()                              # down across 02:03 CEST
        assert service.store.get_digest("2025-10-26") is not None
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3
    finally:
        service.store.close()


def test_a_digest_whose_job_failed_or_whose_time_moved_back_is_made_at_the_next_tick(
        tmp_path, feed_server, feed_file):
    """The digest job at send_at failed (the store was locked then) or send_at was moved to
    a time already past: the running service makes today's digest at its next tick, once,
    as a restart would."""
    service, clock = clocked_service(tmp_path, feed_server, feed_file,
                                     datetime(2025, 6, 5, 5, 0, tzinfo=timezone.utc))
    try:
        service.dispatch()                                   # before 06:00: nothing due
        assert service.store.get_digest("2025-06-05") is None
        clock["now"] = datetime(2025, 6, 5, 6, 1, tzinfo=timezone.utc)    # the job never ran
        service.dispatch()
        assert service.store.get_digest("2025-06-05") is not None
        clock["now"] += timedelta(minutes=1)
        service.dispatch()
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    finally:
        service.store.close()


def test_a_recipient_added_after_todays_digest_went_out_gets_it_at_the_next_tick(
        tmp_path, feed_server, feed_file):
    """A run of today's digest sends it to the recipients added to the config since it was
    made; the service ran it again only when another copy was retried, so a colleague added
    at 10:00 got today's digest or not depending on another mailbox's 451. Each gets it
    once, and tomorrow's goes to both."""
    from monitor.service import Service

    smtp = SmtpServer().start()
    clock = {"now": datetime(2025, 6, 5, 5, 0, tzinfo=timezone.utc)}
    config = tmp_path / "monitor.toml"
    write_config(config, tmp_path / "m.db", [("wire", feed_server.add("/rss", feed_file("rss2.xml")))],
                 smtp_port=smtp.port, send_at="06:00")
    service = Service(str(config), clock=lambda: clock["now"])
    try:
        service.dispatch()
        clock["now"] = datetime(2025, 6, 5, 6, 0, tzinfo=timezone.utc)
        service.scheduled_digest()
        config.write_text(config.read_text().replace('recipients = ["ana@example.org"]',
                                                     'recipients = ["ana@example.org", "cy@example.org"]'))
        clock["now"] = datetime(2025, 6, 5, 10, 0, tzinfo=timezone.utc)
        service.dispatch()
        assert [(d.recipient, d.status) for d in service.store.get_digest("2025-06-05").deliveries] == [
            ("ana@example.org", "sent"), ("cy@example.org", "sent")]
        clock["now"] += timedelta(minutes=1)
        service.dispatch()
        clock["now"] = datetime(2025, 6, 6, 6, 0, tzinfo=timezone.utc)
        service.scheduled_digest()
        assert [len(smtp.recorder.received_by(r)) for r in ("ana@example.org", "cy@example.org")] == [2, 2]
    finally:
        service.store.close()
        smtp.stop()


def test_no_catch_up_digest_for_a_day_before_the_store_began(tmp_path, feed_server, feed_file):
    """A first `monitor poll` at 02:00, the service started at 05:00 (send_at 06:00): no
    "nothing new" mail for yesterday, when there was nothing to watch."""
    service, clock = clocked_service(tmp_path, feed_server, feed_file,
                                     datetime(2025, 6, 5, 2, 0, tzinfo=timezone.utc))
    try:
        service.dispatch()
        clock["now"] = datetime(2025, 6, 5, 5, 0, tzinfo=timezone.utc)
        service.missed_digest()
        assert service.store.get_digest("2025-06-04") is None
        assert not (tmp_path / "outbox").exists()
    finally:
        service.store.close()


def test_a_copy_left_sending_by_a_dead_sender_is_marked_and_said_by_the_service(
        tmp_path, feed_server, feed_file, caplog):
    service, clock = clocked_service(tmp_path, feed_server, feed_file,
                                     datetime(2025, 6, 5, 6, 0, tzinfo=timezone.utc))
    try:
        service.dispatch()
        service.digest()
        record = service.store.get_digest("2025-06-05")
        service.store.set_delivery(record, "ana@example.org", status="sending",   # as if killed
                                   next_attempt_at=clock["now"] + timedelta(minutes=2))
        service._retry_deliveries()                          # within the lease: left alone
        assert service.store.get_digest("2025-06-05").deliveries[0].status == "sending"
        clock["now"] += timedelta(days=3)                    # back three days later
        with caplog.at_level("WARNING", logger="monitor"):
            service._retry_deliveries()
        assert service.store.get_digest("2025-06-05").deliveries[0].status == "unknown"
        assert "interrupted while sending" in caplog.text and "--resend" in caplog.text
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1       # never re-sent
    finally:
        service.store.close()


def test_a_clock_set_back_an_hour_after_send_at_stops_no_tick_and_sends_nothing_twice(
        tmp_path, feed_server, feed_file, monkeypatch, caplog):
    """Time synchronisation sets a fast clock back an hour just after the digest went out:
    APScheduler slept until its next tick was due by the clock it had read, so polls,
    retries and the digest check stopped for that hour (a day for a day). The dispatcher
    ticks at once; the digest is not made or sent again when send_at comes round."""
    import threading

    import apscheduler.schedulers.base as scheduler_base

    from monitor.service import Service

    offset = {"by": timedelta(0)}

    class SteppedDatetime(datetime):                 # the scheduler's clock, stepped as the test says
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + offset["by"]

    monkeypatch.setattr(scheduler_base, "datetime", SteppedDatetime)
    monkeypatch.setenv("MONITOR_TICK_SECONDS", "1")
    due = (datetime.now(timezone.utc) + timedelta(seconds=4)).replace(microsecond=0)
    config = tmp_path / "monitor.toml"
    write_config(config, tmp_path / "m.db", [("wire", feed_server.add("/rss", feed_file("rss2.xml")))],
                 send_at=due.strftime("%H:%M:%S"))
    service = Service(str(config), clock=lambda: datetime.now(timezone.utc) + offset["by"])
    ticks = []
    dispatch = service.dispatch
    service.dispatch = lambda: (ticks.append(service.clock()), dispatch())
    outbox = tmp_path / "outbox"

    def step_back_then_stop():
        wait_for(lambda: outbox.exists() and list(outbox.glob("*.eml")), 30, "the digest")
        time.sleep(1)
        offset["by"] = -timedelta(hours=1)
        try:
            wait_for(lambda: any(t < due - timedelta(minutes=30) for t in ticks), 10,
                     "a tick on the clock set back")
            offset["by"] = timedelta(0)             # an hour on: send_at again, by the digest job
            time.sleep(2)
        finally:
            service.stop.set()

    helper = threading.Thread(target=step_back_then_stop)
    helper.start()
    with caplog.at_level("WARNING", logger="monitor"):
        assert service.run_forever() == 0
    helper.join()
    assert any(t < due - timedelta(minutes=30) for t in ticks), "no tick after the clock went back"
    assert "this machine's clock went back 1:00:00" in caplog.text
    assert len(list(outbox.glob("*.eml"))) == 1


def test_a_killed_service_not_yet_reaped_counts_as_gone():
    """Its leases are released at the next start even before its parent collects it."""
    from monitor.service import _alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 5
        while _alive(child.pid) and time.monotonic() < deadline:   # a zombie until waited for
            time.sleep(0.05)
        assert not _alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not _alive(child.pid)


def test_leases_left_under_this_pid_by_a_killed_earlier_process_are_released_at_start(
        tmp_path, feed_server, feed_file):
    """A container restarted after a SIGKILL numbers its processes from 1 again: the new
    service has the pid (and host name) of the killed one, whose leases must not pass for
    its own and wait out lease_seconds; a lease a poller of this process holds stays."""
    import socket

    from monitor.config import load_config
    from monitor.service import build_poller, open_configured_store

    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, [("one", feed_server.add("/one", feed_file("rss2.xml"))),
                              ("two", feed_server.add("/two", feed_file("rss2.xml")))])
    settings = load_config(config)
    now = datetime.now(timezone.utc)
    earlier = f"{socket.gethostname()}:{os.getpid()}:0ldpr0c"      # the killed process's lease
    with open_configured_store(settings) as store:
        [one] = store.claim_due_feeds(now, earlier, 300, limit=1, include_all=True)
        poller = build_poller(settings, store)                    # this process's own poller
        [two] = store.claim_due_feeds(now, poller.owner, 300, limit=1, include_all=True)
    with open_configured_store(settings) as store:                # the restart
        assert store.claim_owners() == [poller.owner]
        free = store.claim_due_feeds(now, "next", 300, limit=5, include_all=True)
        assert [f.name for f in free] == [one.name]           # the earlier process's feed


def test_pollers_of_past_cycles_are_not_kept_to_tell_this_process_leases_apart(tmp_path):
    """The service makes a poller per cycle: remembering every owner it ever had would
    grow for as long as it runs; only pollers that still exist count as this process's."""
    import gc

    from monitor.config import load_config
    from monitor.pipeline import owners_here
    from monitor.service import build_poller, open_configured_store

    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, [])
    settings = load_config(config)
    with open_configured_store(settings) as store:
        kept = build_poller(settings, store)
        past = [build_poller(settings, store).owner for _ in range(50)]
        gc.collect()
        assert kept.owner in owners_here() and not owners_here().intersection(past)


def test_a_reload_warns_of_a_store_url_only_while_it_differs_from_the_open_store(
        tmp_path, feed_server, feed_file, caplog):
    from monitor.config import load_config
    from monitor.service import Service

    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, [("wire", feed_server.add("/rss", feed_file("rss2.xml")))])
    service = Service(str(config))
    other = tmp_path / "other.toml"
    write_config(other, tmp_path / "other.db", [("wire", feed_server.add("/rss2", feed_file("rss2.xml")))])
    try:
        with caplog.at_level("INFO", logger="monitor"):
            service.apply(load_config(other))
            assert "store.url changed" in caplog.text
            caplog.clear()
            service.apply(load_config(config))            # back to the store it has open
            same = tmp_path / "same.toml"                 # the same file, written another way
            write_config(same, f"{tmp_path}/./m.db", [("wire", feed_server.url("/rss"))])
            service.apply(load_config(same))
        assert "store.url changed" not in caplog.text
        assert "digest at 06:00 UTC" in caplog.text
    finally:
        service.store.close()


def test_a_model_put_in_place_while_running_classifies_the_next_articles(tmp_path, feed_server, feed_file,
                                                                          caplog):
    """`monitor train` writes the configured model while `monitor run` runs (or the model
    that was missing at start is put in place): the service went on with the model it had
    loaded, or with keywords alone ("classifier unavailable"), until a restart, while
    `monitor reclassify` already used the new one."""
    import shutil

    from monitor.classify import card_path, linear_path, read_card

    service, clock = clocked_service(tmp_path, feed_server, feed_file,
                                     datetime(2025, 6, 4, 5, 0, tzinfo=timezone.utc))
    db = tmp_path / "m.db"
    shipped = ROOT / "models" / "classifier.skops"
    try:
        service.dispatch()                              # no model yet: keyword-only verdicts
        assert count(db, "select count(*) from article where reasons like '%classifier unavailable%'") == 3
        model = tmp_path / "no-model.skops"             # the path the config names
        for source, target in ((shipped, model), (card_path(shipped), card_path(model)),
                               (linear_path(shipped), linear_path(model))):
            shutil.copy2(source, target)
        body = feed_file("rss2.xml").replace(b"md-100", b"md-200").replace(b"/news/", b"/later/")
        feed_server.add("/rss", body)                   # three new stories
        clock["now"] += timedelta(hours=2)              # the feed is due again
        with caplog.at_level("INFO", logger="monitor"):
            service.dispatch()
        version = read_card(model)["version"]
        assert count(db, f"select count(*) from article where model_version = '{version}'") == 3
        assert "model file" in caplog.text and "changed" in caplog.text
    finally:
        service.store.close()


def test_model_files_that_cannot_be_loaded_leave_the_model_in_use(tmp_path, feed_server, feed_file,
                                                                   caplog):
    """The model's files changed but do not load (a tick caught between the copies of its
    three files, or they were tampered with): the articles of the next cycle had been
    classified by keywords alone and stored so. The model in use stays, the error is said
    once, and the files are taken once they load."""
    import json
    import shutil

    from monitor.classify import card_path, linear_path, read_card

    service, clock = clocked_service(tmp_path, feed_server, feed_file,
                                     datetime(2025, 6, 4, 5, 0, tzinfo=timezone.utc))
    db = tmp_path / "m.db"
    shipped, model = ROOT / "models" / "classifier.skops", tmp_path / "no-model.skops"
    for source, target in ((shipped, model), (card_path(shipped), card_path(model)),
                           (linear_path(shipped), linear_path(model))):
        shutil.copy2(source, target)
    version = read_card(model)["version"]
    try:
        service.reload_if_changed()
        card = card_path(model).read_text(encoding="utf-8")
        tampered = json.loads(card)
        tampered["model_sha256"] = "0" * 64             # not the file beside it
        card_path(model).write_text(json.dumps(tampered), encoding="utf-8")
        with caplog.at_level("INFO", logger="monitor"):
            service.reload_if_changed()
            service.reload_if_changed()                 # the next tick: said once
            service.dispatch()
        assert caplog.text.count("cannot be loaded, the model loaded before stays in use") == 1
        assert count(db, f"select count(*) from article where model_version = '{version}'") == 3
        assert count(db, "select count(*) from article where reasons like '%classifier unavailable%'") == 0
        card_path(model).write_text(card, encoding="utf-8")     # the copy complete
        caplog.clear()
        with caplog.at_level("INFO", logger="monitor"):
            service.reload_if_changed()
        assert "changed: the next articles are classified with it" in caplog.text
    finally:
        service.store.close()


def test_a_config_edit_the_locked_store_refuses_is_applied_at_a_later_tick(
        tmp_path, feed_server, feed_file, caplog):
    """An analyst's sqlite3 holds the store's write lock while the config is edited: the
    edit (a feed added, one removed) was half applied — the new config in force for some
    things, not the feeds — never retried, and its traceback cut the tick short. Now the
    previous config stays whole, and the edit is applied at the next tick the store takes it."""
    from monitor.service import Service

    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    one, two = feed_server.add("/one", feed_file("rss2.xml")), feed_server.add("/two", feed_file("atom.xml"))

    def configure(feeds):
        write_config(config, db, feeds)
        config.write_text(config.read_text(encoding="utf-8").replace(
            "[store]\n", "[store]\nbusy_timeout_seconds = 0.5\n", 1), encoding="utf-8")

    configure([("one", one)])
    service = Service(str(config))
    try:
        configure([("two", two)])
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")                      # an analyst's write lock
        with caplog.at_level("INFO", logger="monitor"):
            service.reload_if_changed()
            assert "config change not applied yet" in caplog.text
            assert [f.name for f in service.config.feeds] == ["one"]      # the previous, whole
            lock.execute("ROLLBACK")
            lock.close()
            caplog.clear()
            service.reload_if_changed()                      # the next tick
            assert "config reloaded" in caplog.text
        assert [f.name for f in service.config.feeds] == ["two"]
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT name, active FROM feed ORDER BY name").fetchall() == [
                ("one", 0), ("two", 1)]
    finally:
        service.store.close()


def test_ctrl_c_stops_the_service_and_its_parse_processes_without_a_traceback(
        tmp_path, feed_server, feed_file):
    """Ctrl-C in a terminal sends SIGINT to the whole process group: the parse processes
    died of it, each with a KeyboardInterrupt traceback on stderr (a block of text in a
    JSON log); the service stops them itself."""
    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, [("wire", feed_server.add("/rss", feed_file("rss2.xml")))])
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[poll]\n", "[poll]\nparse_processes = 2\n", 1), encoding="utf-8")
    env = {**os.environ, "MONITOR_TICK_SECONDS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "--log-format",
                             "json", "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=tmp_path, start_new_session=True)
    try:
        wait_for(lambda: count(db, "SELECT count(*) FROM article") == 3, 60, "the first poll")
        time.sleep(1)                                   # the parse processes idle, waiting
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = err.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "monitor stopped" in text


def test_a_copy_left_pending_goes_out_at_the_next_start_however_long_the_stop(
        tmp_path, feed_server, feed_file, caplog):
    """A stop during a digest leaves the rest of its copies pending, "sent at the next
    start"; a start more than a day later never sent them (the ticks retry only today's
    and yesterday's digests), and nothing said so."""
    service, clock = clocked_service(tmp_path, feed_server, feed_file,
                                     datetime(2025, 6, 4, 5, 0, tzinfo=timezone.utc))
    try:
        service.dispatch()
        clock["now"] = datetime(2025, 6, 4, 6, 0, tzinfo=timezone.utc)
        service.digest("2025-06-04")
        record = service.store.get_digest("2025-06-04")
        service.store.set_delivery(record, "ana@example.org", status="pending")  # as a stop leaves it
        clock["now"] = datetime(2025, 6, 7, 12, 0, tzinfo=timezone.utc)         # down three days
        with caplog.at_level("INFO", logger="monitor"):
            service.missed_digest()
        assert "digest 2025-06-04 has copies left to send" in caplog.text
        assert [d.status for d in service.store.get_digest("2025-06-04").deliveries] == ["sent"]
        service.missed_digest()                                  # a second start: nothing more
        assert caplog.text.count("digest 2025-06-04 has copies left to send") == 1
    finally:
        service.store.close()


def test_a_closed_terminal_sighup_stops_the_service_cleanly(tmp_path, feed_server, feed_file):
    """SIGHUP (the terminal `monitor run` ran in was closed) killed it at once, exit 129,
    without a word; it now stops as on SIGTERM."""
    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, [("wire", feed_server.add("/rss", feed_file("rss2.xml")))])
    proc = start(config)
    try:
        wait_for(lambda: count(db, "SELECT count(*) FROM article") == 3, 60, "the first poll")
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "received SIGHUP" in err.decode() and "monitor stopped" in err.decode()
    assert count(db, "SELECT count(*) FROM feed WHERE claimed_by IS NOT NULL") == 0


def test_a_store_file_deleted_under_the_running_service_stops_it_with_a_clear_error(
        tmp_path, feed_server, feed_file):
    """`rm var/monitor.db*` while `monitor run` runs: its open connection went on writing
    into the deleted file (reported as new, lost) and a new one made an empty file, every
    tick failing with "no such table: digest". It now stops, exit code 1, naming the file."""
    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, [("wire", feed_server.add("/rss", feed_file("rss2.xml")))])
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "run"],
                                stdout=sink, stderr=sink, cwd=tmp_path, start_new_session=True,
                                env={**os.environ, "MONITOR_TICK_SECONDS": "1"})
        try:
            wait_for(lambda: count(db, "SELECT count(*) FROM article") == 3, 60, "the first poll")
            for path in tmp_path.glob("m.db*"):
                path.unlink()
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)      # the service and its parse processes
                proc.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert proc.returncode == 1, text
    assert f"the store file {db} was deleted or replaced while the service ran" in text
    assert "no such table" not in text


def _gallium_feed(feed_server, items):
    """An RSS document of (number, publication time) items that keyword-flag."""
    from email.utils import format_datetime

    body = "".join(f"<item><title>Gallium export licence {i}</title><link>http://x.test/{i}</link>"
                   f"<guid>g{i}</guid><description>China gallium export story {i}.</description>"
                   f"<pubDate>{format_datetime(t)}</pubDate></item>" for i, t in items)
    return feed_server.add("/rss", '<?xml version="1.0"?><rss version="2.0"><channel><title>w'
                           f'</title><link>http://x.test/</link>{body}</channel></rss>')


def _poll_now(service, db):
    with sqlite3.connect(db) as conn:                         # every feed due at this tick
        conn.execute("UPDATE feed SET next_check_at = NULL")
    service.dispatch()


@contextlib.contextmanager
def _gallium_service(tmp_path, feed_server, start):
    """A Service on a clock the test moves (``clock["now"]``), its store at tmp_path/m.db, one
    feed of a gallium item published 2025-06-08 11:00 UTC, flagged by a keyword; digest at
    07:00 UTC. Yields (service, clock, db)."""
    from monitor.service import Service

    db = tmp_path / "m.db"
    url = _gallium_feed(feed_server, [(1, datetime(2025, 6, 8, 11, 0, tzinfo=timezone.utc))])
    config = tmp_path / "monitor.toml"
    write_config(config, db, [("wire", url)], send_at="07:00", keywords={"critical-minerals": ["gallium"]})
    clock = {"now": start}
    service = Service(str(config), clock=lambda: clock["now"])
    try:
        yield service, clock, db
    finally:
        service.parser.close()
        service.store.close()


def test_a_clock_behind_at_boot_polls_nothing_until_it_catches_up(tmp_path, feed_server, caplog):
    """Booted with the clock two days behind (time synchronisation not done yet): the feed's
    real dates looked two days ahead and were dropped for good, and the articles, stamped
    first seen "two days ago", before the last digest's end, fell in no digest's period and
    were never mailed. The poll now waits for the clock; then the articles keep their dates
    and the next digest mails them once."""
    utc = timezone.utc
    real = datetime(2025, 6, 9, 12, 0, tzinfo=utc)
    with _gallium_service(tmp_path, feed_server, datetime(2025, 6, 8, 12, 0, tzinfo=utc)) as (service, clock, db):
        _poll_now(service, db)
        clock["now"] = datetime(2025, 6, 9, 7, 0, tzinfo=utc)
        service.scheduled_digest()                              # 9 June's, on a right clock
        _gallium_feed(feed_server, [(1, datetime(2025, 6, 8, 11, 0, tzinfo=utc)), (2, real - timedelta(hours=1))])
        clock["now"] = real - timedelta(days=2)                  # rebooted, the clock behind
        with caplog.at_level("ERROR", logger="monitor.service"):
            _poll_now(service, db)
            service.scheduled_digest()
        assert ("cycle failed: this machine's clock (2025-06-07 12:00 UTC) is 1 day 19 h behind the end of "
                "the last digest's period (2025-06-09 07:00 UTC): not polling until it catches up") in caplog.text
        assert "a later digest already covers its time" in caplog.text     # nor made a digest
        assert count(db, "SELECT count(*) FROM article") == 1       # nothing stamped on the wrong clock
        assert count(db, "SELECT count(*) FROM digest") == 1
        clock["now"] = real + timedelta(minutes=10)              # synchronised
        _poll_now(service, db)
        assert count(db, "SELECT published_at FROM article WHERE title LIKE '%licence 2'") \
            == "2025-06-09 11:00:00.000000"
        clock["now"] = datetime(2025, 6, 10, 7, 0, tzinfo=utc)
        service.scheduled_digest()
        with sqlite3.connect(db) as conn:
            mailed = conn.execute("SELECT d.digest_date, group_concat(i.article_id) FROM digest d JOIN digest_item i "
                                  "ON i.digest_id = d.id GROUP BY d.id ORDER BY d.id").fetchall()
        assert mailed == [("2025-06-09", "1"), ("2025-06-10", "2")]


def test_a_service_stops_when_a_newer_monitor_migrates_its_store(tmp_path, feed_server, caplog):
    """A schema-6 service went on polling into a store another machine's newer monitor had
    migrated: its edits left out what the new schema keeps, so the new digest never mailed an
    article an edit made flagged. It now stops at its next tick and says why."""
    from monitor.storage.migrations import LATEST

    utc = timezone.utc
    with _gallium_service(tmp_path, feed_server, datetime(2025, 6, 8, 12, 0, tzinfo=utc)) as (service, clock, db):
        _poll_now(service, db)
        assert not service.stop.is_set()
        with sqlite3.connect(db) as conn:                      # what a newer monitor's migration leaves
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, '2025-06-08 12:30:00')",
                         (LATEST + 1,))
        _gallium_feed(feed_server, [(1, datetime(2025, 6, 8, 11, 0, tzinfo=utc)), (2, clock["now"])])
        with caplog.at_level("ERROR", logger="monitor.service"):
            _poll_now(service, db)
            clock["now"] = datetime(2025, 6, 9, 7, 0, tzinfo=utc)
            service.scheduled_digest()
        assert service.stop.is_set() and service.failed
        assert (f"the store was migrated to schema version {LATEST + 1} by a newer monitor while this one "
                f"(schema version {LATEST}) ran: stopping") in caplog.text
        assert count(db, "SELECT count(*) FROM article") == 1 and count(db, "SELECT count(*) FROM digest") == 0


def test_a_poll_made_by_a_clock_ahead_stops_no_later_poll(tmp_path, feed_server):
    """The first clock guard took the store's newest poll as the time: one poll by a clock
    two days ahead (or another machine's fast clock) stopped every poll on a right clock for
    two days. Only the end of the last digest's period says articles would be lost."""

    utc = timezone.utc
    ahead = datetime(2025, 6, 10, 12, 0, tzinfo=utc)                          # two days ahead
    with _gallium_service(tmp_path, feed_server, ahead) as (service, clock, db):
        _poll_now(service, db)
        clock["now"] = datetime(2025, 6, 8, 12, 5, tzinfo=utc)              # corrected
        _gallium_feed(feed_server, [(1, datetime(2025, 6, 8, 11, 0, tzinfo=utc)),
                                    (2, datetime(2025, 6, 8, 12, 0, tzinfo=utc))])
        _poll_now(service, db)
        assert count(db, "SELECT count(*) FROM article") == 2


def test_a_feed_polled_at_a_tick_is_polled_again_at_the_tick_its_interval_later(tmp_path, feed_server):
    """A feed's next check counted from the end of its fetch, a moment after the tick that
    polled it, so the tick one interval later found it not due yet: every feed was polled at
    its interval plus a tick (60-minute feeds every 61 minutes, 1-minute feeds every 2, seen
    in a soak run). It counts from the tick; a server's Retry-After from its reply."""
    utc = timezone.utc
    noon = datetime(2025, 6, 8, 12, 0, tzinfo=utc)
    with _gallium_service(tmp_path, feed_server, noon) as (service, clock, db):
        service.ticks = (noon, 60.0)                              # ticks at 12:00:00, 12:01:00 …
        clock["now"] = noon + timedelta(seconds=2)                # the fetch ends 2 s into its tick
        _poll_now(service, db)
        fetched = len(feed_server.requests)
        clock["now"] = noon + timedelta(hours=1, seconds=1)       # the tick of 13:00, 1 s late
        service.dispatch()
        assert len(feed_server.requests) == fetched + 1
        assert count(db, "SELECT next_check_at FROM feed") == "2025-06-08 14:00:00.000000"
        feed_server.add("/rss", b"busy", status=503, headers={"Retry-After": "3900"},
                              content_type="text/plain")
        clock["now"] = noon + timedelta(hours=2, seconds=5)       # the tick of 14:00, 5 s in
        service.dispatch()
        assert len(feed_server.requests) == fetched + 2
        assert count(db, "SELECT next_check_at FROM feed") == "2025-06-08 15:05:05.000000"


def test_the_service_takes_its_feeds_back_after_a_poll_with_another_config(tmp_path, feed_server):
    """A `monitor poll` with another config on the service's store made that config's feeds
    the store's: the service polled them, and not its own, until its config file changed."""

    utc = timezone.utc
    with _gallium_service(tmp_path, feed_server, datetime(2025, 6, 8, 12, 0, tzinfo=utc)) as (service, clock, db):
        _poll_now(service, db)
        other = tmp_path / "other" / "monitor.toml"
        other.parent.mkdir()
        write_config(other, db, [("elsewhere", feed_server.add("/other", "<rss/>"))])
        done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(other), "poll"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert count(db, "SELECT active FROM feed WHERE name = 'wire'") == 0      # taken over
        _gallium_feed(feed_server, [(1, datetime(2025, 6, 8, 11, 0, tzinfo=utc)), (2, clock["now"])])
        clock["now"] += timedelta(hours=1)
        _poll_now(service, db)
        assert count(db, "SELECT active FROM feed WHERE name = 'wire'") == 1
        assert count(db, "SELECT active FROM feed WHERE name = 'elsewhere'") == 0
        assert count(db, "SELECT count(*) FROM article") == 2                      # its own polled


def test_the_start_line_names_the_config_and_warns_when_it_is_the_packages_example(
        tmp_path, feed_server, feed_file, caplog, monkeypatch):
    """Installed from the wheel and started in a folder without config/monitor.toml (a
    systemd unit without --config, the wrong folder), `monitor run` ran the example config
    shipped inside the package — its internet feeds, its example.org recipients — and its
    log named no config file, so nothing told the operator their own was not in force."""
    import monitor.resources
    from monitor.service import Service

    bundled = tmp_path / "site" / "monitor" / "_bundled"
    monkeypatch.setattr(monitor.resources, "BUNDLED_DIR", bundled)
    mine, example = tmp_path / "monitor.toml", bundled / "config" / "monitor.toml"
    example.parent.mkdir(parents=True)
    url = feed_server.add("/rss", feed_file("rss2.xml"))
    write_config(mine, tmp_path / "m.db", [("wire", url)])
    write_config(example, tmp_path / "e.db", [("wire", url)])
    monkeypatch.chdir(tmp_path)
    for config, warned in ((mine, False), (example, True)):
        caplog.clear()
        service = Service(str(config))
        try:
            with caplog.at_level("INFO", logger="monitor"):
                service.start()
                wait_for(lambda: "cycle:" in caplog.text, 30, "the first cycle")
        finally:
            service.shutdown()
        started = [r.getMessage() for r in caplog.records if "monitor running" in r.getMessage()]
        assert started and str(config) in started[0], caplog.text
        assert ("example config shipped inside the package" in caplog.text) is warned, caplog.text
