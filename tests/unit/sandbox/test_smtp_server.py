"""The SMTP sink answers like a submission server, and keeps what it accepts."""

import json
import os
import smtplib
import ssl
import subprocess
import sys
import time

import pytest

from sandbox.smtp_server import SmtpSink, read_messages

PASSWORD = "pw:with/odd@chars"


@pytest.fixture
def sink(tmp_path):
    s = SmtpSink(tmp_path / "smtp", {"alerts": PASSWORD}).start()
    yield s
    s.stop()


def connect(sink, tls=True):
    client = smtplib.SMTP("127.0.0.1", sink.port, timeout=10)
    client.ehlo()
    if tls:
        client.starttls(context=ssl.create_default_context(cafile=sink.ca_path))
        client.ehlo()
    return client


def test_auth_only_after_starttls_and_mail_only_after_auth(sink):
    client = connect(sink, tls=False)
    assert "auth" not in client.esmtp_features, "no AUTH offered in clear"
    assert client.mail("a@example.com")[0] == 530
    client.close()
    client = connect(sink)
    assert sorted(client.esmtp_features["auth"].split()) == ["LOGIN", "PLAIN"]
    assert client.mail("a@example.com")[0] == 530, "authentication required"
    client.rset()
    with pytest.raises(smtplib.SMTPAuthenticationError) as err:
        client.login("alerts", "wrong")
    assert err.value.smtp_code == 535
    with pytest.raises(smtplib.SMTPAuthenticationError):
        client.login("nobody", PASSWORD)
    # smtplib tries each mechanism offered; every attempt is refused.
    assert [r["mechanism"] for r in sink.refused] == ["PLAIN", "LOGIN", "PLAIN", "LOGIN"]
    assert sink.messages() == []
    client.close()


def test_certificate_is_verified_against_its_own_ca(sink):
    client = smtplib.SMTP("127.0.0.1", sink.port, timeout=10)
    client.ehlo()
    with pytest.raises(ssl.SSLCertVerificationError):
        client.starttls(context=ssl.create_default_context())
    client.close()


def test_accepted_mail_is_kept_whole(sink):
    client = connect(sink)
    client.login("alerts", PASSWORD)
    client.sendmail("prefect@example.com", ["a@example.com", "b@example.com"],
                    "From: prefect@example.com\r\nSubject: Flow run x failed\r\n\r\nit failed\r\n")
    client.quit()
    [mail] = sink.messages()
    assert mail["mail_from"] == "prefect@example.com" and mail["rcpt_tos"] == ["a@example.com", "b@example.com"]
    assert mail["login"] == "alerts" and mail["tls"] is True
    assert mail["subject"] == "Flow run x failed" and mail["body"].strip() == "it failed"
    assert "Subject: Flow run x failed" in mail["raw"]
    assert oct(os.stat(os.path.join(sink.mail_dir, os.listdir(sink.mail_dir)[0])).st_mode & 0o777) == "0o600"
    assert sink.wait_for(lambda m: "x failed" in m["subject"], timeout=5) == mail
    with pytest.raises(AssertionError, match="no matching mail"):
        sink.wait_for(lambda m: False, timeout=0)


def test_runs_as_a_process_with_the_password_from_the_environment(tmp_path):
    env = dict(os.environ, SKYFORGE_SMTP_PASSWORD=PASSWORD)
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.smtp_server", "--dir", str(tmp_path / "p"), "--user",
                             "alerts"], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        parts = json.loads(proc.stdout.readline())
        client = smtplib.SMTP("127.0.0.1", parts["port"], timeout=10)
        client.starttls(context=ssl.create_default_context(cafile=parts["ca"]))
        client.login("alerts", PASSWORD)
        client.sendmail("a@example.com", ["b@example.com"], "Subject: s\r\n\r\nb\r\n")
        client.quit()
        deadline = time.monotonic() + 10
        while not read_messages(tmp_path / "p") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [m["subject"] for m in read_messages(tmp_path / "p")] == ["s"]
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert PASSWORD not in " ".join(proc.args)
