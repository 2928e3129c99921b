import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import load_config, masked, parse_config
from monitor.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_has_feeds():
    config = load_config(ROOT / "config" / "monitor.toml")
    assert len(config.feeds) >= 10
    assert {f.lang for f in config.feeds} >= {"en", "de"}


def test_shipped_keywords_mute_round_up_teasers_but_flag_the_news():
    from monitor.keywords import KeywordRules

    rules = KeywordRules.compile(load_config(ROOT / "config" / "monitor.toml").keywords.spec())
    teaser = rules.match("Basic Materials Roundup: Market Talk",
                         "Notes on Iluka Rare Earths and two chemical makers in the latest "
                         "Market Talks.")
    assert teaser.topics == ("critical-minerals",) and teaser.muted == ("latest Market Talks",)
    story = rules.match("Iluka starts rare earths refinery in Western Australia", "")
    assert story.topics == ("critical-minerals",) and story.muted == ()


@pytest.mark.parametrize("title,flagged", [
    ("モーター用ネオジムの価格が上昇", True),          # neodymium
    ("ジスプロシウムの調達先を多様化へ", True),          # dysprosium
    ("네오디뮴 자석 가격 급등", True),
    ("안티몬 수입 길 막혀", True),                     # antimony
    ("タングステン価格が過去最高値", True),              # the price phrases
    ("텅스텐 가격 사상 최고", True),
    ("窒化ガリウムの急速充電器を発売", False),           # a GaN charger: a product
    ("게르마늄 팔찌 과장 광고 적발", False),             # germanium health goods
])
def test_shipped_keywords_name_the_minerals_in_japanese_and_korean(title, flagged):
    from monitor.keywords import KeywordRules

    rules = KeywordRules.compile(load_config(ROOT / "config" / "monitor.toml").keywords.spec())
    assert rules.match(title, "").topics == (("critical-minerals",) if flagged else ())


