"""Minerals named in an article (monitor.minerals)."""

from __future__ import annotations

import pytest

from monitor.minerals import extract_minerals, mineral_ids, mineral_name


def ids(title: str, text: str = "") -> list[str]:
    return [m.code for m in extract_minerals(title, text)]


ISSUE_IDS = (
    "rare-earths neodymium praseodymium dysprosium terbium gallium germanium antimony "
    "graphite lithium cobalt nickel manganese tungsten tantalum niobium "
    "platinum-group-metals copper uranium magnets indium tellurium bismuth vanadium "
    "titanium magnesium beryllium hafnium zirconium fluorspar barite tin zinc "
    "silicon-metal high-purity-quartz scandium yttrium critical-minerals"
).split()


def test_every_canonical_id_has_a_display_name():
    assert set(ISSUE_IDS) <= set(mineral_ids())
    assert mineral_name("rare-earths") == "rare earths"
    assert mineral_name("platinum-group-metals") == "platinum-group metals"
    assert mineral_name("unknown") == "unknown"
    # every display name is one plain name (a forms list once landed in tantalum's)
    assert mineral_name("tantalum") == "tantalum"
    assert all("|" not in mineral_name(i) for i in mineral_ids())


@pytest.mark.parametrize("text", [
    "China tightens controls on rare earths",
    "Die USA und Japan wollen bei seltenen Erden zusammenarbeiten",
    "Pékin restreint les exportations de terres rares",
    "China restringe las tierras raras",
    "Chiny ograniczają eksport metali ziem rzadkich",
    "中国加强稀土出口管制",
    "中国がレアアースの輸出を規制",
    "중국, 희토류 수출 통제",
    "Cina, stretta sulle terre rare",
])
def test_rare_earths_in_every_language(text):
    assert ids(text) == ["rare-earths"]


def test_battery_and_chip_metals_in_several_languages():
    assert ids("Lithium, cobalt, nickel and graphite prices") == [
        "cobalt", "graphite", "lithium", "nickel"]
    assert ids("Gallium und Germanium, Antimon und Wolfram") == [
        "antimony", "gallium", "germanium", "tungsten"]
    assert ids("eksport galu, germanu i grafitu; ceny litu i miedzi") == [
        "copper", "gallium", "germanium", "graphite", "lithium"]
    assert ids("镓、锗、锑和石墨出口管制") == ["antimony", "gallium", "germanium", "graphite"]
    assert ids("ガリウムとゲルマニウム") == ["gallium", "germanium"]


def test_german_compounds():
    assert ids("Der Lithiumabbau und die Kobaltpreise steigen") == ["cobalt", "lithium"]
    assert ids("Seltenerdmetalle aus China") == ["rare-earths"]
    assert ids("Wolframpreis auf Rekordhoch, Galliumexporte und Germaniumpreise") == [
        "gallium", "germanium", "tungsten"]
    assert ids("Antimonpreis, Zinkhütte, Vanadiumerz, Palladiumpreis") == [
        "antimony", "platinum-group-metals", "vanadium", "zinc"]
    assert ids("Zinnpreis und Titanerz aus der Platinmine") == [
        "platinum-group-metals", "tin", "titanium"]
    # compounds that name something else stay out: tin soldiers, battlements, circuit
    # boards, fork tines, the Titans, a poet's genitive
    assert ids("Zinnsoldaten auf den Zinnen, Platinen, Zinken, Titanen, Wolframs Parzival") == []


def test_a_german_circuit_board_is_not_platinum_but_french_platinum_is():
    # "Platine" is a circuit board in German and platinum in French (the README: "Platine"
    # stays out); the singular had been read as the French word for the metal
    assert ids("Die Platine ist defekt", "Der Techniker hat die Platine getauscht.") == []
    assert ids("Neue Platine für den Raspberry Pi") == []
    assert ids("Platine defekt") == []
    assert ids("Le prix du platine recule",
               "Le cours du platine et du palladium baisse.") == ["platinum-group-metals"]
    assert ids("Platine : le cours recule",
               "Le prix du métal est en baisse pour la semaine.") == ["platinum-group-metals"]


def test_magnet_rare_earths_and_named_magnets():
    assert ids("neodymium, praseodymium, dysprosium and terbium") == [
        "dysprosium", "neodymium", "praseodymium", "terbium"]
    assert ids("exports of rare-earth magnets") == ["magnets", "rare-earths"]
    assert ids("NdFeB and permanent magnets") == ["magnets"]
    assert ids("Seltenerdmagnete") == ["magnets", "rare-earths"]
    assert ids("a fridge magnet; the city is a magnet for talent") == []


def test_generic_critical_minerals():
    assert ids("the EU list of critical raw materials") == ["critical-minerals"]
    assert ids("kritische Rohstoffe und surowce krytyczne, 关键矿产") == ["critical-minerals"]


