"""What an article's text names, apart from its topics: language, countries, minerals.

Run in the service process, or beside the parse in a parse process (``extract`` is the
job the poll sends there, so the service process keeps its core for classifying and
storing, and does not hold the language and country data itself). The data load on first
use in whichever process runs it."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.types import Extraction


def extract(docs: Sequence[tuple[str, str, str | None]]) -> list[Extraction]:
    """(title, text, language hint) → Extraction, in order."""
    from monitor.countries import extract_countries
    from monitor.language import detect_languages
    from monitor.minerals import extract_minerals

    return [Extraction(language=language, countries=tuple(extract_countries(title, text)),
                       minerals=tuple(extract_minerals(title, text)))
            for (title, text, _), language in zip(docs, detect_languages(docs), strict=True)]
