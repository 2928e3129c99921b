"""The README's screenshot: the digest of a realistic day, rendered and shot with Chromium.

    .venv/bin/python docs/screenshot.py            # writes docs/digest.png

The stories are written for the project (no outlet's text): a day of the kind the service
sees — a both-topic story carried by three wires, export controls in several languages,
mine and price news — built into a digest exactly as the service builds one
(``build_digest`` with the shipped ranking and sections, ``render``, the default subject).
Needs Debian's chromium.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.config import parse_config  # noqa: E402
from monitor.digest import build_digest, render, subject  # noqa: E402
from monitor.types import DigestArticle  # noqa: E402

START = datetime(2026, 3, 9, 6, 0, tzinfo=timezone.utc)
EC, CM = "export-controls", "critical-minerals"

# (source, language, title, text, topics, model probability, keywords, countries, minerals,
#  minutes after START, cluster)
DAY = [
    ("Metals Wire", "en", "Beijing adds dysprosium and terbium magnets to export licence list",
     "China's commerce ministry said exporters of rare-earth magnets containing dysprosium or "
     "terbium will need a licence for each shipment from April 1; Japanese and US buyers said "
     "they were reviewing inventories.", (EC, CM), 0.98, ("export licen*", "rare earth*"),
     ("CN", "JP", "US"), ("dysprosium", "terbium", "magnets"), 30, 1),
    ("Trade Desk", "en", "China widens rare-earth magnet licensing to heavy elements",
     "Licences will be required for magnets containing dysprosium or terbium from April 1, "
     "the commerce ministry said.", (EC, CM), 0.97, ("rare earth*",), ("CN",),
     ("dysprosium", "terbium", "magnets"), 45, 1),
    ("Rohstoff-Ticker", "de", "China verschärft Exportkontrollen für Seltene-Erden-Magnete",
     "Ab April brauchen Ausfuhren von Magneten mit Dysprosium oder Terbium eine Einzelgenehmigung; "
     "deutsche Autozulieferer prüfen ihre Lagerbestände.", (EC, CM), 0.96,
     ("Exportkontroll*", "Seltene*"), ("CN", "DE"), ("dysprosium", "terbium", "magnets"), 70, 1),
    ("Policy Brief", "en", "Netherlands extends licence rule to older deep-UV lithography tools",
     "The Dutch trade ministry said shipments of older immersion scanners to China will need a "
     "national licence, aligning with US rules announced last year.", (EC,), 0.95,
     ("export licen*",), ("CN", "NL", "US"), (), 95, 2),
    ("Asia Markets", "zh", "商务部：对锑相关物项出口实施许可管理",
     "商务部、海关总署发布公告，对锑矿砂及其精矿、锑金属等物项实施出口管制，自公告之日起执行。",
     (EC, CM), 0.94, ("出口管制",), ("CN",), ("antimony",), 120, 3),
    ("Mining Journal", "en", "Codelco and Chilean partner sign 20-year lithium offtake with Korean cathode maker",
     "The agreement covers 25,000 tonnes of lithium carbonate a year from the Salar de Maricunga "
     "project from 2028.", (CM,), 0.93, ("lithium carbonate",), ("CL", "KR"), ("lithium",), 150, 4),
    ("Rynek Surowców", "pl", "KGHM wstrzymuje wydobycie w kopalni miedzi po wstrząsie",
     "Spółka podała, że praca w jednym z oddziałów kopalni została wstrzymana do czasu "
     "zakończenia kontroli; produkcja miedzi w kwartale może być niższa.", (CM,), 0.9,
     ("miedzi",), ("PL",), ("copper",), 200, 5),
    ("Metals Wire", "en", "Gallium prices in Rotterdam hit two-year high on tight Chinese supply",
     "Free-market gallium rose 12% in a week as traders outside China competed for metal "
     "after licence approvals slowed.", (CM,), 0.91, ("gallium",), ("CN", "NL"), ("gallium",),
     240, 6),
    ("Resources Daily", "en", "Australian graphite mine restarts processing after power upgrade",
     "The operator said the plant would reach nameplate output of 30,000 tonnes of graphite "
     "concentrate a year by the third quarter.", (CM,), 0.88, ("graphite",), ("AU",),
     ("graphite",), 300, 7),
    ("Korea Economic", "ko", "정부, 핵심광물 비축 확대…희토류 재고 100일분으로",
     "산업통상자원부는 희토류와 갈륨 등 핵심광물 비축량을 단계적으로 늘리겠다고 밝혔다.",
     (CM,), 0.87, ("핵심광물",), ("KR",), ("rare-earths", "gallium", "critical-minerals"), 330, 8),
    ("Policy Brief", "en", "Congo extends cobalt export quota system for another quarter",
     "The regulator said quotas would stay in place while it reviews stockpiles held by "
     "producers.", (EC, CM), 0.92, ("cobalt",), ("CD",), ("cobalt",), 360, 9),
]


def articles() -> tuple[list[DigestArticle], dict[int, int]]:
    out, clusters = [], {}
    for i, (source, lang, title, text, topics, p, keywords, countries, minerals, minutes,
            group) in enumerate(DAY, 1):
        reasons = tuple(f"classifier {t} {p if t in topics else 0.05:.2f}" for t in (CM, EC))
        reasons += tuple(f'keyword "{k}"' for k in keywords)
        when = START + timedelta(minutes=minutes)
        out.append(DigestArticle(id=4200 + i, title=title, text=text,
                                 url=f"https://{source.lower().replace(' ', '-')}.example/{i}",
                                 source=source, published=when,     # seen 4 minutes later
                                 first_seen=when + timedelta(minutes=4), language=lang,
                                 topics=topics, score=p, reasons=reasons, countries=countries,
                                 minerals=minerals))
        clusters[4200 + i] = 4200 + min(j for j, row in enumerate(DAY, 1) if row[10] == group)
    return out, clusters


def main() -> int:
    config = parse_config({})
    day, clusters = articles()
    digest = build_digest(day, clusters, digest_date="2026-03-10", period_start=START,
                          period_end=START + timedelta(days=1), zone=ZoneInfo("Europe/Berlin"),
                          max_items=config.digest.max_items, config_file="config/monitor.toml")
    html, _ = render(digest, subject(config.digest.subject, digest))
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium (apt-get install chromium): docs/digest.png not refreshed")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "digest.html"
        page.write_text(html, encoding="utf-8")
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", f"--user-data-dir={tmp}/profile",
                        "--hide-scrollbars", "--window-size=800,1900",
                        f"--screenshot={ROOT / 'docs' / 'digest.png'}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
    print("wrote docs/digest.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