@pytest.mark.parametrize("text,key", [
    ("[poll]\nintervall_minutes = 5\n", "poll.intervall_minutes: unknown key"),
    ("[poll]\ninterval_minutes = 'often'\n", "poll.interval_minutes"),
    ("[[feeds]]\nname='a'\nurl='ftp://x.example/feed'\n", "feeds[0].url: not an http(s) URL"),
    ("[[feeds]]\nname='a'\nurl='https://x.example/f'\n[[feeds]]\nname='b'\nurl='https://x.example/f'\n",
     "feeds[1].url: duplicate feed URL"),
    ("[[feeds]]\nname='a'\nurl='https://x.example/f'\n[[feeds]]\nname='a'\nurl='https://y.example/f'\n",
     "feeds[1].name: duplicate feed name"),
    ("[[feeds]]\nname='a'\nurl='https://x.example/f'\n[[feeds]]\nname='b'\nurl='HTTPS://X.example:443/f#top'\n",
     "feeds[1].url: duplicate feed URL"),
    ("[[feeds]]\nname='a'\nurl='http://x.example:99999/f'\n", "feeds[0].url: not a valid port"),
    ("[[feeds]]\nname='a'\nurl='http://x.example:abc/f'\n", "feeds[0].url: not a valid port"),
    ("[[feeds]]\nname='a'\nurl='http://x.example:0/f'\n", "feeds[0].url: not a valid port"),
    ("[[feeds]]\nname='a'\nurl='http://x exa.example/f'\n", "feeds[0].url: the host of"),
    ("[keywords]\nexport-controls = ['re:(unclosed']\n", "keywords.export-controls[0]"),
    ("[keywords]\nminerals = ['x']\n", "keywords.minerals"),
    ("[digest]\ntimezone = 'Mars/Olympus'\n", "digest.timezone: unknown time zone"),
    ("[digest]\nsend_at = '25:00'\n", "digest.send_at"),
    ("[digest]\nsend_at = '07:00+02:00'\n", "digest.send_at: a local time of day"),
    ("[digest]\nsend_at = '07:00:00.5'\n", "digest.send_at: a local time of day"),
    ("[digest]\nrecipients = ['not-an-address']\n", "digest.recipients[0]: not an email address"),
    ("[digest]\nsubject = '{date} {oops}'\n", "digest.subject"),
    ("[digest]\nsubject = '{date.year}'\n", "digest.subject: subject may use only"),
    ("[digest]\nsubject = '{lead.__class__}'\n", "digest.subject: subject may use only"),
    ("[digest]\nrecipients = ['a@example.org', 'A@example.org']\n",
     "digest.recipients: 'A@example.org' is listed twice"),
    ("[smtp]\nhost = 'mail'\nsecurity = 'tls'\n", "smtp.security"),
    ("[poll\n", "not valid TOML"),
    ("[[feeds]]\nname='a'\nurl='https://x.example/f'\n[[feeds]]\nname='a '\nurl='https://y.example/f'\n",
     "feeds[1].name: duplicate feed name 'a'"),
    ("[[feeds]]\nname='  '\nurl='https://x.example/f'\n", "feeds[0].name: is blank"),
    ("[[feeds]]\nname=\"two\\nlines\"\nurl='https://x.example/f'\n",
     "feeds[0].name: 'two\\nlines' holds a control character"),
    ("[poll]\nuser_agent = 'x {bogus} {version}'\n", "poll.user_agent: user_agent may use only"),
    ("[poll]\nuser_agent = 'x {0} {'\n", "poll.user_agent"),
    ("[poll]\nallow_private_redirects = 'yes'\n", "poll.allow_private_redirects: Input should be a valid boolean"),
    ("[poll]\nmax_bytes = '15728640'\n", "poll.max_bytes: Input should be a valid integer"),
    ("[[feeds]]\nname='a'\nurl='https://x.example/f'\ninterval_minutes = true\n",
     "feeds[0].interval_minutes: Input should be a valid integer"),
    ("[store]\nbusy_timeout_seconds = true\n", "store.busy_timeout_seconds"),
    ("[serve]\nbehind_proxy = 'no'\n", "serve.behind_proxy: Input should be a valid boolean"),
    ("[poll]\nsilent_after_days = inf\n", "poll.silent_after_days: Input should be less than or equal to 365"),
    ("[[feeds]]\nname='a'\nurl='https://x.example/f'\nsilent_after_days = 1e6\n",
     "feeds[0].silent_after_days: Input should be less than or equal to 365"),
    ("[store]\nurl = 'notaurl'\n", "store.url: not a database URL"),
    # what an analyst writing a config by hand types: pydantic's "a valid tuple" and "input is
    # too short" said nothing of what was wanted
    ("[digest]\nsend_at = '7:00'\n",
     "digest.send_at: expected a local time of day, HH:MM or HH:MM:SS (e.g. \"07:00\"), got '7:00'"),
    ("[digest]\nrecipients = 'ana@example.org'\n",
     "digest.recipients: expected a list such as [\"ana@example.org\"], got 'ana@example.org'"),
    ("[keywords]\nmute = 'mineral water'\n", "keywords.mute: expected a list such as [\"mineral water\"]"),
    ("[feeds]\nname='a'\nurl='https://x.example/f'\n",
     "feeds: expected a list of tables: write each feed as [[feeds]] (two brackets), not [feeds]"),
    # the other way round, and a section given a value: pydantic named its own classes
    # ("Input should be a valid dictionary or instance of KeywordsConfig")
    ("[[keywords]]\ncritical-minerals = ['rare earth']\n",
     "keywords: expected one table: write [keywords] (one bracket), not [[keywords]]"),
    ("keywords = ['rare earth']\n", "keywords: expected a table of keys, got ['rare earth']"),
    ("digest = 'daily'\n", "digest: expected a table of keys, got 'daily'"),
    # an empty outbox wrote the digests into whatever folder a command ran in; a host that is
    # none passed `config check` and failed `monitor serve` blaming a --host never given
    ("[digest]\noutbox_dir = ''\n", "digest.outbox_dir: an empty path would write the digests"),
    ("[digest]\noutbox_dir = '  '\n", "digest.outbox_dir: an empty path"),
    ("[serve]\nhost = 'not a host!!'\n", "serve.host: 'not a host!!' is not an address to listen on"),
    ("[serve]\nhost = 'http://0.0.0.0'\n", "serve.host: 'http://0.0.0.0' is not an address"),
])
def test_bad_config_names_file_and_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(str(path)), err.value
    assert key in str(err.value), err.value


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_cli_exits_2_with_key_named_message(tmp_path):
    path = write(tmp_path, "[poll]\nconcurrency = 0\n")
    proc = subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "config", "check"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{path}: poll.concurrency" in proc.stderr


def test_password_comes_from_environment_and_is_masked(monkeypatch):
    config = parse_config({"smtp": {"host": "mail.example", "password_env": "TEST_SMTP_PW"}})
    monkeypatch.setenv("TEST_SMTP_PW", "s3cret-value")
    assert config.smtp.password() == "s3cret-value"
    assert "s3cret-value" not in repr(masked(config))
    assert masked(config)["smtp"]["password"].startswith("********")