def test_other_in_scope_minerals():
    text = ("indium, tellurium, bismuth, vanadium, titanium, magnesium, beryllium, hafnium, "
            "zirconium, fluorspar, barite, tin, zinc, silicon metal, high-purity quartz, "
            "scandium, yttrium, tantalum, niobium, manganese, uranium, palladium")
    assert set(ids(text)) == {
        "indium", "tellurium", "bismuth", "vanadium", "titanium", "magnesium", "beryllium",
        "hafnium", "zirconium", "fluorspar", "barite", "tin", "zinc", "silicon-metal",
        "high-purity-quartz", "scandium", "yttrium", "tantalum", "niobium", "manganese",
        "uranium", "platinum-group-metals"}


def test_counts_and_spans():
    title = "Graphite"
    text = "Graphite exports and natural graphite prices."
    full = f"{title}\n{text}"
    (graphite,) = extract_minerals(title, text)
    assert graphite.count == 3
    assert [full[s:e].lower() for s, e in graphite.spans] == ["graphite"] * 3


def test_forms_match_at_word_starts_in_any_case_and_spans_survive_lower_casing():
    # exact and compound forms inside a longer word are not the mineral, the same form at
    # the next word start still is
    assert ids("", "XREE and xNdFeB") == []
    assert ids("", "XREE and REE, NdFeB") == ["magnets", "rare-earths"]
    assert ids("Antikupferpreis") == [] and ids("Antikupferpreis Kupferpreise") == ["copper"]
    # any case; a text whose lower-casing changes its length ("İ" becomes two characters)
    # keeps its spans
    title, text = "LITHIUM-Abbau", "In İstanbul: lithium"
    (lithium,) = extract_minerals(title, text)
    full = f"{title}\n{text}"
    assert [full[s:e] for s, e in lithium.spans] == ["LITHIUM", "lithium"]


# ---------------------------------------------------------------- false friends

def test_graphite_grey_is_a_colour():
    assert ids("The laptop comes in graphite grey") == []
    assert ids("Das Gehäuse in Graphitgrau") == []
    assert ids("coloris gris graphite") == []


def test_lithium_ion_battery_in_a_gadget_review_is_not_lithium():
    assert ids("The phone has a 5,000 mAh lithium-ion battery") == []
    assert ids("Ein Lithium-Ionen-Akku mit 4000 mAh") == []
    assert ids("batería de iones de litio") == []
    assert ids("配备锂离子电池") == []
    assert ids("Lithium carbonate prices and a lithium-ion battery") == ["lithium"]


def test_colours_grades_supplements_and_objects():
    assert ids("cobalt blue paint") == []
    assert ids("The album went platinum; a platinum card") == []
    assert ids("Take a magnesium supplement and zinc tablets") == []
    assert ids("iPhone 16 Pro in natural titanium; titanium frame") == []
    assert ids("a tin can and tin foil; your TIN number") == []
    assert ids("Platinum and palladium prices rose") == ["platinum-group-metals"]


def test_places_and_names_that_contain_a_metal():
    assert ids("无锡和铜陵的工厂") == []
    assert ids("Silicon Valley start-ups") == []
    assert ids("Wolfram Weimer sagte") == []
    assert ids("Wolfram und Zinn") == ["tin", "tungsten"]
    assert ids("获得铜牌") == []


# --- general terms and names that only contain a mineral word (real-news press styles) ---------

def test_german_rohstoffe_is_the_general_term_unless_a_mineral_is_named():
    assert ids("Kampf um Rohstoffe: Machtpolitik bis auf den Meeresgrund") == ["critical-minerals"]
    assert ids("Ukrainische Regierung gibt grünes Licht für Rohstoffdeal") == ["critical-minerals"]
    assert ids("Begehrter Rohstoff: Wo Lithium aus dem Boden sprudelt") == ["lithium"]
    assert ids("Trump warnt vor Rückzug aus Rohstoffabkommen", "Es geht um Seltene Erden.") == [
        "critical-minerals", "rare-earths"]                   # the deal names raw materials as a set
    assert ids("Coltan-Mine eingestürzt") == ["niobium", "tantalum"]


def test_company_names_and_battery_types_are_not_the_mineral():
    assert ids("腾远钴业：公司厂区未受影响") == []
    assert ids("德方纳米锂电新材料一体化项目") == []
    assert ids("고려아연 주가 급등") == []
    assert ids("Lithium-Akkus brennen schneller") == []
    assert ids("石墨烯散热膜量产") == []                     # graphene is not graphite
    assert ids("石墨烯涂层改善石墨负极") == ["graphite"]
    assert ids("Graphene and graphite anodes") == ["graphite"]
    assert ids("플래티넘 가격 급등") == ["platinum-group-metals"]
    assert ids("플래티넘 카드 출시") == []                   # a card tier
    assert ids("レアメタルの確保へ") == ["critical-minerals"]
    assert ids("희소금속 비축 확대") == ["critical-minerals"]
    assert ids("韩国 전략광물 제련소 건설") == ["critical-minerals"]
    # the price of copper with the linking ㅅ ("구릿값"), as Korean headlines write it; not
    # copper-coloured skin
    assert ids("경기 둔화에도 구릿값 강세") == ["copper"]
    assert ids("구릿빛 피부 만드는 법") == []
    assert ids("UE stworzy nową listę surowców strategicznych") == ["critical-minerals"]


