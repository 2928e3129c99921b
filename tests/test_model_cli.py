"""`monitor classify` and `monitor evaluate` read the files people hand them: JSON Lines with
a byte-order mark or Windows line ends, a JSON array, null texts; errors name file and line."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import monitor.cli

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "monitor.toml"

# Written for these tests.
RECORDS = [
    {"id": "a", "lang": "en", "title": "China tightens export controls on gallium and germanium",
     "text": "Exporters of the two metals now need a licence from the commerce ministry.",
     "topics": ["critical-minerals", "export-controls"], "countries": ["CN"]},
    {"id": "b", "lang": "en", "title": "Local bakery wins a prize for its rye bread",
     "text": None, "topics": [], "countries": []},
    {"id": "c", "lang": "de", "title": "Neue Lithiummine in Portugal genehmigt", "text": None,
     "topics": ["critical-minerals"], "countries": ["PT"]},
]


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(monitor.cli.cli, ["--config", str(CONFIG), *args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


def jsonl(records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


@pytest.fixture(scope="module")
def plain_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "gold.jsonl"
    path.write_text(jsonl(RECORDS), encoding="utf-8")
    return json.loads(run("evaluate", str(path), "--json").stdout)


def test_evaluate_reads_null_texts_as_empty(plain_report):
    assert plain_report["items"] == 3
    assert plain_report["flagged"]["support"] == 2
    assert plain_report["thresholds"]["source"].startswith("model card")


@pytest.mark.parametrize("form", ["bom-crlf", "array"])
def test_evaluate_takes_other_forms_of_the_same_records(tmp_path, plain_report, form):
    if form == "array":
        path = tmp_path / "gold.json"
        path.write_text(json.dumps(RECORDS, indent=2), encoding="utf-8")
    else:
        path = tmp_path / "gold.jsonl"
        path.write_bytes(b"\xef\xbb\xbf" + jsonl(RECORDS).replace("\n", "\r\n\r\n").encode())
    report = json.loads(run("evaluate", str(path), "--json").stdout)
    assert report["flagged"] == plain_report["flagged"]
    assert report["languages"].keys() == plain_report["languages"].keys()


def test_a_line_separator_inside_a_string_does_not_end_the_record(tmp_path):
    """U+2028, U+2029 and U+0085 may stand raw inside a JSON string (json.dumps writes them
    so); classify and evaluate cut lines there and refused the file, while `monitor train
    --dev` read it."""
    records = [dict(RECORDS[0], text="Exporters now need a licence.\u2028Second\u2029line\x85."),
               RECORDS[1]]
    path = tmp_path / "gold.jsonl"
    path.write_text(jsonl(records), encoding="utf-8")
    lines = run("classify", str(path)).stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]
    assert json.loads(run("evaluate", str(path), "--json").stdout)["flagged"]["support"] == 1


def test_evaluate_names_the_line_without_topics(tmp_path):
    path = tmp_path / "gold.jsonl"
    unlabelled = {k: v for k, v in RECORDS[1].items() if k != "topics"}
    path.write_text(jsonl(RECORDS[:1]) + "\n" + jsonl([unlabelled]), encoding="utf-8")
    result = run("evaluate", str(path), code=2)
    assert f"{path}:3: a labelled record needs a topics list" in result.output


def test_classify_warns_of_an_empty_record_and_goes_on(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(jsonl([{"id": "e", "title": "", "text": None}, RECORDS[0]]), encoding="utf-8")
    result = run("classify", str(path))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["e", "a"]
    assert not lines[0]["flagged"] and lines[1]["flagged"]
    assert f"warning: {path}:1: neither title nor text" in result.stderr


def test_classify_reads_a_record_as_the_poll_stores_it_to_20000_characters(tmp_path):
    """The poll keeps an entry's first 20,000 characters of text (and 1,000 of title);
    classify had read all of a record, so past the cut it gave another verdict than the
    service would (and a 10 MB text took a gigabyte)."""
    from monitor.parse import MAX_TEXT, MAX_TITLE

    filler = ("The town council met on Tuesday to discuss the new bakery. " * 400)[:MAX_TEXT]
    long = {"id": "long", "title": "Council minutes " * 100, "text": filler + " Japan bans gallium exports."}
    cut = {"id": "cut", "title": long["title"][:MAX_TITLE], "text": filler}
    path = tmp_path / "in.jsonl"
    path.write_text(jsonl([long, cut]), encoding="utf-8")
    first, second = (json.loads(line) for line in run("classify", str(path)).stdout.splitlines())
    assert {**first, "id": "cut"} == second
    assert "JP" not in first["countries"] and "gallium" not in first["minerals"]


@pytest.mark.parametrize("content, message", [
    ('[{"title": 3, "text": ""}]', "item 1: 'title' must be a string (or null)"),
    ('{"title": "x", "text": ""}\n["x"]\n', ":2: expected a JSON object"),
    ('{"title": "x"', ":1: not valid JSON"),
    ('{"title": "x", "text": ""}\n{"title": "x", "lang": 5}\n', ":2: 'lang' must be a string"),
    ('[{"title": "x", "lang": ["en"]}]', ": item 1: 'lang' must be a string"),
    # JSON that Python's reader refuses with other errors: a traceback and exit 1 before
    ('{"title": "x", "n": ' + "9" * 5000 + "}\n", ":1: not valid JSON: Exceeds the limit"),
    ('{"title": "x", "n": ' + "[" * 100_000 + "]" * 100_000 + "}\n", ":1: not valid JSON: nested too deeply"),
    ("[" + "[" * 100_000 + "]" * 100_000 + "]", ": not valid JSON: nested too deeply"),
])
def test_classify_names_what_is_wrong_and_where(tmp_path, content, message):
    path = tmp_path / "in.json"
    path.write_text(content, encoding="utf-8")
    result = run("classify", str(path), code=2)
    assert f"{path}{message}" in result.output or f"{path}: {message}" in result.output


@pytest.mark.parametrize("change, message", [
    ({"topics": ["bogus"]}, "unknown topic 'bogus'"),
    ({"countries": "CN"}, "countries must be a list of codes"),
    ({"countries": ["cn"]}, "country 'cn' is not an ISO 3166-1 alpha-2 code"),
    ({"countries": ["China"]}, "country 'China' is not an ISO 3166-1 alpha-2 code"),
    ({"countries": ["UK"]}, "country 'UK' is not an ISO 3166-1 alpha-2 code in capitals such as "
                            "\"CN\" (the United Kingdom is GB)"),
    ({"countries": ["EU"]}, "country 'EU' is not an ISO 3166-1 alpha-2 code"),
    ({"lang": 5}, "'lang' must be a string"),
])
def test_evaluate_refuses_labels_it_would_misread(tmp_path, change, message):
    path = tmp_path / "gold.jsonl"
    path.write_text(jsonl([RECORDS[0], {**RECORDS[2], **change}]), encoding="utf-8")
    result = run("evaluate", str(path), code=2)
    assert f"{path}:2: {message}" in result.output


def test_evaluate_counts_one_language_however_its_code_is_written(tmp_path):
    records = [dict(RECORDS[0], lang="EN"), dict(RECORDS[1], lang="en-GB"), RECORDS[2]]
    path = tmp_path / "gold.jsonl"
    path.write_text(jsonl(records), encoding="utf-8")
    report = json.loads(run("evaluate", str(path), "--json").stdout)
    assert sorted(report["languages"]) == ["de", "en"] and report["languages"]["en"]["items"] == 2


def test_evaluate_scores_no_countries_for_a_topic_only_file(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(jsonl({k: v for k, v in r.items() if k != "countries"} for r in RECORDS),
                    encoding="utf-8")
    text = run("evaluate", str(path), "--keywords-only").stdout
    assert "countries (micro)" not in text and "countries F1" not in text
    assert "countries not scored: no gold record has a countries list" in text


def test_evaluate_without_a_model_is_an_error_not_a_keyword_score(tmp_path):
    (tmp_path / "broken.skops").write_bytes(b"not a model")
    config = tmp_path / "monitor.toml"
    config.write_text(CONFIG.read_text(encoding="utf-8").replace(
        'model = ""', f"model = {json.dumps(str(tmp_path / 'broken.skops'))}", 1),
        encoding="utf-8")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(jsonl(RECORDS), encoding="utf-8")
    result = CliRunner().invoke(monitor.cli.cli, ["--config", str(config), "evaluate", str(gold)])
    assert result.exit_code == 2 and "no model to evaluate" in result.output
    result = CliRunner().invoke(monitor.cli.cli, ["--config", str(config), "evaluate", str(gold),
                                                  "--keywords-only"])
    assert result.exit_code == 0, result.output


def test_standard_input_is_read_as_a_file_is(tmp_path):
    result = CliRunner().invoke(monitor.cli.cli, ["--config", str(CONFIG), "classify", "-"],
                                input=b'{"title": "\xff\xfe", "text": ""}\n')
    assert result.exit_code == 2 and "<stdin>: cannot read" in result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    for source, stdin in (("-", b""), (str(empty), None)):
        result = CliRunner().invoke(monitor.cli.cli, ["--config", str(CONFIG), "classify", source],
                                    input=stdin)
        assert result.exit_code == 0
        assert "neither title nor text" in result.stderr
        assert json.loads(result.stdout)["flagged"] is False


@pytest.mark.parametrize("thresholds", [{"critical-minerals": "abc", "export-controls": 0.5},
                                        [0.5]])
def test_a_hand_edited_card_leaves_the_model_unavailable_and_says_why(tmp_path, thresholds):
    """A card whose thresholds are not numbers for the topics: classify flags by keywords
    and warns (as for a tampered model), evaluate stops, config check warns; never a
    traceback, never 0.5 applied while the report claims the card's thresholds."""
    import shutil

    from monitor.config import config_warnings, parse_config

    for name in ("classifier.skops", "classifier.card.json", "classifier.linear.npz"):
        shutil.copy(ROOT / "models" / name, tmp_path / name)
    card_file = tmp_path / "classifier.card.json"
    card = json.loads(card_file.read_text(encoding="utf-8"))
    card["thresholds"]["default"] = thresholds
    card_file.write_text(json.dumps(card), encoding="utf-8")
    model = tmp_path / "classifier.skops"
    config = tmp_path / "monitor.toml"
    config.write_text(CONFIG.read_text(encoding="utf-8").replace(
        'model = ""', f"model = {json.dumps(str(model))}", 1), encoding="utf-8")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(jsonl(RECORDS), encoding="utf-8")
    said = f"model card {card_file}: thresholds.default"

    def invoke(*args):
        return CliRunner().invoke(monitor.cli.cli, ["--config", str(config), *args])

    classified = invoke("classify", str(gold))
    assert classified.exit_code == 0, classified.output
    lines = [json.loads(line) for line in classified.stdout.splitlines() if line.startswith("{")]
    assert lines and all("classifier unavailable" in line["reasons"] for line in lines)
    evaluated = invoke("evaluate", str(gold), "--json")
    assert evaluated.exit_code == 2 and "no model to evaluate" in evaluated.output
    assert "Traceback" not in classified.output + evaluated.output
    warned = config_warnings(parse_config({"classifier": {"model": str(model)}}))
    assert any(said in w for w in warned), warned