def test_missing_password_env_is_a_config_error(monkeypatch):
    monkeypatch.delenv("TEST_SMTP_PW", raising=False)
    config = parse_config({"smtp": {"host": "mail.example", "password_env": "TEST_SMTP_PW"}})
    with pytest.raises(ConfigError, match="TEST_SMTP_PW is not set"):
        config.smtp.password()


@pytest.mark.parametrize(("host", "warned"), [("mail.example", True), ("10.0.0.5", True), ("127.0.0.1", False),
                                           ("localhost", False), ("::1", False)])
def test_config_check_warns_of_a_login_without_encryption_beyond_this_machine(monkeypatch, host, warned):
    """security = "none" with a username sent the password in clear to a remote relay, and
    `config check` said nothing."""
    from monitor.config import config_warnings

    monkeypatch.setenv("TEST_SMTP_PW", "x")
    config = parse_config({"smtp": {"host": host, "port": 25, "security": "none", "username": "ana",
                                    "password_env": "TEST_SMTP_PW"}})
    said = [w for w in config_warnings(config) if w.startswith("smtp.security")]
    assert bool(said) == warned
    if warned:
        assert f"the mail password goes to {host} unencrypted" in said[0] and '"starttls"' in said[0]
    anonymous = parse_config({"smtp": {"host": host, "port": 25, "security": "none"}})
    assert not any(w.startswith("smtp.security") for w in config_warnings(anonymous))


def test_config_check_warns_of_an_unset_password_variable(monkeypatch):
    from monitor.config import config_warnings

    monkeypatch.delenv("TEST_SMTP_PW", raising=False)
    config = parse_config({"smtp": {"host": "mail.example", "password_env": "TEST_SMTP_PW"}})
    assert any("smtp.password_env: $TEST_SMTP_PW is not set" in w for w in config_warnings(config))
    monkeypatch.setenv("TEST_SMTP_PW", "x")
    assert not any("smtp" in w for w in config_warnings(config))


def test_user_info_in_every_url_is_masked():
    config = parse_config({"digest": {"review_url": "https://desk:pw-1@monitor.example"},
                           "poll": {"contact_url": "https://bob:pw-2@example.org/contact"}})
    shown = str(masked(config))
    assert "pw-1" not in shown and "pw-2" not in shown and "desk:***@" in shown


def test_password_key_in_file_is_rejected(tmp_path):
    path = write(tmp_path, "[smtp]\nhost='m'\npassword='hunter2'\n")
    with pytest.raises(ConfigError, match="smtp.password: unknown key"):
        load_config(path)


def test_store_url_from_environment_overrides_and_is_masked(monkeypatch):
    monkeypatch.setenv("MONITOR_STORE_URL", "postgresql+psycopg://u:pw@db/monitor")
    config = parse_config({})
    assert config.store_url() == "postgresql+psycopg://u:pw@db/monitor"
    assert "pw@" not in masked(config)["store"]["url"]


def test_every_example_key_is_read_by_the_loader():
    """Docs drift: the example config uses every key the loader knows and no other."""
    import tomllib

    from monitor.config import Config

    data = tomllib.loads((ROOT / "config" / "monitor.toml").read_text())
    for section in ("store", "poll", "classifier", "digest"):
        model = Config.model_fields[section].annotation
        assert set(data[section]) == set(model.model_fields), section
    assert set(data["keywords"]) == {"critical-minerals", "export-controls", "mute"}
    text = (ROOT / "config" / "monitor.toml").read_text()
    from monitor.config import SmtpConfig
    for key in SmtpConfig.model_fields:
        assert f"# {key} =" in text, f"smtp.{key} not documented in the example config"


@pytest.mark.parametrize(("value", "fixed"), [("auto", None), (0.4, 0.4), (0.7, 0.7)])
def test_threshold_is_auto_or_one_number(value, fixed):
    assert parse_config({"classifier": {"threshold": value}}).classifier.fixed_threshold() == fixed


@pytest.mark.parametrize("value", [1.5, 0, "x", True])
def test_a_bad_threshold_names_the_key(value):
    with pytest.raises(ConfigError, match='classifier.threshold: expected "auto" or a number'):
        parse_config({"classifier": {"threshold": value}})


def test_an_empty_config_is_valid_but_warned_about(tmp_path):
    from monitor.config import config_warnings

    assert len(config_warnings(parse_config({}))) == 3          # no feeds, recipients, keywords
    assert config_warnings(load_config(ROOT / "config" / "monitor.toml")) == []
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(empty), "config", "check"],
                          capture_output=True, text=True)
    assert done.returncode == 0
    assert "warning: no [[feeds]] configured" in done.stderr
    assert "warning: digest.recipients is empty" in done.stderr


