"""Labels of real items: validation, joining them to the pool's text, story groups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.exceptions import UsageError
from monitor.labels import default_pool_path, join_pool, load_labels, story_groups

CM, EC = "critical-minerals", "export-controls"
MINERALS = ["lithium", "cobalt", "gallium", "graphite", "nickel", "copper"]
PLACES = ["Chile", "Congo", "China", "Australia", "Canada", "Indonesia"]


def pool_and_labels(tmp_path: Path, n: int = 120) -> tuple[Path, Path]:
    """A small pool of n items written here (varied wording, three kinds) and labels for
    them plus one id that is not in the pool."""
    items, labels = [], []
    for i in range(n):
        mineral, place = MINERALS[i % 6], PLACES[(i // 6) % 6]
        kind = i % 3
        title, text, topics = [
            (f"{place} {mineral} output rises {i % 9 + 2} percent",
             f"Miners in {place} shipped more {mineral} concentrate this quarter.", [CM]),
            (f"{place} tightens licences for {mineral} exports",
             f"Exporters of {mineral} need a permit from the trade ministry, day {i}.", [CM, EC]),
            (f"{place} football league round {i} ends {i % 5}-{i % 4}",
             f"Fans in {place} celebrated late into the night, match {i}.", []),
        ][kind]
        items.append({"id": f"pool:{i}", "lang": "en", "title": title, "text": text,
                      "source": f"wire{i % 10}", "published": f"2025-03-{i % 28 + 1:02d} 10:00"})
        labels.append({"id": f"pool:{i}", "topics": topics, "countries": [], "minerals": [],
                       "by": "test", "how": "written for the test"})
    labels.append({"id": "pool:gone", "topics": [], "countries": [], "by": "test"})
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(item) + "\n" for item in items))
    folder = tmp_path / "labels"
    folder.mkdir(exist_ok=True)
    (folder / "en.jsonl").write_text("".join(json.dumps(label) + "\n" for label in labels))
    return pool, folder


def test_labels_join_the_pools_text_and_name_the_missing(tmp_path: Path) -> None:
    pool, folder = pool_and_labels(tmp_path, n=6)
    records, missing = join_pool(load_labels(folder), pool)
    assert missing == ["pool:gone"]
    assert [r["id"] for r in records] == [f"pool:{i}" for i in range(6)]
    assert records[1]["topics"] == [CM, EC] and records[1]["title"].startswith("Chile")
    assert records[0]["real"] is True and records[0]["lang"] == "en"


def test_the_pools_html_character_references_are_read_as_the_service_reads_them(
        tmp_path: Path) -> None:
    """Some RSS items of the pool keep "&oacute;" and "&#8230;": a feed's are read when it
    is parsed, so training reads them too ("surowc&oacute;w" was three tokens); a bare "&"
    or an unknown name stays as it is."""
    from monitor.parse import html_to_text

    text = "Rz&#261;d ogranicza eksport surowc&oacute;w &amp; chip&oacute;w&#8230; AT&T; R&D"
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"id": "p:1", "lang": "pl", "title": "Eksport &quot;chip&oacute;w&quot;",
                                "text": text}) + "\n", encoding="utf-8")
    (record,), _ = join_pool([{"id": "p:1", "topics": [EC]}], pool)
    assert record["title"] == 'Eksport "chipów"'
    assert record["text"] == "Rząd ogranicza eksport surowców & chipów… AT&T; R&D"
    assert record["text"] == html_to_text(text)            # what a poll stores


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "a", "topics": ["gold"]}', "'topics' must be a list drawn from"),
    ('{"id": "a", "topics": [], "countries": ["China"]}', "ISO 3166-1 alpha-2"),
    ('{"id": "a", "topics": [], "countries": ["UK"]}', "country 'UK' is not an ISO 3166-1 "
                                                      r"alpha-2 code \(the United Kingdom is GB\)"),
    ('{"id": "a", "topics": [], "minerals": ["gold"]}', "'minerals' must be a list"),
    ('{"id": "a", "topics": [], "title": "copied"}', "holds no title or text"),
    ('{"topics": []}', "a string 'id'"),
    ('{"id": "a", ', "not valid JSON"),
])
def test_a_bad_label_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "x.jsonl").write_text('{"id": "ok", "topics": []}\n' + line + "\n")
    with pytest.raises(UsageError, match=message) as info:
        load_labels(tmp_path)
    assert "x.jsonl:2" in str(info.value)


def test_a_line_that_is_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    from monitor.labels import join_pool

    (tmp_path / "x.jsonl").write_bytes(b'{"id": "ok", "topics": []}\n{"id": "caf\xe9"}\n')
    with pytest.raises(UsageError, match=r"x\.jsonl:2: not valid UTF-8"):
        load_labels(tmp_path)
    pool = tmp_path / "pool.jsonl"
    pool.write_bytes(b'{"id": "ok", "title": "t", "text": ""}\n{"id": "b", "title": "\xff"}\n')
    with pytest.raises(UsageError, match=r"pool\.jsonl:2: not valid UTF-8"):
        join_pool([{"id": "ok", "topics": []}], pool)


@pytest.mark.parametrize("field", [{"title": 5}, {"text": ["x"]}, {"lang": 5}])
def test_a_pool_item_whose_text_is_not_a_string_names_pool_line_and_id(
        tmp_path: Path, field: dict) -> None:
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"id": "ok", "title": "t", "text": ""}) + "\n"
                    + json.dumps({"id": "s:2", "title": "t", "text": "", **field}) + "\n")
    key = next(iter(field))
    with pytest.raises(UsageError) as info:
        join_pool([{"id": "ok", "topics": []}, {"id": "s:2", "topics": []}], pool)
    assert str(info.value).startswith(f"{pool}:2: pool item 's:2': {key!r} must be a string")


def test_an_id_labelled_twice_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": "s:1", "topics": []}\n')
    (tmp_path / "b.jsonl").write_text('{"id": "s:1", "topics": ["export-controls"]}\n')
    with pytest.raises(UsageError, match="already labelled at .*a.jsonl:1"):
        load_labels(tmp_path)


def test_story_groups_join_copies_and_source_days() -> None:
    records = [
        {"id": "a", "title": "China curbs gallium exports!", "source": "s1", "published": "2025-01-01"},
        {"id": "b", "title": "China curbs gallium exports", "source": "s2", "published": "2025-01-03"},
        {"id": "c", "title": "Another story entirely here", "source": "s2", "published": "2025-01-03 09:00"},
        {"id": "d", "title": "A third story on its own day", "source": "s2", "published": "2025-01-04"},
        {"id": "e", "title": "short", "source": "", "published": ""},
    ]
    assert story_groups(records) == ["a", "a", "a", "d", "e"]


def test_pool_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_POOL", str(tmp_path / "p.jsonl"))
    assert default_pool_path() == tmp_path / "p.jsonl"
