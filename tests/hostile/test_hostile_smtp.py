"""SMTP faults (issue 8, case 16): covered in tests/test_digest.py against a real
aiosmtpd server on 127.0.0.1, not duplicated here:

- test_starttls_and_auth — STARTTLS with a throwaway certificate and AUTH;
- test_a_refused_sign_in_fails_for_good_only_when_the_reply_is_permanent — a 535 is
  permanent (no retry loop), a 454 temporary;
- test_faults_then_recovery_give_each_recipient_exactly_one_copy — 4xx replies and
  dropped connections, then recovery: each recipient gets exactly one copy;
- test_temporary_failures_stay_open_after_max_attempts_and_a_later_run_sends —
  smtp.max_attempts is honoured within a run; the delivery stays open and a later run
  sends exactly one copy (issue 16);
- test_an_outbox_on_a_full_disk_leaves_no_partial_file — temporary name, then rename;
- test_interrupted_send_is_not_repeated — a crash mid-send is never re-sent blindly;
- test_a_reply_lost_after_data_is_unknown_and_never_re_sent — the server takes the whole
  message and hangs up before replying: "unknown", one copy, never re-sent (issue 16);
- test_smtp_message_parts_headers_escaping_and_cjk — no header injection from content.

The one test below only keeps this list honest: it fails when one of them is renamed
or removed.
"""

import ast
from pathlib import Path

REFERENCED = ("test_starttls_and_auth",
              "test_a_refused_sign_in_fails_for_good_only_when_the_reply_is_permanent",
              "test_faults_then_recovery_give_each_recipient_exactly_one_copy",
              "test_temporary_failures_stay_open_after_max_attempts_and_a_later_run_sends",
              "test_an_outbox_on_a_full_disk_leaves_no_partial_file",
              "test_interrupted_send_is_not_repeated",
              "test_a_reply_lost_after_data_is_unknown_and_never_re_sent",
              "test_smtp_message_parts_headers_escaping_and_cjk")


def test_16_smtp_faults_are_covered_by_test_digest():
    source = (Path(__file__).parents[1] / "test_digest.py").read_text(encoding="utf-8")
    names = {node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
    assert set(REFERENCED) <= names, sorted(set(REFERENCED) - names)