def test_review_link_and_sign_in_secrets_come_from_the_environment_and_are_masked(monkeypatch):
    from monitor.config import config_warnings

    data = {"digest": {"review_url": "https://monitor.example/", "recipients": ["a@example.org"]},
            "serve": {"username": "desk", "password_env": "DESK_PW"}, "feeds": [
                {"name": "f", "url": "https://f.example/rss"}]}
    monkeypatch.delenv("MONITOR_REVIEW_KEY", raising=False)
    monkeypatch.delenv("DESK_PW", raising=False)
    config = parse_config(data)
    assert config.digest.review_url == "https://monitor.example" and config.digest.review_key() is None
    assert any("no review links" in w for w in config_warnings(config))
    shown = masked(config)
    assert shown["digest"]["review_key"] == "(not set: $MONITOR_REVIEW_KEY)"
    assert shown["serve"]["password"] == "(not set)"
    monkeypatch.setenv("MONITOR_REVIEW_KEY", "short")                 # too short to be a key
    assert config.digest.review_key() is None
    monkeypatch.setenv("MONITOR_REVIEW_KEY", "k3y-k3y-k3y-k3y-k3y-k3y")
    monkeypatch.setenv("DESK_PW", "pw-secret-1")
    shown = masked(config)
    assert "k3y" not in str(shown) and "pw-secret-1" not in str(shown)
    assert shown["digest"]["review_key"].startswith("********")
    assert not any("review" in w for w in config_warnings(config))
    with pytest.raises(ConfigError, match="review_url"):
        parse_config({"digest": {"review_url": "javascript:alert(1)"}})


@pytest.mark.parametrize(("url", "said"), [
    ("http://127.0.0.1:8765/?src=mail", "has a query"), ("https://monitor.example/#x", "has a fragment"),
    ("https://monitor.example/monitor/", "has a path"), ("https://m.example/p?q=1", "has a path and a query"),
])
def test_a_review_url_with_a_path_query_or_fragment_is_refused(url, said):
    """The links are "<review_url>/items/N?t=…": "…/?src=mail/items/5?t=…" opened the list
    with no session, and a path prefix pointed where `monitor serve` never answers."""
    with pytest.raises(ConfigError, match=f"digest.review_url: .*{said}: give the address"):
        parse_config({"digest": {"review_url": url}})


@pytest.mark.parametrize("command", [["poll", "--all"], ["feeds"], ["review", "list"], ["config", "check"]])
def test_a_store_without_its_driver_is_a_config_error_naming_the_file(tmp_path, command):
    from click.testing import CliRunner

    import monitor.cli

    path = write(tmp_path, "[store]\nurl = 'mysql+nodriver://x/y'\n")
    result = CliRunner().invoke(monitor.cli.cli, ["--config", str(path), *command])
    assert result.exit_code == 2
    assert f"{path}: store.url: the database driver is missing" in result.output


def test_config_check_warns_of_a_missing_model_and_folders_that_cannot_be_made(tmp_path):
    from monitor.config import config_warnings

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    config = parse_config({"store": {"url": f"sqlite:///{blocker / 'db' / 'm.db'}"},
                           "classifier": {"model": str(tmp_path / "none.skops")},
                           "digest": {"outbox_dir": str(blocker / "outbox")}})
    warned = "\n".join(config_warnings(config))
    assert "classifier.model: no model file at" in warned
    assert f"store.url: the database's folder cannot be made: {blocker} is a file" in warned
    assert f"digest.outbox_dir: the digest cannot be written there: {blocker} is a file" in warned
    store = subprocess.run([sys.executable, "-m", "monitor", "--config", str(write(tmp_path, (
        f'[store]\nurl = "sqlite:///{blocker / "db" / "m.db"}"\n'))), "poll"], capture_output=True, text=True)
    assert store.returncode == 1 and "cannot make the database's folder" in store.stderr
    assert "Traceback" not in store.stderr


def test_config_check_warns_of_the_folder_of_the_store_monitor_store_url_names(tmp_path, monkeypatch):
    """$MONITOR_STORE_URL overrides store.url: the folder warning is about the store the
    commands will open, not the one the file names."""
    from monitor.config import config_warnings

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("MONITOR_STORE_URL", f"sqlite:///{blocker / 'db' / 'm.db'}")
    config = parse_config({"store": {"url": f"sqlite:///{tmp_path / 'var' / 'm.db'}"}})
    warned = "\n".join(config_warnings(config))
    assert f"$MONITOR_STORE_URL: the database's folder cannot be made: {blocker} is a file" in warned


