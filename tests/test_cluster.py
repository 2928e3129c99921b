"""Near-duplicate clustering on pairs shaped like real syndication (written for the project)."""

from monitor.cluster import THRESHOLD, cluster, jaccard, shingles

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