@pytest.mark.parametrize("content", ["", "\n  \n", "[]"])
@pytest.mark.parametrize("command", [["classify"], ["evaluate", "--keywords-only"]])
def test_a_file_without_records_is_warned_of(tmp_path, content, command):
    path = tmp_path / "in.jsonl"
    path.write_text(content, encoding="utf-8")
    result = run(command[0], str(path), *command[1:])
    assert f"warning: no records in {path}" in result.stderr


def test_evaluate_joins_label_files_to_the_pool_by_id(tmp_path):
    """Our label files hold ids, not text: `monitor evaluate` on one (as the README cites for
    a round kept for measuring) warned of 1,040 empty records and scored nothing."""
    from test_labels import pool_and_labels

    pool, folder = pool_and_labels(tmp_path, n=12)
    labels = [json.loads(line) for line in (folder / "en.jsonl").read_text().splitlines()]
    known = tmp_path / "known.jsonl"
    known.write_text(jsonl([r for r in labels if r["id"] != "pool:gone"]), encoding="utf-8")
    bare = run("evaluate", str(known), "--json")
    assert "neither title nor text" in bare.stderr
    joined = run("evaluate", str(known), "--json", "--pool", str(pool))
    assert "neither title nor text" not in joined.stderr
    report = json.loads(joined.stdout)
    assert report["flagged"]["support"] == 8 and report["flagged"]["recall"] > 0.5
    gone = tmp_path / "gone.jsonl"
    gone.write_text(jsonl(labels), encoding="utf-8")
    refused = run("evaluate", str(gone), "--pool", str(pool), code=2)
    assert f"{gone}:13: id 'pool:gone' is not in {pool}" in refused.output