@pytest.mark.parametrize("command", [["config", "check"], ["poll"], ["feeds"]])
def test_a_store_port_that_is_no_number_is_a_config_error_not_a_traceback(tmp_path, command):
    """SQLAlchemy raised a bare ValueError for it: a traceback and exit 1."""
    from click.testing import CliRunner

    import monitor.cli

    path = write(tmp_path, "[store]\nurl = 'postgresql+psycopg://u:S3CRET@127.0.0.1:notaport/m'\n")
    result = CliRunner().invoke(monitor.cli.cli, ["--config", str(path), *command])
    assert result.exit_code == 2, result.output
    assert "store.url: not a database URL: its port is not a number" in result.output
    assert "'notaport'" in result.output and "S3CRET" not in result.output


def test_a_bad_store_url_from_the_environment_is_named_as_such(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import monitor.cli

    monkeypatch.setenv("MONITOR_STORE_URL", "notaurl")
    path = write(tmp_path, "[store]\nurl = 'sqlite:///m.db'\n")
    result = CliRunner().invoke(monitor.cli.cli, ["--config", str(path), "feeds"])
    assert result.exit_code == 2 and "$MONITOR_STORE_URL: not a database URL" in result.output


def test_config_check_warns_of_a_model_file_changed_since_training(tmp_path):
    import shutil

    from monitor.config import config_warnings

    model = tmp_path / "classifier.skops"
    shutil.copy(ROOT / "models" / "classifier.skops", model)
    shutil.copy(ROOT / "models" / "classifier.card.json", tmp_path / "classifier.card.json")
    assert not any("classifier" in w for w in config_warnings(parse_config({"classifier": {"model": str(model)}})))
    data = bytearray(model.read_bytes())
    data[5000] ^= 0xFF
    model.write_bytes(bytes(data))
    warned = config_warnings(parse_config({"classifier": {"model": str(model)}}))
    assert any("does not match its model card" in w for w in warned)


def test_a_config_error_found_after_loading_names_the_file_too(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_SMTP_PW", raising=False)
    path = write(tmp_path, f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n[digest]\n'
                          'recipients = ["a@example.org"]\n[smtp]\nhost = "127.0.0.1"\n'
                          'username = "u"\npassword_env = "NOPE_SMTP_PW"\n')
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(path), "digest"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert f"error: {path}: smtp.password_env: environment variable NOPE_SMTP_PW is not set" in done.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::1", "[::1]", "::", "localhost",
                                  "monitor.internal", "fe80::1%eth0", "10.0.0.5"])
def test_addresses_to_listen_on_are_accepted(tmp_path, host):
    assert load_config(write(tmp_path, f"[serve]\nhost = '{host}'\n")).serve.host == host


@pytest.mark.parametrize("fault", ["arrays changed", "arrays cut", "prepared otherwise",
                                   "another scikit-learn", "no scikit-learn"])
def test_config_check_warns_of_every_model_fault_the_service_would_refuse(tmp_path, fault):
    """What makes the service flag by keywords alone must not pass `config check`: the
    arrays it classifies with changed or cut, a card whose text preparation is not this
    code's (a model trained before an upgrade), a card of another scikit-learn or none.
    Each was "valid" without a word."""
    import json
    import shutil

    from monitor.classify import SkopsClassifier
    from monitor.config import config_warnings
    from monitor.exceptions import ClassifierError

    model = tmp_path / "classifier.skops"
    for name in ("classifier.skops", "classifier.card.json", "classifier.linear.npz"):
        shutil.copy(ROOT / "models" / name, tmp_path / name)
    config = parse_config({"classifier": {"model": str(model)}})
    assert not any("classifier" in w for w in config_warnings(config))
    arrays, card_file = tmp_path / "classifier.linear.npz", tmp_path / "classifier.card.json"
    card = json.loads(card_file.read_text(encoding="utf-8"))
    if fault == "arrays changed":
        data = bytearray(arrays.read_bytes())
        data[len(data) // 2] ^= 0xFF
        arrays.write_bytes(bytes(data))
    elif fault == "arrays cut":
        arrays.write_bytes(arrays.read_bytes()[:1000])
    elif fault == "prepared otherwise":
        card["preparation"] = "0" * 16
    elif fault == "another scikit-learn":
        card["sklearn_version"] = "0.24.2"
    else:
        del card["sklearn_version"]
    card_file.write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ClassifierError) as refused:         # what the service meets
        SkopsClassifier.load(model)
    warned = [w for w in config_warnings(config) if w.startswith("classifier.model:")]
    assert len(warned) == 1 and str(refused.value) in warned[0], (warned, refused.value)
