"""Countries named in an article (monitor.countries): LABELING.md, Countries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.countries import country_name, extract_countries

REPO = Path(__file__).resolve().parents[1]


def codes(title: str, text: str = "") -> list[str]:
    return [m.code for m in extract_countries(title, text)]


# ---------------------------------------------------------------- the seed case

# Written for this test after the seed's pattern (dpa-AFX, Tokyo): the same forms, not
# the same text.
SEED_LIKE = (
    "TOKIO (dpa-AFX) - Die USA und Japan vertiefen ihre Zusammenarbeit bei Rohstoffen. "
    "Japans Regierung und Vertreter aus Washington unterzeichneten eine Erklärung.\n\n"
    "Peking hatte zuvor die Ausfuhr mehrerer Metalle beschränkt; Chinas Handelsministerium "
    "verwies auf Sicherheitsinteressen. Beim Gipfel der Apec-Staaten in Südkorea werden auch "
    "Vertreter aus Russland erwartet. Die Nato beobachtet die Raketentests Nordkoreas mit "
    "Sorge. Beobachter sprechen von einer neuen Phase der japanisch-amerikanischen "
    "Partnerschaft."
)


def test_seed_like_wire_story_gives_exactly_the_six_countries():
    assert codes("", SEED_LIKE) == ["CN", "JP", "KP", "KR", "RU", "US"]


def test_mentions_count_every_form_and_spans_point_at_the_text():
    title = "Rohstoffe"
    full = f"{title}\n{SEED_LIKE}"
    mentions = {m.code: m for m in extract_countries(title, SEED_LIKE)}
    assert mentions["JP"].count == 4          # TOKIO, Japan, Japans, japanisch-
    assert mentions["US"].count == 3          # USA, Washington, -amerikanischen
    assert [full[s:e] for s, e in mentions["CN"].spans] == ["Peking", "Chinas"]
    assert [full[s:e] for s, e in mentions["JP"].spans][0] == "TOKIO"


def test_dateline_capital_counts_and_organisations_do_not():
    assert codes("BEIJING (Reuters) - Apec, Nato, the EU and G7 met.") == ["CN"]


# ---------------------------------------------------------------- ambiguity, on purpose

def test_georgia_is_the_us_state_in_a_us_context():
    assert codes("Hyundai's battery plant in Georgia will supply U.S. carmakers.") == ["US"]


def test_georgia_is_the_country_with_georgian_context_or_alone():
    assert codes("Georgia's parliament in Tbilisi passed the law.") == ["GE"]
    assert codes("Georgia signs a manganese deal.") == ["GE"]
    assert codes("Georgia and the US signed a deal in Tbilisi.") == ["GE", "US"]


def test_jordan_and_chad_as_first_names_are_not_countries():
    assert codes("Chad Smith and Jordan Peterson spoke on the panel.") == []
    assert codes("Potash from Jordan and uranium from Chad.") == ["JO", "TD"]


def test_title_case_headline_keeps_chad_as_a_country():
    assert codes("Chad Signs Uranium Deal With Niger") == ["NE", "TD"]


def test_niger_and_nigeria_are_two_countries():
    assert codes("Niger and Nigeria") == ["NE", "NG"]
    assert codes("Nigeria's lithium") == ["NG"]
    assert codes("oil spills in the Niger Delta") == []


def test_the_four_guineas():
    assert codes("Guinea") == ["GN"]
    assert codes("Guinea-Bissau") == ["GW"]
    assert codes("Equatorial Guinea") == ["GQ"]
    assert codes("Papua New Guinea") == ["PG"]
    assert codes("Äquatorialguinea und Papua-Neuguinea") == ["GQ", "PG"]
    assert codes("piracy in the Gulf of Guinea") == []


def test_names_joined_by_an_ampersand_or_a_dash():
    assert codes("Trinidad & Tobago exports LNG to Europe") == ["TT"]
    assert codes("Guinea–Bissau exports cashews") == ["GW"]        # an en dash, not GN


def test_plain_congo_is_the_dr_congo_and_the_republic_is_named():
    assert codes("cobalt mines in Congo") == ["CD"]
    assert codes("Kobaltminen im Kongo") == ["CD"]
    assert codes("Democratic Republic of Congo") == ["CD"]
    assert codes("the DRC and Kinshasa") == ["CD"]
    assert codes("Republik Kongo") == ["CG"]
    assert codes("Congo-Brazzaville") == ["CG"]
    assert codes("the Republic of the Congo") == ["CG"]
    assert codes("Demokratische Republik Kongo") == ["CD"]


def test_inner_mongolia_names_no_country():
    assert codes("Rare earth output in Inner Mongolia rose.") == []
    assert codes("Die Innere Mongolei fördert seltene Erden.") == []
    assert codes("内蒙古包头稀土") == []
    assert codes("Mongolia exports coal.") == ["MN"]


def test_new_mexico_new_south_wales_new_caledonia():
    assert codes("a lithium project in New Mexico") == []
    assert codes("a mine in New South Wales") == []
    assert codes("nickel from New Caledonia") == ["NC"]
    assert codes("Mexico and Wales") == ["GB", "MX"]


def test_us_pronoun_is_not_the_united_states():
    assert codes("Tell us what you think; let us know.") == []
    assert codes("The US and the U.S.A. and the U.S.") == ["US"]
    assert codes("LET US KNOW", "") == []
    assert codes("JOIN US TODAY") == []
    assert codes("TALK ABOUT US TARIFFS") == ["US"]


def test_us_before_a_dollar_sign_and_us_in_a_mixed_case_line():
    assert codes("Lithium deal worth US$2bn signed in Chile") == ["CL"]   # a currency
    assert codes("Japan sides with US to curb chip exports") == ["JP", "US"]


def test_in_and_or_in_all_caps_headlines_are_not_india_or_oregon():
    assert codes("CHIP CURBS BITE IN JAPAN OR KOREA") == ["JP", "KR"]


def test_turkey_the_country_in_all_its_names():
    assert codes("Turkey, Türkiye, die Türkei, la Turquie, Turcja, w Turcji") == ["TR"]


def test_turkey_the_bird():
    assert codes("We roast a turkey every year.") == []
    assert codes("Turkey Prices Climb Ahead of Thanksgiving") == []
    assert codes("Turkey and Ankara ahead of Thanksgiving talks") == ["TR"]


def test_turkey_the_country_without_a_second_name():
    assert codes("Turkey raises steel import tariffs") == ["TR"]


def test_dominica_and_the_dominican_republic():
    assert codes("Dominica") == ["DM"]
    assert codes("the Dominican Republic") == ["DO"]
    assert codes("Dominica and the Dominican Republic") == ["DM", "DO"]


def test_paris_agreement_and_brussels_are_not_countries():
    assert codes("Under the Paris Agreement, Brussels wants more.") == []
    assert codes("Paris and Berlin disagreed.") == ["DE", "FR"]


def test_a_stadium_or_cup_named_emirates_is_not_the_country():
    assert codes("Arsenal draw at the Emirates Stadium; Emirates Cup next") == []
    assert codes("The Emirates sign a lithium deal with Chile") == ["AE", "CL"]


def test_at_the_emirates_opening_a_headline_and_across_a_sentence_end():
    assert codes("At the Emirates, Arsenal beat Spurs 3-1") == []
    # "at" ends one sentence and "The Emirates" starts the next: the country
    assert codes("Premier League clubs know where the money is at. The Emirates plan a "
                 "football fund") == ["AE"]


def test_at_the_emirates_in_a_football_text_is_the_ground_not_the_country():
    """"at the Emirates" is Arsenal's stadium (the Emirates Stadium, already no country)
    when the text is about football; "the Emirates" is still the UAE elsewhere, in a
    football text too, and the airline or a bank named with it counts, as LABELING.md
    counts "Deutsche Bank" as DE."""
    assert codes("Arsenal beat Chelsea 2-0 at the Emirates on Saturday") == []
    assert codes("Premier League: a late equaliser at the Emirates") == []
    assert codes("Arsenal open a store in the UAE; fans at the Emirates cheered") == ["AE"]
    assert codes("Premier League clubs court investors in the Emirates") == ["AE"]
    assert codes("Talks at the Emirates foreign ministry on gallium") == ["AE"]
    assert codes("Emirates NBD and the airline Emirates expand in Chile") == ["AE", "CL"]


def test_brussels_counts_as_belgium_in_a_dateline():
    assert codes("BRUSSELS (Reuters) - EU ministers agreed.") == ["BE"]
    assert codes("Brüssel – Die EU-Minister haben sich geeinigt.") == ["BE"]


def test_dateline_forms_that_count_as_belgium():
    assert codes("BRUSSELS, March 3 (Reuters) - EU ministers agreed") == ["BE"]
    assert codes("BRUSSELS (Reuters) EU ministers agreed on Monday") == ["BE"]
    assert codes("05.03.2025 Brüssel (dpa) - Die EU-Kommission will nachlegen") == ["BE"]
    assert codes("Newsticker | BRÜSSEL (dpa-AFX) - Die EU-Kommission will nachlegen") == ["BE"]


def test_country_inside_an_organisation_name_counts():
    assert codes("Deutsche Bank raised its target.") == ["DE"]
    assert codes("according to FRANCE 24") == ["FR"]


def test_korea_alone_is_south_korea_unless_the_text_is_about_the_north():
    assert codes("Korea and Japan agreed.") == ["JP", "KR"]
    assert codes("North Korea fired a missile; Korea's army chief in Pyongyang") == ["KP"]
    assert codes("North Korea and South Korea") == ["KP", "KR"]


def test_an_ambiguous_name_is_a_mention_too_when_the_country_is_named_otherwise():
    """Georgia, Korea, Turkey, the Emirates: once the text names the country otherwise,
    each of their mentions counts."""
    def counts(text):
        return {m.code: m.count for m in extract_countries(text, "")}
    assert counts("Georgia and the US signed a deal in Tbilisi.") == {"GE": 2, "US": 1}
    assert counts("North Korea and South Korea; Korea's chip exports rose") == {
        "KP": 1, "KR": 2}
    assert counts("Turkey and Ankara ahead of Thanksgiving talks") == {"TR": 2}
    assert counts("Arsenal's sponsor: UAE officials met at the Emirates foreign ministry") == {
        "AE": 2}
    assert counts("喬治亞（格魯吉亞）總統選舉") == {"GE": 2}


def test_england_scotland_wales_are_the_united_kingdom():
    assert codes("England, Scotland and Wales") == ["GB"]
    assert codes("Northern Ireland and Ireland") == ["GB", "IE"]


def test_washington_the_government_not_the_newspaper_or_the_man():
    assert codes("Washington imposed new controls.") == ["US"]
    assert codes("The Washington Post reported.") == []
    assert codes("a statue of George Washington") == []
    assert codes("Officials in Washington Thursday said") == ["US"]
    # German capitalises every noun: after "in", "nach", "aus" in German text, the place
    assert codes("Israel führt mit dem Libanon in Washington Gespräche") == ["IL", "LB", "US"]
    assert codes("Er reist nach Washington Ende Mai und trifft die Ministerin") == ["US"]
    assert codes("He spoke to Chad Smith in Jordan Peterson's office") == []


def test_a_capital_before_a_comma_an_acronym_or_another_country_is_the_place():
    assert codes("Tariffs: a warning to Washington, President Lula said") == ["US"]
    assert codes("talks on the Washington Moscow hotline") == ["RU", "US"]
    assert codes("Leaders gather for the Lima APEC summit") == ["PE"]


def test_georgia_as_a_first_name_or_next_to_a_us_city():
    assert codes("Georgia Ellis won the tennis final") == []
    assert codes("Rivian's plant near Atlanta, Georgia, gets a tax break") == []


def test_surname_after_a_first_name():
    assert codes("François Hollande a parlé de la Hollande.") == ["NL"]


def test_hollande_is_the_country_only_after_a_french_article_or_preposition():
    assert codes("Sarkozy, Hollande and Macron met") == []
    assert codes("Hollande said on Tuesday that the deal stands") == []
    assert codes("Il est parti en Hollande.") == ["NL"]
    assert codes("les fromages de Hollande") == ["NL"]


def test_holland_the_country_after_an_article_a_list_comma_or_an_acronym():
    assert codes("La Hollande exporte des tulipes.") == ["NL"]
    assert codes("Gas flows from Germany, Holland and Belgium") == ["BE", "DE", "NL"]
    assert codes("Ferry operator DFDS cuts UK Holland sailings") == ["GB", "NL"]
    assert codes("The Mount Holland lithium mine doubles output") == []   # a mine in Australia


# ---------------------------------------------------------------- inflection families

def test_german_adjectives_demonyms_and_genitive():
    mentions = {m.code: m.count for m in extract_countries(
        "", "chinesische Firmen, die chinesischen Exporte, Chinesen, Chinas Markt, China")}
    assert mentions == {"CN": 5}
    assert codes("Japans, Russlands und Nordkoreas Pläne") == ["JP", "KP", "RU"]
    assert codes("Die Wahl in den Niederlanden und in Belgien") == ["BE", "NL"]   # dative plural


def test_german_hyphenated_and_closed_compounds():
    assert codes("die japanisch-amerikanische Allianz") == ["JP", "US"]
    assert codes("die US-Regierung") == ["US"]
    assert codes("deutsch-chinesische Gespräche") == ["CN", "DE"]
    assert codes("wegen des Irankriegs und der Russlandsanktionen") == ["IR", "RU"]
    assert codes("Iranerin, iranische Medien, Nigerianer") == ["IR", "NG"]
    assert codes("Sudanesen, eine Kuwaiterin und Jamaikaner") == ["JM", "KW", "SD"]
    assert codes("die Katarer, Libanesen und Palästinenser") == ["LB", "PS", "QA"]
    assert codes("Die Iren und die Esten sind in der EU.") == ["EE", "IE"]
    # Spanish "este" and English "ire" are no demonyms: only in German text
    assert codes("Este año la economía creció") == []
    assert codes("Ire as the council votes on the plan") == []
    # the Malteser Hilfsdienst is a charity: no Malta
    assert codes("Der Malteser Hilfsdienst hilft in der Stadt") == []
    # a short German teaser: "beim", "mit", "am", "keinen" tell the language
    assert codes("Ukrainekrieg:", "Trump strebt beim Treffen mit Putin am Freitag keinen Deal "
                 "an.") == ["UA"]
    assert codes("Türkeibesuch: Merz hat sich mit Erdoğan zur Lage ausgetauscht") == ["TR"]
    # English words alone make no German text: no compound there
    assert codes("A walk through Chinatown, the fur trade and the Uber app") == []


def test_german_compounds_with_directions_and_the_longest_country_first():
    assert codes("Überschwemmungen in Nordschweden und der Finnmark") == ["SE"]
    assert codes("Die Fabriken in Südchina und der Export") == ["CN"]
    assert codes("Die Fabriken Südchinas und der Export") == ["CN"]
    assert codes("Die Irakwahl und der Streit um das Ergebnis") == ["IQ"]
    assert codes("Die Nigeriakrise und der Ölpreis") == ["NG"]             # not Niger
    # a second part that merely begins like a demonym ending (-er, -in): still a compound
    assert codes("Die Ukraineinvasion und der Westen") == ["UA"]
    assert codes("Der Chinaerfolg der Autobauer ist vorbei") == ["CN"]
    assert codes("Die Russlandinvestitionen der Konzerne sind abgeschrieben") == ["RU"]


def test_polish_case_forms():
    text = "w Chinach, do Chin, Chinom, chińskiego rządu, Chińczycy, Chiny"
    assert {m.code: m.count for m in extract_countries("", text)} == {"CN": 6}
    assert codes("w Japonii, w Rosji, w Niemczech, w Stanach Zjednoczonych") == [
        "DE", "JP", "RU", "US"]
    assert codes("Korei Południowej, Koreą Północną") == ["KP", "KR"]
    assert codes("w Kanadzie, w Polsce, w Iranie, w Egipcie, w Wielkiej Brytanii") == [
        "CA", "EG", "GB", "IR", "PL"]
    assert codes("Brytyjscy naukowcy i Rosjaninem, prorosyjsko") == ["GB", "RU"]


def test_french_and_spanish_adjectives():
    assert codes("les entreprises chinoises et la Chine, Pékin") == ["CN"]
    assert codes("el gobierno estadounidense y las empresas chinas, Pekín") == ["CN", "US"]
    assert codes("le régime nord-coréen et Séoul") == ["KP", "KR"]


def test_abbreviations_capitals_and_exonyms():
    assert codes("UK, VAE, UAE, KSA, PRC, ROK, DPRK") == ["AE", "CN", "GB", "KP", "KR", "SA"]
    assert codes("Moskau, Pjöngjang, Tokio, Seoul") == ["JP", "KP", "KR", "RU"]
    assert codes("EE.UU. y China") == ["CN", "US"]


def test_lower_case_common_words_are_not_countries():
    assert codes("fine china and a turkey sandwich with chile sauce") == []
    assert codes("She will polish the japan lacquer.") == []


def test_latin_combining_forms_and_odd_casing():
    assert codes("un sommet franco-allemand") == ["DE", "FR"]
    assert codes("Spain under General Franco") == ["ES"]               # the man, not France
    assert codes("Franco-German talks on gas") == ["DE", "FR"]
    assert codes("ANGLO-FRENCH SUMMIT") == ["FR", "GB"]
    assert codes("Franco-era laws are repealed in Madrid") == ["ES"]
    assert codes("For Franco, German aid was vital in the Spanish Civil War") == ["DE", "ES"]
    assert codes("Retro fans trade game ROMs online") == []            # not Rome


def test_glued_title_and_text():
    assert codes("Hilfe für die UkraineBerlin und Paris fordern Sanktionen") == [
        "DE", "FR", "UA"]


# ---------------------------------------------------------------- CJK

def test_chinese_names_and_compounds():
    assert codes("中美贸易摩擦加剧") == ["CN", "US"]
    assert codes("美方表示，我国将回应") == ["CN", "US"]
    assert codes("朝鲜和韩国") == ["KP", "KR"]
    assert codes("粤港澳大湾区") == ["HK", "MO"]


def test_chinese_guards_reject_glued_words():
    assert codes("其中国有企业占比") == []           # 其中|国有: "among them, state-owned"
    assert codes("披露日公司基本面无重大变化") == []   # 披露 "disclose", not 露日 RU+JP
    assert codes("深海地质钻探") == []               # not 海地 Haiti
    assert codes("中美洲国家") == []
    assert codes("美元汇率") == []
    assert codes("10月28日美国商务部") == ["US"]


def test_chinese_compounds_of_four_and_after_a_word_ending_in_an_abbreviation():
    assert codes("美日澳印外长会") == ["AU", "IN", "JP", "US"]
    assert codes("其中日韩两国占比最高") == ["JP", "KR"]      # 其中 "among them", not China
    assert codes("境内上市公司数量增加") == ["CN"]            # 境内, "our country" (LABELING.md)


def test_a_chinese_pair_before_heads_of_state_is_not_the_dollar():
    # 中美|元首 "the Chinese and US heads of state", not 中|美元 "US dollar"
    assert codes("中美元首会晤在即") == ["CN", "US"]
    assert codes("韩美元首通电话") == ["KR", "US"]
    assert codes("支付500万美元首付款") == []                 # 美元 + 首付款, a down payment


def test_a_chinese_pair_before_a_word_that_a_lone_name_may_not_touch():
    # 日在 (a date's "on the 5th, in"), 日均 (daily), 中共 (the party) after a single name;
    # after a pair they are 在 "in", 均 "both", 共同 "joint"
    assert codes("中日在经贸领域加强合作") == ["CN", "JP"]
    assert codes("美日均表示关切") == ["JP", "US"]
    assert codes("美中共同声明发表") == ["CN", "US"]
    assert codes("5日在北京举行") == ["CN"]                    # 北京; the date names no Japan


def test_japanese_names_and_compounds():
    assert codes("日米首脳会談で米中対立が焦点") == ["CN", "JP", "US"]
    assert codes("北朝鮮と韓国") == ["KP", "KR"]


def test_korean_names_and_compounds():
    assert codes("한미 정상회담에서 미국은") == ["KR", "US"]
    assert codes("북한과 중국") == ["CN", "KP"]
    assert codes("중미 국가") == []


# ---------------------------------------------------------------- names and data file

def test_country_name_from_the_packaged_data():
    assert country_name("CN") == "China"
    assert country_name("DE", "de") == "Deutschland"
    assert country_name("JP", "zh-Hant") == "日本"
    assert country_name("XX") == "XX"


def test_english_display_names_are_the_ones_news_uses():
    # CLDR's defaults disambiguate ("Congo - Kinshasa", "Hong Kong SAR China"); the digest's
    # country table shows the names analysts read in the press.
    assert country_name("CD") == "DR Congo"
    assert country_name("cg") == "Congo-Brazzaville"
    assert country_name("HK", "en-GB") == "Hong Kong"
    assert (country_name("MO"), country_name("MM"), country_name("PS")) == (
        "Macao", "Myanmar", "Palestine")
    assert country_name("CD", "de") != "DR Congo"          # other languages keep CLDR's


def test_country_name_falls_back_to_the_language_of_a_regional_locale():
    assert country_name("DE", "de-CH") == "Deutschland"
    assert country_name("JP", "ja_JP") == "日本"


def test_importing_countries_does_not_import_babel():
    code = "import sys, monitor.countries; sys.exit('babel' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_shipped_gazetteer_is_what_the_build_produces():
    pytest.importorskip("babel")
    result = subprocess.run([sys.executable, "-m", "monitor._build.gazetteer", "--check"],
                            cwd=REPO, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr


# --- press styles of LABELING.md ---------------------------------------------------------------

def test_our_country_words_count_as_the_outlets_country():
    assert codes("国内商品期货收盘 碳酸锂跌超5%") == ["CN"]
    assert codes("其中国内产量") == ["CN"]            # 国内 "domestic"; 中国 is not read here
    assert codes("美国国内通胀") == ["US"]            # the US's domestic market, not China's
    assert codes("レアアース磁石の国内生産検討") == ["JP"]
    assert codes("茂木外相「我が国固有の領土」") == ["JP"]
    assert codes("정부 \"국내 파급효과 커질 수\"") == ["KR"]


def test_lone_abbreviations_in_korean_headlines():
    assert codes("美 희토류 자립 성공?") == ["US"]
    assert codes("中희토류 통제에 반사이익") == ["CN"]
    assert codes("메디포스트, 日제약사와 라이선스 계약") == ["JP"]
    assert codes("이달 하순 北 9차 당대회") == ["KP"]
    assert codes("중·일 갈등 격화에 희토류 관련주 급등") == ["CN", "JP"]
    assert codes("현지 거점 확보 K배터리 반사익 기대") == ["KR"]
    assert codes("中企 지원 확대") == []               # 중소기업: small and medium firms


def test_lone_abbreviations_in_japanese_headlines():
    assert codes("米上院、対露制裁法案を可決") == ["RU", "US"]
    assert codes("英首相 ウクライナを「全面支援」") == ["GB", "UA"]
    assert codes("露に輸入制限解消要求") == ["RU"]
    assert codes("ロシア・プーチン大統領が訪問") == ["RU"]
    assert codes("米価の高騰が続く") == []             # rice, not the US
    assert codes("英語の授業、独自の教材") == []
    assert codes("こどもの日に晴れ") == []
    assert codes("東北 大雨 日本海側で警戒") == []      # the Sea of Japan names no country
    assert codes("米雇用が下振れ、利上げ観測の後退") == ["US"]   # employment, economy, rates
    assert codes("米景気の減速懸念") == ["US"]
    assert codes("米金利が上昇") == ["US"]
    assert codes("新米金賞を受賞") == []               # new rice wins gold


def test_chinese_financial_press_pairs_markets_and_fixed_terms():
    assert codes("美伊谈判取得进展") == ["IR", "US"]          # 伊 is Iran in Chinese compounds
    assert codes("美伊局势缓和 油价回落") == ["IR", "US"]
    assert codes("美以伊战事外溢") == ["IL", "IR", "US"]
    assert codes("港股芯片股走强") == ["HK"]                  # market names count (LABELING.md)
    assert codes("某公司向港交所递交申请") == ["HK"]
    assert codes("中概股收盘普涨") == ["CN"]
    assert codes("阿联酋与美国签署协议") == ["AE", "US"]
    assert codes("经港珠澳大桥进出口增长") == ["HK", "MO"]
    assert codes("中老铁路货运量创新高") == ["CN", "LA"]
    assert codes("中外记者见面会") == ["CN"]
    assert codes("德意志银行预计") == ["DE"]
    assert codes("德方纳米拟投资新项目") == []                # a company's short name
    assert codes("德方表示愿加强合作") == ["DE"]              # "the German side"


def test_chinese_place_and_market_names_that_hold_a_country_name():
    assert codes("伦敦金属交易所铜库存减少") == []           # a market, not the UK
    assert codes("伦敦现货黄金下跌") == []
    assert codes("英国首相在伦敦表示") == ["GB"]
    assert codes("不列颠哥伦比亚省山火") == []              # a Canadian province, not Colombia
    assert codes("美国马里兰州一座桥梁") == ["US"]            # Maryland, not Mali
    assert codes("该公司在米兰上市") == []                    # Milan, not the US
    assert codes("舟山群岛新区") == []                       # an archipelago, not Cocos Islands
    assert codes("青海省海西蒙古族藏族自治州") == []          # an ethnic group, not Mongolia


def test_japanese_words_that_are_not_lone_abbreviations():
    assert codes("猛暑の中、熱戦が続く") == []                # 中 "inside", "during"
    assert codes("川で釣り中の男性けが") == []
    assert codes("島に渡る日も近い") == []                    # 日 "day"
    assert codes("式辞に加わった一文字") == []                # 加 "to add"
    assert codes("日伊首脳会談を開催") == ["IT", "JP"]        # 伊 is Italy in Japanese
    assert codes("米ロ首脳会談から1年") == ["RU", "US"]
    assert codes("米民主党が予備選") == ["US"]
    assert codes("東海地方で大雨") == []                      # not 海地 Haiti
    assert codes("尖閣諸島周辺") == []


def test_japanese_words_and_names_that_hold_an_abbreviation_or_a_katakana_name():
    assert codes("母の日商戦が本格化") == []                  # Mother's Day, not Japan
    assert codes("中高生の読書離れ") == []                    # middle and high school pupils
    assert codes("朝日新聞の世論調査") == []                  # the Asahi Shimbun
    assert codes("円安・米ドル高が進む") == []                # a currency alone
    assert codes("玄米パンを販売") == []                      # brown rice
    assert codes("米Apple、新型iPhone発表") == ["US"]         # 米 before a company name
    assert codes("パリパリの食感が人気") == []                # "crisp", not Paris
    assert codes("新作ゲームのタイトル発表") == []            # "title", not Thailand
    assert codes("ジョージア州の新工場に投資") == []          # the US state
    assert codes("조지아주 배터리 공장") == []


def test_georgia_by_its_older_name_or_its_capital_in_japanese_korean_and_chinese():
    # ジョージア and 조지아 alone are mostly the US state; these name only the country
    assert codes("グルジア大統領が来日") == ["GE", "JP"]
    assert codes("トビリシで大規模デモ") == ["GE"]
    assert codes("ジョージア政府、トビリシで会見") == ["GE"]   # and confirm ジョージア
    assert codes("그루지야 대통령 선거") == ["GE"]
    assert codes("트빌리시에서 시위") == ["GE"]
    assert codes("第比利斯爆发抗议") == ["GE"]
    assert codes("ジョージア州知事が来日") == ["JP"]         # still the US state


def test_korean_transliterations_of_korea_and_america():
    assert codes("ZD넷 코리아 보도") == ["KR"]
    assert codes("'셀 아메리카' 우려") == ["US"]
    assert codes("라틴아메리카 시장 진출") == []


def test_english_fixed_terms_that_hold_a_country_name():
    assert codes("A fire off British Columbia") == []
    assert codes("Nickel trading resumed on the London Metal Exchange") == []
    assert codes("Ministers met in London") == ["GB"]


def test_korean_short_forms_of_ukraine_and_koreans():
    assert codes("우크라에 특사 보내자") == ["UA"]
    assert codes("뉴욕 한인 금융인들") == ["KR"]
    assert codes("이에 대한 조사") == []


def test_korean_lone_syllables_toward_and_the_war_pair():
    assert codes("러 공습에 키이우 정전") == ["RU", "UA"]       # 러 alone; 키이우 the capital
    assert codes("[속보] 북 “대화 거부”") == ["KP"]
    assert codes("러軍 동부 공세") == ["RU"]
    assert codes("러우 전쟁 3년, 광물 협상") == ["RU", "UA"]
    assert codes("對中 수출 규제 강화") == ["CN"]
    assert codes("對北 제재") == ["KP"]
    assert codes("對中小企業 지원") == []               # toward small and medium firms
    assert codes("북 콘서트 열려") == []                # 북: a book
    assert codes("영화 보러 가요") == []                # 러 ending a verb


def test_korean_war_pair_with_a_hyphen_and_home_word_inside_another_word():
    assert codes("러-우 전쟁 3년") == ["RU", "UA"]
    assert codes("약국내 상비약 판매 확대") == []              # 약국 "pharmacy" + 내, not 국내


def test_a_korean_dotted_pair_counts_each_country_once():
    # 미, 러 and 북 before a middle dot are a pair and a lone syllable at once: one mention
    def counts(text):
        return {m.code: m.count for m in extract_countries(text, "")}
    assert counts("한·미 정상회담 개최") == {"KR": 1, "US": 1}
    assert counts("북·러 밀착에 우려") == {"KP": 1, "RU": 1}
    assert counts("미·중 갈등, 미 관세") == {"CN": 1, "US": 2}


def test_korean_dotted_triples_and_a_dot_before_a_longer_word():
    assert codes("한·미·일 안보협력 강화") == ["JP", "KR", "US"]
    assert codes("한·중·일 정상회의 개최") == ["CN", "JP", "KR"]
    assert codes("북·중·러 밀착") == ["CN", "KP", "RU"]
    assert codes("북·중동 관계 강화") == ["KP"]              # 중동: the Middle East, not China


def test_korean_one_syllable_dotted_to_a_full_name_or_a_group_of_countries():
    assert codes("한·필리핀 정상회담 개최") == ["KR", "PH"]
    assert codes("호주·한 외교장관 회담") == ["AU", "KR"]
    assert codes("일·호주 안보협력") == ["AU", "JP"]
    assert codes("한·아세안 특별정상회의") == ["KR"]
    assert codes("한·EU FTA 이행") == ["KR"]
    assert codes("중·중앙아시아 정상회의") == ["CN"]
    assert codes("한·중동 협력 포럼") == ["KR"]
    # not a country: work and family, middle and high school, mid- and long-term,
    # Central and Eastern Europe
    assert codes("일·가정 양립 지원") == []
    assert codes("중·고교 학생 대상") == []
    assert codes("중·장기 과제") == []
    assert codes("중·동유럽 투자 확대") == []
    # one mention each, as in the pairs
    assert {m.code: m.count for m in extract_countries("한·필리핀 정상회담", "")} == {
        "KR": 1, "PH": 1}


def test_japanese_headline_forms_found_on_a_blind_round():
    # ロ for Russia as a word of its own, not in katakana words or a baseball score
    assert codes("元駐ロ大使は「狙いが透けて見えます」") == ["RU"]
    assert codes("【速報】ロ、広島市長を批判") == ["RU"]
    assert codes("【速報】北朝鮮、ロに最大5万人派兵決定か") == ["KP", "RU"]
    assert codes("ゼロから始めるロボット開発") == []
    assert codes("19日のプロ野球(経過)ロ-楽19:09") == []
    # the second of two abbreviations before a headline word
    assert codes("英仏高速鉄道に日立車両を採用") == ["FR", "GB"]
    assert codes("東京円は158円台前半 日米金利差で円売られる") == ["JP", "US"]
    assert codes("英米製薬大手が統合協議か") == ["GB", "US"]
    assert codes("トランプ米政権との連携強化") == ["US"]     # after a katakana name: still US
    # company names and false friends
    assert codes("日経平均、午前の終値は421円安") == []
    assert codes("SUV販売、競争激化=日産やマツダの新車好調") == []
    assert codes("中日、今季最多タイ11得点で大勝") == []      # the Chunichi Dragons, a tie
    assert codes("中日新聞によると") == []
    assert codes("日中首脳会談を調整") == ["CN", "JP"]
    assert codes("タイ料理の店が開店") == ["TH"]
    assert codes("2パチンコ台に置き忘れた財布") == []
    assert codes("NY原油続伸、終値87ドル台") == []
    assert codes("大阪・河内長野市で発砲") == []                # Kawachi, not Hanoi
    assert codes("中学校の先生が独学で英語") == []


def test_japanese_and_korean_forms_found_on_a_second_blind_round():
    assert codes("米戦艦に激突する瞬間の特攻機") == ["US"]
    assert codes("メタに900億円支払い命令 米地裁") == ["US"]
    assert codes("黒人女性の遺体、真相解明を求める声 米南部") == ["US"]
    assert codes("米作りの農家が減少") == []                   # rice, not the US
    assert codes("中東情勢の先行き不透明感") == [] and codes("中南米の市場") == []
    assert codes("伊東市長が会見") == []
    assert codes("中野・広島市信組理事長") == [] and codes("日野自動車、リコール") == []
    assert codes("「特許切れ」をどう乗り越えるか") == []         # to overcome: no Vietnam
    assert codes("今季のオリ戦勝ち越し決める") == []
    assert codes("ABCマート、HCM市に越5号店開業へ") == ["VN"]
    assert codes("佐賀の日本酒の特徴は米の甘みが広がる") == ["JP"]   # rice in a sake story
    assert codes("米の関税で輸出が減少") == ["US"]
    assert codes("【速報】大韓航空とアシアナが統合") == ["KR"]
    assert codes("釜山に〝反日通り〟とは") == ["JP"]
    assert codes("米政府「インド太平洋の平和と安定」") == ["US"]   # a region: no India
    assert codes("第一次双反日落复审产业损害终裁") == []            # 日落: a sunset review
    assert codes("방일 일정 마친 李대통령 귀국") == ["JP"]
    assert codes("방미길 오른 대표단") == ["US"]
    assert codes("지방일보 창간") == []
    assert codes('김민수 "오만방자한 소리"') == []
    assert codes("오만 정부와 협력") == ["OM"]


def test_japanese_and_korean_forms_found_on_a_third_blind_round():
    # a katakana name glued to a few common words; other glued katakana stays a word
    assert codes("夏のイタリアフェア始まる") == ["IT"]
    assert codes("イランエネルギー施設への空爆") == ["IR"]
    assert codes("グルジアワインの輸入") == ["GE"]
    for word in ("アルバイト先のロッカー", "富山のソウルフード", "インドアテニス", "メキシコペソ高",
                 "タイトル戦"):
        assert codes(word) == [], word
    assert codes("英南部で列車脱線") == ["GB"] and codes("オリックス、英航空機部品を買収") == ["GB"]
    assert codes("印西市の倉庫") == []                          # a city, not India
    assert codes("10イングランド、支持撤回へ") == ["GB"]
    assert codes("在日コリアンへの投稿") == ["JP", "KR"]
    assert codes("在ヌメア領事事務所の所長") == ["NC"]
    assert codes("人民元基準値、対米ドルで6.7873元") == []        # a currency
    assert codes("「ソフトパワー」衰えた日本円") == []
    assert codes("原子力空母ジョージ・ワシントンが出港") == []
    assert codes("破産開始決定【東京商工リサーチ】") == [] and codes("東京新聞への直言") == []
    assert codes("全国約800店に中華麺を供給") == []
    # Korean: 대한 in names, 방한, envoys, 대남, market slang
    assert codes("CJ대한통운, 물류체계 구축") == ["KR"] and codes("대한전선 해저케이블") == ["KR"]
    assert codes("이에 대한 입장을 밝혔다") == [] and codes("국민을 어떻게 대한다") == []
    assert codes("멜로니 이탈리아 총리, 17일 방한…") == ["IT", "KR"]
    assert codes("방한복 판매 급증") == [] and codes("방한 대책 마련") == []
    assert codes("노재헌 주중대사 취임 100일") == ["CN"] and codes("주중 내내 비") == []
    assert codes("주일미군 재배치") == ["JP"]
    assert codes("北당대회…'대남통' 김영철 빠지고") == ["KP", "KR"]
    assert codes("대남병원 환자 이송") == []
    assert codes("SK하닉 급등[이런국장 저런주식]") == ["KR"]
    assert codes("앱 하나로 국장·미장·코인까지…투자 정보") == ["KR", "US"]
    assert codes("금감원 국장 인사") == []                      # a director, no market


def test_forms_found_on_a_fourth_blind_round():
    assert codes("不支持任何主张“台独”的言行") == ["TW"]           # not Germany (独)
    assert codes("中独关系稳定发展") == ["CN", "DE"]
    assert codes("支持发展中国家更好应对") == []                    # developing countries
    assert codes("发展中国特色社会主义") == ["CN"]
    assert codes("中缅关系") == ["CN", "MM"] and codes("缅怀革命先烈") == []
    assert codes("境外来华人员支付交易笔数增长") == ["CN"]
    assert codes("JR東日本初の民営化組社長が挑むSuica変革") == ["JP"]   # a card, not Suíça
    assert codes("元米海兵隊員が解放される") == ["US"] and codes("前英首相が来日") == ["GB", "JP"]
    assert codes("午前中に会見") == [] and codes("元日の朝") == [] and codes("前日比で上昇") == []
    assert codes("暫定合意近づくと米報道") == ["US"]
    assert codes("マスク氏、米中間選支援へ投入") == ["US"]          # the midterms
    assert codes("米中間の対立が激化") == ["CN", "US"]
    assert codes("伊藤がタイに戻すか 将棋王位戦") == []
    assert codes("長友が現役続行を表明 FC東京と単年契約") == []
    assert codes("춘제 갈라쇼 후폭풍 [차이나 워치]") == ["CN"]


def test_forms_found_on_a_fifth_blind_round():
    assert codes("【豪ドル為替マーケット分析】") == []
    assert codes("コインベース、アブダビで許可取得") == ["AE"]
    assert codes("ヨルダン川西岸地区では襲撃が続く") == [] and codes("ヨルダン国王が来日") == ["JO", "JP"]
    assert codes("英裁判所、ヘンリー王子らに支払い命令") == ["GB"]
    assert codes("独裁政権の崩壊") == []                         # a dictatorship
    assert codes("植民地解放81年でロ朝結束") == ["KP", "RU"]
    assert codes("カナダは米関税に「同額」で対抗") == ["CA", "US"]
    assert codes("利益10倍目指す東京海上HDの新たな柱") == []
    assert codes("글로벌 시장서 K-AI 신뢰 높여") == ["KR"]
    assert codes("李대통령, 한한령·서해 문제 진전 모색") == ["KR"]
    assert codes("하나투어, ‘한일령’ 수혜") == ["JP"]
    assert codes("수도권 쏠림이 키운 K자 양극화") == [] and codes("K자형 회복 전망") == []
    assert codes("K자동차 경쟁력 강화") == ["KR"]
    # Chinese compounds before a railway, a border, friendship, ties, talks
    assert codes("中泰铁路相联通") == ["CN", "TH"] and codes("中印边境局势") == ["CN", "IN"]
    assert codes("共和党围绕美墨边境移民人数") == ["MX", "US"]
    assert codes("智利是拉美国家之一") == ["CL"]                  # Latin America, not the US
    assert "FR" not in codes("以色列军队继续在拉法等地展开行动")    # Rafah: no France


def test_forms_found_on_a_sixth_blind_round():
    assert codes("项目场址位于曲靖市会泽县境内") == []             # within the county
    assert codes("我国境内") == ["CN"] and codes("美国国内") == ["US"]
    assert codes("投机客抛售新西兰元和墨西哥比索") == []           # currencies
    assert codes("东盟与中日韩宏观经济研究办公室发布报告") == ["CN", "JP", "KR"]
    assert codes("2026美加墨世界杯1/16决赛") == ["CA", "MX", "US"]
    assert codes("朝日世論調査「支持率低下」の事実") == []          # the Asahi poll
    assert codes("俄称打击乌港口设施 乌称袭击俄炼油厂") == ["RU", "UA"]
    assert codes("乌龙事件") == [] and codes("乌鲁木齐") == []
    assert "CA" not in codes("中美加强合作")                      # 加强: no Canada
    assert codes("米小売売上高0.6%減 7月、予想大幅に下回る") == ["US"]
    assert codes("トランプ氏、米石油大手に値下げ要求") == ["US"]
    assert codes("日トルコ首脳、通航料徴収に反対") == ["JP", "TR"]
    assert codes("中小企業人に케이팝 굿즈") == ["KR"]


def test_forms_found_on_a_seventh_blind_round():
    assert codes("W co naprawdę wierzy Giorgia Meloni? Włosi przekonają się") == ["IT"]
    assert codes("Wichury w regionie Emilia-Romania") == []
    assert codes("Girlfriend of murdered Georgia high school football star") == []
    assert codes("Tokyo Olympics: Team GB enter the opening ceremony") == ["GB"]
    assert codes("My 600 CAD haul, CAD/CAM software") == []            # not Chad
    assert codes("最大的人工古柏林") == [] and codes("在柏林举行") == ["DE"]
    assert codes("进入波斯湾、阿曼湾和霍尔木兹海峡") == []
    assert codes("海岬型及巴拿马型船运价") == [] and codes("巴拿马运河") == ["PA"]
    assert codes("中国—东盟信息港股份有限公司") == ["CN"]                 # not 港股
    assert codes("向北京证券交易所申请") == []
    assert codes("保定、邢台北部等地") == [] and codes("台北市") == ["TW"]
    assert codes("罐装伞菇（西班牙语：hongos）") == []
    assert codes("在苏格兰的高尔夫度假村") == ["GB"]
    assert codes("美国考虑在这些国家境内部署") == ["US"]
    assert codes("25家国内外知名企业参展") == ["CN"]


def test_forms_found_on_an_eighth_blind_round():
    assert codes("Stromausfall: 7.000 Berliner Haushalte haben wieder Strom") == ["DE"]
    assert codes("Zwei Berlinerinnen machen aus Waldbrand-Schäden Baumaterial") == ["DE"]
    assert codes("Das WM-Finale im Londoner Alexandra Palace") == ["GB"]
    assert codes("Die Moskauer Führung droht") == ["RU"]
    assert codes("Berliner Festspiele trauern um Ex-Intendant") == []
    assert codes("Londoner Metallbörse: Kupfer steigt") == []
    assert codes("Tokyo Olympics: Ten tear-jerking moments") == []
    assert codes("黎总统称黎以停火协议获批") == ["IL", "LB"] and codes("巴以冲突") == ["IL", "PS"]
    assert codes("伊朗称对美以船只实施打击") == ["IL", "IR", "US"]
    assert codes("日以继夜地工作") == [] and codes("其中以电子产品为主") == []
    assert codes("商务部：反对美以“强迫劳动”为由对华贸易限制") == ["CN", "US"]   # 以: "by"
    assert codes("以色列同意停火后对黎空袭未停") == ["IL", "LB"]
    assert codes("以军对黎巴嫩境内的空袭") == ["LB"]                  # not China's 境内
    assert codes("孚日股份涨停") == [] and codes("前20个交易日股票交易均价") == []
    assert codes("海力士：境内韩股转换为美国存托凭证") == ["CN", "KR", "US"]
    assert codes("周三美股盘后，英伟达将公布财报") == ["US"] and codes("三美股份涨停") == []
    assert codes("黄淮海地区持续高温干旱") == [] and codes("海地总统遇刺") == ["HT"]
    assert codes("在京港澳高速保定服务区") == []
    assert codes("海合会成员国内政部长举行紧急会议") == []


def test_korean_and_chinese_forms_found_on_a_blind_round():
    assert codes("[속보] '주한미군 일방감축 견제' 내년도 美국방수권법 발효") == ["KR", "US"]
    assert codes("김주한 선수 결승골") == []
    assert codes("한국 야구, 도미니카공화국에 0대10 패") == ["DO", "KR"]
    assert codes("도미니카 여행 수요 증가") == ["DO"]
    assert codes("테헤란로 노후 빌딩 리모델링") == []               # a Seoul street
    assert codes("授权其在大中华区开发及商业化") == []               # Greater China: a region
    assert codes("为壮大中华民族经济作出新贡献") == ["CN"]
    assert codes("中证恒生沪港通AH股精明指数调入兆易创新") == ["HK"]


def test_capitals_in_korean_and_japanese():
    assert codes("베를린서 원자재 회의") == ["DE"]
    assert codes("キーウで首脳会談") == ["UA"]
    assert codes("平壌で軍事パレード") == ["KP"]
    assert codes("ロンドン金属取引所の銅相場") == []      # the exchange, not the country
    assert codes("パリ協定から離脱") == []
    assert codes("아로마 오일 인기") == []              # a word holding 로마


def test_more_korean_and_japanese_press_forms():
    assert codes("코스피, 미 훈풍에도 하락") == ["US"]          # 미 alone
    assert codes("생산량은 미미한 수준") == []               # 미미 "slight": a doubled syllable
    assert codes("일일 브리핑") == []                        # 일일 "daily"
    assert codes("대한항공, 화물 노선 확대") == ["KR"]          # Korean Air: a name holding Korea's
    assert codes("英仏独などが撤回要求") == ["DE", "FR", "GB"]   # a list before など
    assert codes("日米当局が協調介入か") == ["JP", "US"]
    assert codes("車内で米海兵隊員が死亡") == ["US"]
    assert codes("チーム・ジャパンが優勝") == ["JP"]


def test_chinese_home_words_of_other_countries_and_fixed_terms():
    assert codes("乌称袭击俄境内油库") == ["RU", "UA"]       # Russia's territory, not the outlet's
    assert codes("在日本境内暂时停飞") == ["JP"]
    assert codes("面对日趋复杂的国际形势") == []             # 面对 "facing" + 日趋 "increasingly"
    assert codes("扩大对日出口") == ["JP"]
    assert codes("俄亥俄州东巴勒斯坦城居民") == []           # East Palestine, Ohio
    assert codes("Residents of East Palestine, Ohio sued") == []
    assert codes("取决于双方国内的讨论") == []
    assert codes("国内商品期货收盘") == ["CN"]
    assert codes("截至北京时间今天") == []                  # Beijing time names no country
    assert codes("中欧班列开行突破10万列") == ["CN"]
    assert codes("日经225指数高开") == ["JP"]
    assert codes("今日经济观察") == []                      # 今日 + 经济, not the Nikkei
    assert codes("中船特气打败日韩厂商") == ["JP", "KR"]


def test_short_and_older_names_in_korean_and_japanese():
    assert codes("콩고 코발트 수출 중단") == ["CD"]           # plain Congo in mining news
    assert codes("콩고공화국 대통령 취임") == ["CG"]
    assert codes("남아공 백금 광산 파업") == ["ZA"]
    assert codes("터키 지진 피해") == ["TR"]
    assert codes("터키석 반지") == []                        # turquoise
    assert codes("コンゴ東部で衝突") == ["CD"]
    assert codes("南アの白金鉱山") == ["ZA"]
    assert codes("南アジア情勢") == []


def test_english_short_forms_nz_and_aussie():
    assert codes("NZ government cuts rates") == ["NZ"]
    assert codes("NZで景気回復") == ["NZ"]
    assert codes("Aussie miners rally on lithium") == ["AU"]
    assert codes("Aussie dollar slips") == []               # a currency alone
    assert codes("정부, 주택 공급 [HK영상]") == []           # Hankyung's tag, not Hong Kong


def test_a_currency_named_by_its_country_adjective_is_no_country():
    # LABELING.md: currencies alone do not count ("US-Dollar"); the country itself does
    assert codes("Gold rises against the US dollar and the Japanese yen") == []
    assert codes("Der Euro kostete 1,10 US-Dollar, der Schweizer Franken legte zu") == []
    assert codes("Kredyty we frankach szwajcarskich i kurs dolara amerykańskiego") == []
    assert codes("The US economy grew; the U.S. dollar fell") == ["US"]


def test_english_demonyms_of_smaller_countries():
    assert codes("US sanctions Nicaraguan officials and two Honduran gang members") == ["HN", "NI", "US"]
    assert codes("Salvadoran and Costa Rican ministers met Liberian envoys") == ["CR", "LR", "SV"]
    assert codes("South Sudanese refugees") == ["SS"]            # not Sudan
    assert codes("The Equatorial Guinean president") == ["GQ"]  # not Guinea
    assert codes("Delhi pollution: restrictions on construction") == ["IN"]


def test_first_names_and_a_railway_are_not_territories():
    assert codes("Alan Wake 2 reviews are out") == []            # not Åland
    assert codes("BNSF, CSX and Norfolk Southern") == []         # not Norfolk Island


def test_currency_blockers_leave_ordinary_words_alone():
    assert codes("Brazilian real estate developers borrow more") == ["BR"]
    assert codes("A South Korean won the bid for the copper mine") == ["KR"]
    assert codes("Norwegian kroner and Swedish kronor fell; die norwegischen Kronen auch") == []


def test_american_samoa_and_west_timor():
    assert codes("American Samoan leaders oppose deep-sea mining") == ["AS"]   # not US, WS
    assert codes("West Timorese villagers protest a manganese mine") == []     # a region


def test_the_kremlin_alone_names_no_country():
    assert codes("The E.U. proposes fresh sanctions against the Kremlin") == []
    assert codes("Der Kreml droht Moskaus Nachbarn") == ["RU"]           # the capital does


def test_a_name_does_not_run_on_over_a_sentence_end():
    assert codes("Rare earths went to the US. Dollar prices of magnets rose") == ["US"]
    assert codes("The U.S. Dollar Index rose") == []               # initials run on
    assert codes("Talks in St. Lucia and the EE. UU. on cobalt") == ["LC", "US"]
    assert codes("The R.D. Congo sets cobalt quotas") == ["CD"]


def test_islanders_in_english_are_not_icelanders():
    assert codes("Washington Capitals – New York Islanders 3:2") == []
    assert codes("Pacific Islanders and Torres Strait Islander groups") == []
    assert codes("Cook Islanders debate seabed nodules") == ["CK"]
    assert codes("Die Isländer stimmten ab; den Isländern gefällt das") == ["IS"]



def test_island_is_iceland_only_in_german_text():
    assert codes("A zoo in Rhode Island welcomes a wolf pup") == []
    assert codes("Fur farms on Prince Edward Island: mink die of flu") == []   # "fur", "die"
    assert codes("Die Regierung in Island und der Fischfang") == ["IS"]


def test_spanish_america_is_the_continent():
    assert codes("El litio de América del Sur y de América") == []
    assert codes("Exports to America fell") == ["US"]


@pytest.mark.parametrize("title, expected", [
    # ordinary words and people's names that CLDR names of other languages had made countries
    ("Dane GUS: wydobycie miedzi spadło w październiku", []),          # Polish "data"
    ("Taki ruch może uderzyć w rynek litu", []),                        # Polish "such"
    ("Zum ersten Male seit Jahren steigt der Kupferpreis", []),         # German "times"
    ("Helena Kennedy criticises cobalt supply chains", []),
    ("Shin Dong-bin says Lotte will invest in batteries", []),
    ("Iryna Mudra dismissed after the audit", []),
    ("Leon Edwards beats Kamaru Usman", []),
    ("Mauricio Macri backs lithium law in Argentina", ["AR"]),
    ("Grenade attack at a gold mine", []),
    ("Prinz Turki besucht eine Lithiummine", []),
    # Spanish, Italian and Portuguese adjectives count in lower case, as those languages write
    # them: a capitalised one in English or German text is a surname
    ("Alessia Russo scores twice", []),
    ("Frances Haugen joins a lithium startup", []),
    ("Domenico Tedesco names his squad", []),
    ("How Taylor Swift rose from 'Miss Americana'", []),
    ("el presidente francés y el ministro ruso", ["FR", "RU"]),
    ("il governo tedesco e quello russo", ["DE", "RU"]),
    ("Los daneses votan", ["DK"]),
    # what stays: the countries' own names, German "Däne" in German text, Polish cases
    ("Der Däne gewinnt die Etappe und die Tour", ["DK"]),
    ("Danes vote on Sunday", ["DK"]),
    ("Polska i Dania podpisały umowę", ["DK", "PL"]),
    ("Wspólnie z Grenadą i Dominiką", ["DM", "GD"]),
])
def test_words_and_names_that_other_languages_call_countries_name_none(title, expected):
    assert codes(title) == expected


def test_georgia_beside_the_us_is_the_country_when_its_places_or_leaders_say_so():
    """The US named beside "Georgia" made it the state; a city, region or leader of the
    country (the Chiatura manganese mines, Batumi, Kobakhidze) says it is the country."""
    assert codes("Georgia and the United States sign a minerals partnership",
                 "The Chiatura mines produce manganese ore.") == ["GE", "US"]
    assert codes("Georgia's manganese exports rise",
                 "Shipments from Batumi to the US and China rose.") == ["CN", "GE", "US"]
    assert codes("Kemp signs a bill in Georgia", "The US state passed a budget.") == ["US"]
    assert codes("Georgia Power raises rates", "The Atlanta utility serves the state.") == []


def test_jordans_companies_name_the_country_and_its_people_do_not():
    """A country's name inside an organisation's name counts (LABELING.md): the person
    rule read "Jordan Phosphate" as a first name and a surname."""
    assert codes("Jordan Phosphate Mines Company raises output") == ["JO"]
    assert codes("Jordan Bromine expands its plant") == ["JO"]
    assert codes("Jordan Henderson signs for Ajax") == []


# --- false friends found by reading the whole pool (twenty-second session) -------------------

def test_polish_forms_that_are_other_words_elsewhere():
    assert codes("Hosted by: Stefan Chin, with a new episode") == []        # a surname
    assert codes("Eksport do Chin wzrósł o połowę") == ["CN"]
    assert codes("DRK-Präsident fordert mehr Geld für den Katastrophenschutz") == []   # Red Cross
    assert codes("Walki we wschodniej DRK, gdzie wydobywa się kobalt") == ["CD"]


def test_jordan_and_chad_as_people():
    assert codes("Rep. Jim Jordan said the committee would meet") == []
    assert codes("Psychologist Jordan B. Peterson speaks tonight") == []
    assert codes("Vernon Jordan, civil rights leader, dies") == []
    assert codes("Jordan bans imports; King Abdullah of Jordan met the envoy") == ["JO"]
    assert codes("Israel And Jordan Sign Water Deal") == ["IL", "JO"]        # a title-case line
    assert codes("Chad and Niger close the border") == ["NE", "TD"]


def test_a_coalition_a_continent_and_names_that_hold_an_abbreviation():
    assert codes("Nach dem Jamaika-Aus sucht die Union neue Partner") == []
    assert codes("Urlaub auf Jamaika wird teurer, sagt der Verband") == ["JM"]
    assert codes("Antarctica's sea ice shrinks again") == []               # a continent
    assert codes("欧洲央行行长拉加德表示通胀仍高") == []                   # Lagarde: 加 and 德
    assert codes("乌兰察布在蒙古语中的意思") == []                        # a language
    assert codes("蒙古国总统访华") == ["CN", "MN"]


def test_a_country_after_another_and_polish_without_diacritics_still_count():
    """The review of this session's rules: "Jordan" or "Chad" at the end of a text after a
    capitalised word raised IndexError (a feed's poll failed on it), a country list lost
    them, and Polish headlines without a letter with a diacritic lost "Chin" and "DRK"."""
    assert codes("Clashes near Lake Chad") == ["TD"]
    assert codes("Talks in Amman Jordan") == ["JO"]
    assert codes("Egypt Jordan and Iraq sign a phosphate deal") == ["EG", "IQ", "JO"]
    assert codes("Saudi Arabia Jordan trade rises") == ["JO", "SA"]
    assert codes("Libya Chad border clashes") == ["LY", "TD"]
    assert codes("Stal z Chin zalewa rynek UE") == ["CN"]
    assert codes("Kobalt z DRK trafia do Chin") == ["CD", "CN"]
    assert codes("Vernon Jordan dies at 85") == []
    assert codes("Das DRK hilft. Ich sage nicht, wie sie es macht, und ich hoffe, sie bleibt.") == []
