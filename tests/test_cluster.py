"""Near-duplicate clustering on pairs shaped like real syndication (written for the project)."""

from dataclasses import dataclass
from datetime import datetime, timezone

from monitor.cluster import (THRESHOLD, cluster, jaccard, merge_languages, near_duplicates, shingles, title_anchors,
                             without_dateline)

WIRE = ("China tightens export licensing for gallium and germanium",
        "BEIJING (Reuters) - China's commerce ministry said on Tuesday that exporters of gallium "
        "and germanium products must obtain licences for every shipment from August 1, citing "
        "national security. The two metals are used in chips, solar cells and night-vision "
        "equipment, and China produces most of the world's supply.")
# The same wire copy as a portal runs it: headline tail, one sentence trimmed.
PORTAL = ("China tightens export licensing for gallium and germanium - MarketScreener",
          "BEIJING (Reuters) - China's commerce ministry said on Tuesday that exporters of gallium "
          "and germanium products must obtain licences for every shipment from August 1, citing "
          "national security. The two metals are used in chips, solar cells and night-vision equipment.")
# The same story lightly edited by a second outlet.
EDITED = ("Beijing tightens export licensing for gallium, germanium",
          "China's commerce ministry said on Tuesday that exporters of gallium and germanium "
          "products must obtain licences for every shipment from August 1, citing national "
          "security. The two metals are used in chips, solar cells and night-vision equipment, "
          "and China produces most of the world's supply, the ministry noted.")
# A different story on the same subject.
OTHER = ("Gallium prices jump in Rotterdam after Chinese licensing move",
         "Free-market gallium prices rose 18% in a week as traders in Rotterdam scrambled for "
         "material outside China, where exporters now need licences for each shipment.")
ZH_A = ("商务部：对镓锗相关物项实施出口管制",
        "商务部、海关总署发布公告，决定自8月1日起对镓、锗相关物项实施出口管制，未经许可不得出口。")
ZH_B = ("商务部对镓锗相关物项实施出口管制",
        "商务部、海关总署今日发布公告，决定自8月1日起对镓、锗相关物项实施出口管制，未经许可不得出口。")


def test_syndicated_copies_are_above_and_other_stories_below_threshold():
    wire, portal, edited, other = (shingles(*d) for d in (WIRE, PORTAL, EDITED, OTHER))
    assert jaccard(wire, portal) >= THRESHOLD
    assert jaccard(wire, edited) >= THRESHOLD
    assert jaccard(wire, other) < 0.2


def test_cluster_groups_copies_and_names_them_by_smallest_id():
    ids = [30, 10, 20, 40, 50, 60]
    result = cluster(ids, [PORTAL, WIRE, EDITED, OTHER, ZH_A, ZH_B])
    assert result[30] == result[10] == result[20] == 10
    assert result[40] == 40
    assert result[50] == result[60] == 50


def test_many_unrelated_articles_stay_apart():
    docs = [(f"Story {i} about tin smelter number {i}", f"Plant {i} in town {i * 7} restarted line {i % 5}.")
            for i in range(300)]
    result = cluster(list(range(300)), docs)
    assert sum(1 for k, v in result.items() if k != v) == 0


# The wire copy as a regional site runs it: its own dateline, the last two sentences cut.
DATELINED = ("China tightens export licensing for gallium and germanium",
             "BEIJING, June 3 (Wire Service) - China's commerce ministry said on Tuesday that exporters "
             "of gallium and germanium products must obtain licences for every shipment.")
DPA_A = ("Seltene Erden: Japan und USA vereinbaren Zusammenarbeit",
         "TOKIO (dpa-AFX) - Japan und die USA wollen bei der Versorgung mit seltenen Erden enger "
         "zusammenarbeiten. Beide Regierungen unterzeichneten am Montag eine Vereinbarung über "
         "gemeinsame Vorräte und Investitionen in Minen außerhalb Chinas. Peking hatte zuvor "
         "Ausfuhrkontrollen für mehrere Metalle verhängt.")
DPA_B = ("Japan und USA vereinbaren Zusammenarbeit bei seltenen Erden",
         "Japan und die USA wollen bei der Versorgung mit seltenen Erden enger zusammenarbeiten. "
         "Beide Regierungen unterzeichneten am Montag eine Vereinbarung über gemeinsame Vorräte "
         "und Investitionen in Minen außerhalb Chinas.")


def test_datelines_and_trimmed_endings_do_not_split_a_wire_story():
    assert jaccard(shingles(*WIRE), shingles(*DATELINED)) < THRESHOLD        # Jaccard alone misses it
    assert near_duplicates(shingles(*WIRE), shingles(*DATELINED))
    assert near_duplicates(shingles(*DPA_A), shingles(*DPA_B))
    assert without_dateline(DPA_A[1]).startswith("Japan und die USA")
    assert without_dateline("新华社北京6月3日电 商务部发布公告") == "商务部发布公告"
    assert without_dateline("China's commerce ministry said") == "China's commerce ministry said"
    result = cluster([1, 2, 3, 4, 5], [WIRE, DATELINED, OTHER, DPA_A, DPA_B])
    assert result == {1: 1, 2: 1, 3: 3, 4: 4, 5: 4}
    assert not near_duplicates(shingles(*WIRE), shingles(*OTHER))


@dataclass
class Item:
    id: int
    language: str
    title: str
    countries: tuple = ("CL", "KR")
    minerals: tuple = ("lithium",)
    topics: tuple = ("critical-minerals",)
    published: datetime = datetime(2025, 6, 3, 8, 0, tzinfo=timezone.utc)