def test_more_company_names_and_a_companys_business():
    assert ids("云南锗业涨停") == []                         # companies, not the metals
    assert ids("驰宏锌锗、东方锆业、锡业股份跟涨") == []
    assert ids("兴业银锡涨超5%") == []
    assert ids("锗价大涨，锡价上涨") == ["germanium", "tin"]
    assert ids("磷酸铁锂业务收入增长") == ["lithium"]          # 锂业务: the lithium business
    assert ids("公司钴业务量价齐升") == ["cobalt"]
    assert ids("锂电材料需求超预期") == ["lithium"]
    assert ids("加快战略矿产资源储运枢纽建设") == ["critical-minerals"]
    assert ids("加强关键原材料合作") == ["critical-minerals"]


def test_more_english_general_terms():
    assert ids("Germany eyes a fund for critical materials") == ["critical-minerals"]
    assert ids("G7 ministers on supplies of crucial minerals") == ["critical-minerals"]
    assert ids("Talks on mineral security for clean energy") == ["critical-minerals"]


def test_korean_bare_mineral_word_beside_a_named_mineral_is_that_mineral():
    assert ids("희토류 통제에 반사이익…금속·광물株 강세") == ["rare-earths"]
    assert ids("칠레, 미국과 핵심광물 동맹…구리 공급") == ["copper", "critical-minerals"]
    assert ids("광물 공급망 협력…리튬 확보") == ["critical-minerals", "lithium"]
    assert ids("정상회담서 광물 협력 확대") == ["critical-minerals"]


# --- false friends found by reading the whole pool (twenty-second session) -------------------

def test_names_of_people_places_and_firms_with_a_metal_character():
    assert ids("习近平会见韩国总统尹锡悦") == []                  # Yoon Suk-yeol: 锡 is tin
    assert ids("伊朗锡里克地区传出爆炸声") == []                   # Sirik, Iran
    assert ids("苏锡常一体化发展") == []                          # Wuxi, as in 无锡
    assert ids("中钨高新涨停，钨价上涨") == ["tungsten"]           # the firm no, the price yes
    assert ids("贵研铂业、宝武镁业、华锡有色涨停") == []
    assert ids("蔚蓝锂芯发布业绩预告") == []
    assert ids("公司钛业务收入增长") == ["titanium"]              # 钛业务: the titanium business
    assert ids("マルチスズキの販売") == []                       # Suzuki, not スズ (tin)


def test_compounds_named_after_a_metal_that_are_not_its_supply():
    assert ids("钙钛矿叠层电池效率创新高") == []                   # perovskite
    assert ids("薄膜铌酸锂调制器量产") == []                       # lithium niobate crystals
    assert ids("联合奥沙利铂治疗") == []                          # oxaliplatin, a drug
    assert ids("钛矿开采与铌矿出口") == ["niobium", "titanium"]


def test_german_names_are_not_the_metals_in_english_text():
    assert ids("The Titan submersible lost contact with its ship") == []
    assert ids("a video game titan buys a studio for the third time") == []
    assert ids("Actor Sam Mangan joins the cast of the play") == []
    assert ids("Kopalnia wydobywa uran i mangan") == ["manganese", "uranium"]
    assert ids("Die Preise für Titan und Uran steigen, sagt der Verband") == ["titanium", "uranium"]
    assert ids("Der Pop-Titan ist zurück, sagt er im Interview mit der Zeitung") == []
    # short headlines and sentence starts (the review of this session's rules found them lost)
    assert ids("China beschränkt Export von Titan") == ["titanium"]
    assert ids("Uran: Kasachstan senkt Förderprognose") == ["uranium"]
    assert ids("Uran drożeje po przewrocie w Nigrze") == ["uranium"]
    assert ids("„Titan“ ist ein kritischer Rohstoff für die Luftfahrt") == ["titanium"]


def test_product_tiers_brands_colours_and_idioms():
    assert ids("Buy a 1000W 80 Plus Platinum PSU and an Ultra Titanium power supply") == []
    assert ids("Xeon Platinum chips; a Platinum Trophy; platinum-selling singer") == []
    assert ids("Bayonetta maker Platinum Games") == []
    assert ids("Impala Platinum shares fell as platinum prices slid") == ["platinum-group-metals"]
    assert ids("Comes in rose or graphite colors; the graphite case") == []
    assert ids("a cobalt sky over the bay; the Azure Cobalt CPU") == []
    assert ids("It does what it says on the tin; a roasting tin; tin-eared") == []
    assert ids("Tin prices rose on mine outages") == ["tin"]
    assert ids("Indonesia's export ban weighed on the tin market") == ["tin"]
    assert ids("Platinum selling pressure eased as output fell") == ["platinum-group-metals"]
    assert ids("Prime platinum ground in the Bushveld was sold") == ["platinum-group-metals"]
    assert ids("Graphite model predicts a supply shortfall") == ["graphite"]
    assert ids("Stau bei Nickelsdorf an der Grenze") == []
    assert ids("Neue Lithium-Batterien halten länger") == []