def test_one_story_in_two_languages_is_merged_only_on_an_anchor():
    items = [Item(1, "en", "Codelco signs 20,000-tonne lithium offtake with Korean cathode maker"),
             Item(2, "de", "Codelco unterzeichnet Lithium-Abnahmevertrag mit koreanischem Hersteller"),
             Item(3, "zh", "智利国家铜业与韩国正极材料厂签署2万吨锂供应协议"),
             Item(4, "es", "Codelco firma acuerdo de litio con fabricante coreano",
                  published=datetime(2025, 6, 4, 9, 0, tzinfo=timezone.utc)),            # another day
             Item(5, "de", "Chile und Korea: Lithium-Gespräche in Seoul", countries=("CL",)),
             Item(6, "pl", "Chile i Korea: 20 000 ton litu", minerals=("lithium", "copper")),
             Item(7, "de", "Korea kauft chilenisches Lithium für 2026")]
    assert title_anchors(items[0].title) == {"codelco", "20000"}      # no country, no mineral, no year
    assert title_anchors(items[6].title) == set()
    merged = merge_languages({i.id: i.id for i in items}, items)
    assert merged == {1: 1, 2: 1, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7}


def test_the_same_day_is_a_day_of_the_digests_time_zone():
    """23:50 and 00:10 UTC are one morning in Tokyo: one story there, two days in UTC."""
    from zoneinfo import ZoneInfo

    items = [Item(1, "en", "Codelco signs 20,000-tonne lithium offtake",
                  published=datetime(2025, 6, 3, 23, 50, tzinfo=timezone.utc)),
             Item(2, "de", "Codelco unterzeichnet Lithium-Abnahmevertrag",
                  published=datetime(2025, 6, 4, 0, 10, tzinfo=timezone.utc))]
    assert merge_languages({1: 1, 2: 2}, items, ZoneInfo("Asia/Tokyo")) == {1: 1, 2: 1}
    assert merge_languages({1: 1, 2: 2}, items) == {1: 1, 2: 2}


BOILERPLATE = ("The commerce ministry said the measures protect national security and interests and "
               "fulfil international obligations such as non-proliferation. Exporters must apply "
               "for a licence and report end users; violations will be punished under the export "
               "control law, the ministry said in a statement on its website on Thursday.")


def test_two_announcements_sharing_boilerplate_stay_two_stories():
    antimony = ("China imposes export controls on antimony",
                f"China will restrict exports of antimony and its products from September 15. {BOILERPLATE}")
    tungsten = ("China imposes export controls on tungsten",
                f"China will restrict exports of tungsten and its products from February 1. {BOILERPLATE}")
    assert near_duplicates(shingles(*antimony), shingles(*tungsten))     # texts alike …
    assert cluster([1, 2], [antimony, tungsten]) == {1: 1, 2: 2}          # … headlines not
    family = ("China curbs rare earths exports", f"China will restrict rare earths. {BOILERPLATE}")
    member = ("China curbs neodymium exports", f"China will restrict rare earths. {BOILERPLATE}")
    assert cluster([1, 2], [family, member]) == {1: 1, 2: 1}             # a member of the family


def test_a_chain_of_look_alikes_is_not_one_story():
    """Each item is like the next (one sentence changes), the first nothing like the last:
    copies join a leader, not a chain."""
    sentences = [f"Sentence number {n} tells of another matter in another place entirely." for n in range(12)]
    docs = [("Trade ministry bulletin", " ".join(sentences[k:k + 4])) for k in range(8)]
    assert not near_duplicates(shingles(*docs[0]), shingles(*docs[-1]))
    groups = cluster(list(range(1, 9)), docs)
    assert len(set(groups.values())) >= 3


def test_one_headline_over_two_ledes_is_one_story():
    """Two broadcasters run one wire headline, each over a lede of its own (the texts share
    almost no word triples): one story, not two entries of the digest."""
    first = ("Ministry limits exports of two chipmaking metals in tech dispute with the U.S",
             "The move follows sweeping restrictions last autumn on sales of advanced chips and "
             "tools, officials said.")
    second = ("Ministry limits exports of two chipmaking metals in tech dispute with the U.S.",
              "Buyers abroad will need a licence for each shipment of the two metals from next "
              "month, escalating a technology quarrel.")
    assert not near_duplicates(shingles(*first), shingles(*second))
    assert cluster([7, 9], [first, second]) == {7: 7, 9: 7}
    # a short headline ("Markets wrap") says nothing: different texts stay apart
    wrap_a = ("Markets wrap", "Shares in tin miners rose after a smelter in the south restarted.")
    wrap_b = ("Markets wrap", "Copper fell for a third day as warehouse stocks grew in the east.")
    assert cluster([1, 2], [wrap_a, wrap_b]) == {1: 1, 2: 2}


def test_a_recurring_headline_naming_no_subject_does_not_make_one_story():
    """A newsletter's or an exchange's fixed title of 6+ words heads different items the
    same day: the same headline made them one story (the second item hidden under the
    first), which no mineral or country in the headline could keep apart."""
    column = [("What you need to know this morning", "Copper rose after a strike at a mine in the north."),
              ("What you need to know this morning", "A refinery said it would cut its nickel output by a tenth.")]
    assert cluster([1, 2], column) == {1: 1, 2: 2}
    notice = [("Change of Director's Interest Notice - ABC", "A lithium explorer's chairman bought shares."),
              ("Change of Director's Interest Notice - XYZ", "A graphite developer's director sold options.")]
    assert cluster([3, 4], notice) == {3: 3, 4: 4}
    report = [("Weekly battery metals market price report - Lithium", "Carbonate prices fell for a fifth week."),
              ("Weekly battery metals market price report - Cobalt", "Hydroxide payables rose on quota news.")]
    assert cluster([5, 6], report) == {5: 5, 6: 6}
