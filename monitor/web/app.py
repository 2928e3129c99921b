"""`monitor serve`: the review pages, a Starlette application over the same store.

    /                    flagged items, newest first, with filters and paging
    /export.csv|.json    the current filter's items (at most EXPORT_LIMIT)
    /items/{id}          one item: text, why, passage, near-duplicates, history, verdict form
    /items/{id}/review   POST only: record a verdict (the same review rows as the CLI)
    /feeds               feed health, as `monitor feeds`
    /keywords            dry run of an edited rule set (POST shows what would change)
    /static/app.css      the one stylesheet; no JavaScript anywhere

Pages are rendered with the digest's Jinja2 environment (autoescaped). GET never writes:
a review link from the digest opens a session and redirects to its item; the verdict is
a POST from that page with its CSRF token. Responses carry a strict Content-Security-
Policy and ``Referrer-Policy: same-origin``: no other site learns an address of this one
(a review link's token is dropped from the address by a redirect anyway), while the
browser still sends the Origin that the POST check compares.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from monitor import TOPICS
from monitor.exceptions import ConfigError, MonitorError
from monitor.numbers import is_whole
from monitor.review import VERDICTS, article_json
from monitor.types import ArticleView, DigestArticle
from monitor.web.access import (CSRF_COOKIE, FAILED_SIGN_INS, FAILED_WINDOW, SESSION_COOKIE,
                                Access, csrf_ok, new_csrf_token, same_origin, usable_csrf_cookie)
from monitor.web.filters import ListFilter

log = logging.getLogger("monitor.serve")

EXPORT_LIMIT = 50_000
DRYRUN_LIMIT = 10_000         # articles a keywords dry run examines at most
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")


class ReviewApp:
    """The pages and what they share: config, store, access rules, the analyser."""

    def __init__(self, config, store, access: Access, clock, analyzer=None, config_file=None) -> None:
        self.config = config
        self.store = _StoreFileGuard(store)
        self.access = access
        self.clock = clock
        self._analyzer = analyzer
        self.config_file = config_file      # re-read when it changes (None: never)
        self._stamp = self._files_stamp()
        from monitor.digest import environment

        self.env = environment()

    def _files_stamp(self):
        from monitor.classify import model_files_stamp
        from monitor.resources import file_stamp

        if self.config_file is None:
            return None
        return file_stamp(self.config_file), model_files_stamp(self.config.classifier.model_path())

    def refresh(self) -> None:
        """The config and the model as their files are now: the server runs for days while
        analysts edit [keywords] and `monitor train` replaces the model, and the keywords
        page starts from the config's rules and dry-runs them with its model. An invalid
        edit is logged and the previous config stays (as `monitor run` does)."""
        stamp = self._files_stamp()
        if stamp == self._stamp:
            return
        from monitor.config import load_config

        try:
            self.config = load_config(self.config_file)
        except MonitorError as exc:
            log.error("config change ignored, previous config stays in force: %s", exc)
        self._analyzer = None               # loaded again from the files as they are now
        self._stamp = self._files_stamp()

    @property
    def analyzer(self):
        if self._analyzer is None:
            from monitor.analyze import Analyzer

            self._analyzer = Analyzer.from_config(self.config, lazy=True)
        return self._analyzer

    # -- plumbing ----------------------------------------------------------------------
    def _reviewer(self, request: Request) -> str | None:
        return self.access.reviewer(request.cookies, request.headers.get("authorization"), self.clock())

    def _denied(self, request: Request, message: str | None = None) -> Response:
        """401 (Basic sign-in) or 403, with ``message`` or how to get in."""
        if message is None:
            how = self._how_to_get_in("an item")
            message = how[0].upper() + how[1:] + "."
        if self.access.basic:
            return self._page(request, "denied.html.j2", 401, reviewer=None, message=message,
                              headers={"WWW-Authenticate": 'Basic realm="monitor", charset="UTF-8"'})
        return self._page(request, "denied.html.j2", 403, reviewer=None, message=message)

    def _how_to_get_in(self, what: str) -> str:
        opened = f"open {what} from a review link in the digest"
        return f"sign in with the monitor user name and password, or {opened}" if self.access.basic else opened

    async def _signed_out_verdict(self, request: Request, article_id: int) -> Response:
        """A verdict POSTed once the sign-in has ended (an item page left open past its review
        link's session): not saved, and said so, with the note typed when the form is this
        site's own. It had been the bare "open an item from a review link", the note lost."""
        form, refused = await self._form(request)
        verdict = form.get("verdict") if form is not None else None
        typed = str(form.get("note") or "").strip() if form is not None and refused is None else ""
        given = f" ({'not relevant' if verdict == 'irrelevant' else verdict})" if verdict in VERDICTS else ""
        return self._denied(request, (
            f"Your verdict{given} on item #{article_id} was not saved: you are no longer signed in "
            "(the session a review link opens ends when the link expires)."
            + (f" Your note was: “{typed}”." if typed else "")
            + f" To give it, {self._how_to_get_in('the item again')}."))

    def _page(self, request: Request, template: str, status: int = 200, *,
              headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        cookie = request.cookies.get(CSRF_COOKIE)
        token = cookie if cookie is not None and usable_csrf_cookie(cookie) else new_csrf_token()
        html = self.env.get_template(f"web/{template}").render(
            csrf=token, path=request.url.path, topics=TOPICS, why_of=_why_of, **context)
        response = HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
        if token != cookie:
            # Lax, not Strict: a click in web mail (another site) must still carry the cookie,
            # or each item opened from the digest set a new one and every form already open
            # in another tab went stale. A POST from another site carries it under neither.
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax",
                                secure=request.url.scheme == "https", path="/")
        return response

    async def _form(self, request: Request):
        """(the POSTed form, None) if its CSRF token and Origin check out, else (the form or
        None, why not: "origin" for another site's, "token" for a missing or stale token)."""
        form = await request.form()
        host = request.headers.get("host")
        if self.access.behind_proxy:     # the name the browser used, as the proxy passes it on
            host = request.headers.get("x-forwarded-host", "").split(",")[0].strip() or host
            port = request.headers.get("x-forwarded-port", "").split(",")[0].strip()
            if host and port and ":" not in host.rsplit("]", 1)[-1]:
                host = f"{host}:{port}"             # a default port is dropped when compared
        if not same_origin(request.headers.get("origin"), request.url.scheme, host):
            return None, "origin"
        submitted = form.get("csrf")
        if not csrf_ok(request.cookies.get(CSRF_COOKIE), submitted if isinstance(submitted, str) else None):
            return form, "token"
        return form, None

    def _refused_form(self, request: Request, reviewer: str | None) -> Response:
        return self._page(request, "denied.html.j2", 403, reviewer=reviewer,
                          message="This form could not be checked (its CSRF token is missing or "
                                  "stale, or it came from another site). Nothing was changed: "
                                  "reload the page and try again.")

    STALE_FORM = ("{done}: this page was opened before another monitor page in this browser, "
                  "so its form could not be checked. {kept}")

    # -- pages -------------------------------------------------------------------------
    async def flagged(self, request: Request) -> Response:
        reviewer = self._reviewer(request)
        if reviewer is None:
            return self._denied(request)
        wanted = ListFilter.from_query(request.query_params)
        size = self.config.serve.page_size
        rows, first, newer, older, lost = await run_in_threadpool(self._list_page, wanted, size)
        from monitor.minerals import mineral_ids

        zone = self.config.digest.zone()
        return self._page(request, "list.html.j2", reviewer=reviewer, f=wanted, rows=rows,
                          first=first, newer=newer, older=older, minerals=mineral_ids(),
                          zone=self.config.digest.timezone, local=lambda dt: dt.astimezone(zone),
                          problems=(*wanted.problems, *([lost] if lost else [])))

    def _list_page(self, wanted: ListFilter, size: int):
        """(rows, position of the first, whether newer and older ones exist, a problem).
        A page starts after (or ends before) an item, not at an offset: reviewing the items
        of an "unreviewed" page and going on had skipped the next page's worth."""
        filters = wanted.store_filters(self.config.digest.zone())
        cursor = wanted.older or wanted.newer
        key = self.store.sort_key(cursor) if cursor else None
        lost = None
        if cursor and key is None:
            lost = f"{'older' if wanted.older else 'newer'}: there is no item #{cursor}; the newest are shown"
        rows = []
        if key is not None and wanted.newer:
            rows = self.store.review_list(**filters, newer_than=key, limit=size)
            if len(rows) < size:        # back at the top: the first page, full
                key, rows = None, []
        if not rows:
            rows = self.store.review_list(**filters, older_than=key, limit=size)
        if not rows:
            return rows, 1, False, False, lost
        # a row's place in the order is (published, else first seen; id): what sort_key reads
        before = self.store.count_listed(**filters, newer_than=(rows[0].published, rows[0].id))
        last = (rows[-1].published, rows[-1].id)
        older = bool(self.store.review_list(**filters, older_than=last, limit=1))
        return rows, before + 1, before > 0, older, lost

    async def export(self, request: Request) -> Response:
        reviewer = self._reviewer(request)
        if reviewer is None:
            return self._denied(request)
        kind = request.path_params["kind"]
        if kind not in ("csv", "json"):
            return await _not_found(request, LookupError(kind))
        wanted = ListFilter.from_query(request.query_params)
        # the list page says which part of a filter it left out; a download has no page to
        # say it on, and all the items instead of the filtered ones would pass for them (a
        # page number means nothing to an export, and a search cut to its length still runs)
        dropped = [p for p in wanted.problems if not p.startswith(("older:", "newer:", "q:"))]
        if dropped:
            return PlainTextResponse("Not exported: " + "; ".join(dropped) + "\n",
                                     status_code=400, headers=SECURITY_HEADERS)
        filters = {**wanted.store_filters(self.config.digest.zone()), "limit": EXPORT_LIMIT}
        rows = await run_in_threadpool(self.store.review_list, **filters)
        headers = {**SECURITY_HEADERS,
                   "Content-Disposition": f'attachment; filename="monitor-flagged.{kind}"'}
        if kind == "json":
            body = json.dumps([article_json(r) for r in rows], ensure_ascii=False, indent=1)
            return Response(body, media_type="application/json", headers=headers)
        return StreamingResponse(_csv_lines(rows), media_type="text/csv; charset=utf-8", headers=headers)

    async def item(self, request: Request) -> Response:
        article_id = request.path_params["article_id"]
        if "t" in request.query_params:
            return self._open_link(request, article_id)
        reviewer = self._reviewer(request)
        if reviewer is None:
            return self._denied(request)
        return await self._item_page(request, article_id, reviewer)

    async def _item_page(self, request: Request, article_id: int, reviewer: str, status: int = 200,
                         error: str | None = None, note: str = "",
                         ticked: tuple[str, ...] | None = None) -> Response:
        detail = await run_in_threadpool(self.store.review_detail, article_id)
        if detail is None:
            return self._page(request, "denied.html.j2", 404, reviewer=reviewer,
                              message=f"There is no item #{article_id} in this store.")
        chosen = request.query_params.get("v")
        following = await run_in_threadpool(self._next_to_review, article_id)
        return self._page(request, "item.html.j2", status, reviewer=reviewer, d=detail,
                          following=following,
                          a=detail.article, story=_story(detail.article),
                          chosen=chosen if chosen in VERDICTS else None, error=error, note=note,
                          ticked=detail.article.topics if ticked is None else ticked,
                          saved=request.query_params.get("saved") in VERDICTS,
                          expired="expired" in request.query_params)

    def _next_to_review(self, article_id: int):
        """The flagged item nobody has reviewed yet that comes after ``article_id`` in the
        list's order (newest first), else the newest such item; None when there is none
        but this one. Going through the backlog from an item had meant the list again after
        every verdict (some twenty Tab presses past the filters)."""
        key = self.store.sort_key(article_id)
        rows = self.store.review_list(status="unreviewed", older_than=key, limit=1) if key else []
        if not rows:
            rows = [r for r in self.store.review_list(status="unreviewed", limit=2) if r.id != article_id]
        return rows[0] if rows else None

    def _open_link(self, request: Request, article_id: int) -> Response:
        """A review link: check it, open a session for its recipient, redirect to the item
        (without the token, so it stays out of the browser's history). Writes nothing."""
        from monitor.tokens import TokenError, read_review_token

        now = self.clock()
        if self.access.link_key is None:
            return self._page(request, "denied.html.j2", 403, reviewer=None,
                              message="Review links are not enabled on this server: the variable "
                                      f"${self.config.digest.review_key_env} is not set (or is "
                                      "shorter than 16 characters) where `monitor serve` runs.")
        try:
            grant = read_review_token(self.access.link_key, request.query_params["t"], now)
        except TokenError as exc:
            log.warning("review link refused (%s) for item %s", exc.reason, article_id)
            if exc.reason == "expired" and self._reviewer(request) is not None:
                # signed in anyway (this machine, a session, Basic): the item, without the link
                chosen = request.query_params.get("v")
                keep = f"&v={chosen}" if chosen in VERDICTS else ""
                return RedirectResponse(f"/items/{article_id}?expired=1{keep}", status_code=303,
                                        headers=SECURITY_HEADERS)
            return self._page(request, "denied.html.j2", 403, reviewer=None, message=str(exc) + ".")
        if grant.article_id != article_id:
            return self._page(request, "denied.html.j2", 403, reviewer=None,
                              message="This review link belongs to another item.")
        value, max_age = self.access.session_for(grant.recipient, grant.expires, now)
        target = f"/items/{article_id}"
        if request.query_params.get("v") in VERDICTS:
            target += f"?v={request.query_params['v']}"
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(SESSION_COOKIE, value, max_age=max_age, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")
        return response

    async def review(self, request: Request) -> Response:
        from monitor.exceptions import UsageError
        from monitor.review import check_note, check_topics, review_topics

        reviewer = self._reviewer(request)
        article_id = request.path_params["article_id"]
        if reviewer is None:
            return await self._signed_out_verdict(request, article_id)
        form, refused = await self._form(request)
        if form is None or (refused and not isinstance(form.get("verdict"), str)):
            return self._refused_form(request, reviewer)
        verdict = str(form.get("verdict") or "")
        typed = str(form.get("note") or "")
        ticked = tuple(str(t) for t in form.getlist("topics"))
        if refused:     # the same site's page with a stale token (another tab set a new one)
            error = self.STALE_FORM.format(done="Not saved yet", kept="Your topics and note are "
                                           "kept below: click your verdict again.")
            return await self._item_page(request, article_id, reviewer, 403, error=error,
                                         note=typed, ticked=ticked)
        note = None
        try:
            note = check_note(typed)                 # as `monitor review mark` keeps it
            if verdict not in VERDICTS:
                raise UsageError("choose relevant or not relevant")
            given = check_topics(list(ticked)) if verdict == "relevant" else ()
            if verdict == "relevant" and not given:
                # the form ticks the article's topics to begin with: none ticked is none
                # meant, not "the article's topics" (what `review mark` without --topic does)
                raise UsageError("tick the topics it is relevant to")
            current = await run_in_threadpool(self.store.article_topics, [article_id])
            if article_id not in current:
                return self._page(request, "denied.html.j2", 404, reviewer=reviewer,
                                  message=f"There is no item #{article_id} in this store.")
            chosen = review_topics(verdict, given, current,
                                   ask="tick the topics it is relevant to")
            await run_in_threadpool(self.store.add_reviews, chosen, verdict, note, reviewer, self.clock())
        except UsageError as exc:
            return await self._item_page(request, article_id, reviewer, 400, error=str(exc), note=typed,
                                         ticked=ticked)
        except MonitorError as exc:
            log.error("review of item %s not saved: %s", article_id, exc)
            try:
                return await self._item_page(request, article_id, reviewer, 503,
                                             error=f"not saved, try again: {exc}", note=typed,
                                             ticked=ticked)
            except MonitorError:        # the store cannot even be read: the note, at least
                return self._page(request, "denied.html.j2", 503, reviewer=reviewer, message=(
                    f"Your verdict on item #{article_id} was not saved: {exc}. Try again when "
                    "the store is back" + (f"; your note was: {typed}" if typed.strip() else ".")))
        log.info("item %s marked %s by %s", article_id, verdict, reviewer)
        return RedirectResponse(f"/items/{article_id}?saved={verdict}", status_code=303,
                                headers=SECURITY_HEADERS)

    async def feeds(self, request: Request) -> Response:
        reviewer = self._reviewer(request)
        if reviewer is None:
            return self._denied(request)
        rows = await run_in_threadpool(self.store.feed_health, self.clock(),
                                       self.config.poll.broken_after_errors)
        return self._page(request, "feeds.html.j2", reviewer=reviewer, rows=rows)

    async def keywords(self, request: Request) -> Response:
        reviewer = self._reviewer(request)
        if reviewer is None:
            return self._denied(request)
        self.refresh()
        spec = self.config.keywords.spec()
        lists = {key: "\n".join(values) for key, values in spec.items()}
        if request.method == "GET":
            return self._page(request, "keywords.html.j2", reviewer=reviewer, lists=lists, days=7,
                              diff=None, late=None, error=None, toml=None, limit=DRYRUN_LIMIT)
        form, refused = await self._form(request)
        if form is None:
            return self._refused_form(request, reviewer)
        lists = {key: str(form.get(key) or "") for key in spec}
        if refused:     # a stale token: the page again, with what was typed, to try again
            return self._page(request, "keywords.html.j2", 403, reviewer=reviewer, lists=lists,
                              days=str(form.get("days") or "7"), diff=None, late=None, toml=None,
                              limit=DRYRUN_LIMIT, error=self.STALE_FORM.format(
                                  done="Not tried yet", kept="What you typed is kept below: try it again."))
        days_text = str(form.get("days") or "7").strip()
        days = int(days_text) if is_whole(days_text) and 1 <= int(days_text) <= 365 else 0
        error = None if days else f"days: expected a whole number from 1 to 365, got {days_text!r}"
        diff = rules = late = None
        if error is None and not self.access.loopback:
            error = _new_regex(_spec(lists), spec)
        if error is None:
            try:
                from monitor.keywords import KeywordRules

                rules = KeywordRules.compile(_spec(lists))
            except ConfigError as exc:
                error = str(exc)
        model_error = None
        if rules is not None:
            diff, late = await run_in_threadpool(self._dry_run, rules, days)
            model_error = self.analyzer.model_error
        status = 400 if error else 200
        return self._page(request, "keywords.html.j2", status, reviewer=reviewer, lists=lists,
                          days=days or days_text, diff=diff, late=late, error=error,
                          limit=DRYRUN_LIMIT, model_error=model_error,
                          toml=_toml(_spec(lists)) if rules is not None else None)

    def _dry_run(self, rules, days: int):
        """What the rules would change over the period, and what to say of the newly
        flagged articles that fall in periods already mailed (None when there are none)."""
        from monitor.analyze import Analyzer
        from monitor.rerun import rerun
        from monitor.review import before_last_digest_text

        base = self.analyzer
        trial = Analyzer(base.classifier, rules, base.threshold)
        since = self.clock() - timedelta(days=days)
        diff = rerun(self.store, trial, since, limit=DRYRUN_LIMIT)
        missed, last = self.store.before_last_digest([c.article.id for c in diff.newly_flagged])
        if not missed or last is None:
            return diff, None
        return diff, before_last_digest_text(missed, len(diff.newly_flagged), last, ids=False)

    async def stylesheet(self, request: Request) -> Response:
        from monitor.resources import templates_dir

        css = (templates_dir() / "web" / "app.css").read_text(encoding="utf-8")
        return Response(css, media_type="text/css", headers={**SECURITY_HEADERS,
                                                             "Cache-Control": "max-age=3600"})

    async def healthz(self, request: Request) -> Response:
        """"ok" when the store answers a read, else 503 and why (a monitoring probe had
        heard "ok" while every page failed)."""
        try:
            await run_in_threadpool(self.store.began_at)
        except MonitorError as exc:
            # /healthz answers without sign-in (a probe has no review link): why the store
            # failed (its URL, host, user, a path) is for those let in, and for the log
            if self._reviewer(request) is None:
                log.error("healthz: %s", exc)
                return PlainTextResponse("store unavailable", status_code=503,
                                         headers=SECURITY_HEADERS)
            return PlainTextResponse(f"store unavailable: {exc}", status_code=503,
                                     headers=SECURITY_HEADERS)
        return PlainTextResponse("ok", headers=SECURITY_HEADERS)

    async def not_allowed(self, request: Request) -> Response:
        return self._page(request, "denied.html.j2", 405, reviewer=None, headers={"Allow": "POST"},
                          message="405: this address changes nothing with GET; use the page's form")


class _StoreFileGuard:
    """The store, as long as its SQLite file is the one the server opened. A file deleted
    or replaced under the running server (moved away, a backup put in its place) would take
    verdicts into the deleted file, where they are lost, while every page and /healthz
    answered as if all were well: each use of the store then raises StorageError instead
    (a 503 page naming the file; a verdict's note is kept on it), as `monitor run` stops."""

    def __init__(self, store) -> None:
        from monitor.storage.reviews import sqlite_file

        self._store = store
        self._file = sqlite_file(store.url)
        self._opened = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        from monitor.storage.reviews import sqlite_file_identity

        return sqlite_file_identity(self._store.url)

    def __getattr__(self, name: str):
        if self._file is not None and self._identity() != self._opened:
            from monitor.exceptions import StorageError

            raise StorageError(f"the store file {self._file} was deleted or replaced while "
                               "monitor serve ran: nothing more is read from or written to the "
                               "old one; start monitor serve again to use the file there now")
        return getattr(self._store, name)


def _story(article: ArticleView):
    """A one-article digest Story, for the digest's analyst-worded "why" and passage."""
    from monitor.digest import Story

    lead = DigestArticle(id=article.id, title=article.title, text=article.text, url=article.url,
                         source=article.source, published=article.published,
                         first_seen=article.first_seen, language=article.language,
                         publisher=article.publisher,
                         topics=article.topics, score=article.score or 0.0,
                         reasons=article.reasons, countries=article.countries,
                         minerals=article.minerals, cluster_id=article.cluster_id)
    return Story(lead=lead, members=(lead,), rank=0.0)


def _why_of(article: ArticleView) -> str:
    """Why an item was flagged, in the digest's words, for the topic it was flagged for
    (both topics' evidence when it has both or none)."""
    from monitor.digest import why

    topics = [t for t in TOPICS if t in article.topics]
    return why(_story(article), topics[0] if len(topics) == 1 else "both")


def _spec(lists: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """The keyword spec of the page's text areas: one phrase a line; "# " (a hash and a
    space) starts a comment, while "#rareearths", a hashtag the config may hold, is a phrase
    (it had been dropped as a comment from the dry run and from the block to paste back)."""
    return {key: tuple(p for p in (line.strip() for line in text.splitlines())
                       if p and p != "#" and not p.startswith("# "))
            for key, text in lists.items()}


def _new_regex(edited: dict[str, tuple[str, ...]], config: dict[str, Any]) -> str | None:
    """Off this machine, why the edited rules may not be tried: a ``re:`` rule the config
    does not already hold. One regular expression can backtrack for minutes and, holding
    the interpreter, stop every page and even Ctrl-C; whoever a review link lets in may not
    run one here. Plain phrases, and the config's own ``re:`` rules, may be tried."""
    known = {p.strip() for phrases in config.values() for p in phrases}   # as _spec reads them
    new = next((p for phrases in edited.values() for p in phrases
                if p.startswith("re:") and p not in known), None)
    if new is None:
        return None
    return (f"{new!r}: a new re: rule can be tried only on the server's own machine "
            "(`monitor keywords test`, or `monitor serve` on 127.0.0.1), as one regular "
            "expression can stop this server for minutes; here, plain phrases and the "
            "config's own re: rules")


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml(spec: dict[str, tuple[str, ...]]) -> str:
    """The edited rules as a [keywords] block to paste into the config (JSON strings are
    TOML strings once DEL, which TOML does not allow as it is, is escaped too)."""
    lines = ["[keywords]"]
    for key, phrases in spec.items():
        lines.append(f"{key} = [")
        lines += [f"  {_toml_string(p)}," for p in phrases]
        lines.append("]")
    return "\n".join(lines)


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_CSV_RISKY) else text     # no formulas in a spreadsheet


def _csv_lines(rows: list[ArticleView]):
    out = io.StringIO()
    # every field quoted: a spreadsheet that splits on ";" (the list separator of many
    # locales) then keeps "Nickel;=1+2" one cell, so "=1+2" never becomes a formula
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(["id", "published", "source", "publisher", "title", "url", "language", "topics",
                     "countries", "minerals", "score", "status", "reviewer", "reasons"])
    for r in rows:
        writer.writerow([_csv_cell(v) for v in (
            r.id, r.published.isoformat(), r.source, r.publisher, r.title, r.url, r.language, ",".join(r.topics),
            ",".join(r.countries), ",".join(r.minerals), "" if r.score is None else f"{r.score:.3f}",
            r.status, r.review.reviewer if r.review else "", "; ".join(r.reasons))])
        if out.tell() > 64_000:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def create_app(config, store, access: Access, clock=None, analyzer=None,
               allowed_hosts: list[str] | None = None, config_file=None) -> Starlette:
    """The ASGI application. ``allowed_hosts``: Host headers accepted (on loopback, only
    this machine's names, so a page elsewhere cannot reach it by DNS rebinding).
    ``config_file``: the file ``config`` came from, read again when it changes."""
    if clock is None:
        from monitor.clock import utcnow as clock
    app = ReviewApp(config, store, access, clock, analyzer, config_file)
    routes = [
        Route("/", app.flagged),
        Route("/export.{kind:str}", app.export),
        Route("/items/{article_id:int}", app.item),
        Route("/items/{article_id:int}/review", app.review, methods=["POST"]),
        Route("/items/{article_id:int}/review", app.not_allowed, methods=["GET"]),
        Route("/feeds", app.feeds),
        Route("/keywords", app.keywords, methods=["GET", "POST"]),
        Route("/static/app.css", app.stylesheet),
        Route("/healthz", app.healthz),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    if access.loopback:
        middleware.append(Middleware(_NotThroughAProxy))
    if access.basic and not access.loopback:    # on loopback no password is asked for
        middleware.append(Middleware(_SignInGuard, access=access, clock=app.clock))
    starlette = Starlette(routes=routes, middleware=middleware, exception_handlers={
        404: _not_found, 405: _method_not_allowed, MonitorError: _store_unavailable})
    starlette.state.review_app = app
    return starlette


FORWARDING_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto",
                      b"x-forwarded-port", b"x-forwarded-server", b"x-real-ip", b"via")


class _NotThroughAProxy:
    """On loopback every request is let in without a password, as coming from this machine.
    A request a proxy passed on (it says so in a forwarding header) may come from anywhere:
    refused, with what to do instead (``serve.behind_proxy``), and logged once."""

    def __init__(self, app) -> None:
        self.app, self.warned = app, False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not any(k in FORWARDING_HEADERS for k, _ in scope["headers"]):
            return await self.app(scope, receive, send)
        if not self.warned:
            self.warned = True
            log.warning("a request came through a proxy (it carries a forwarding header): "
                        "refused, because on a loopback address no sign-in is asked for; behind a "
                        "proxy, set serve.behind_proxy = true (or start with --behind-proxy) so "
                        "that review links or Basic credentials are needed")
        response = PlainTextResponse(
            "403: this request came through a proxy, and this server lets in without sign-in "
            "only requests made on its own machine. Its operator can set serve.behind_proxy = "
            "true (or start monitor serve with --behind-proxy) to ask for review links or "
            "Basic credentials instead.", status_code=403, headers=SECURITY_HEADERS)
        return await response(scope, receive, send)


class _SignInGuard:
    """Off loopback: wrong Basic passwords are logged (user name and address, never the
    password), and from an address with ``FAILED_SIGN_INS`` of them in ``FAILED_WINDOW``
    a request carrying Basic credentials is answered 429 until they age out — guessing the
    password takes years instead of minutes, while requests with a session or a review
    link from that address (a shared NAT or proxy) go on as before."""

    def __init__(self, app, access, clock) -> None:
        self.app, self.access, self.clock = app, access, clock

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"),
                      None)
        if header is None or header[:6].lower() != "basic ":
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown",))[0]
        now = self.clock()
        wait = self.access.wait_before_sign_in(client, now)
        if wait:
            response = PlainTextResponse(
                f"429: too many wrong passwords from this address; try again in {wait} s",
                status_code=429, headers={**SECURITY_HEADERS, "Retry-After": str(wait)})
            return await response(scope, receive, send)
        user = self.access.failed_sign_in(header, client, now)
        if user is not None:
            log.warning("Basic sign-in refused for user %r from %s", user, client)
            if self.access.wait_before_sign_in(client, now):
                log.warning("%s: %d wrong passwords within %d minutes: its Basic sign-ins are "
                            "refused (429) until they age out", client, FAILED_SIGN_INS,
                            FAILED_WINDOW.total_seconds() // 60)
        return await self.app(scope, receive, send)


def _message_page(request: Request, status: int, message: str,
                  headers: dict[str, str] | None = None) -> Response:
    """An error as a page of the site (its navigation, title, language and phone layout):
    as plain text a phone showed it in a desktop's width, tiny, with no way on."""
    app: ReviewApp = request.app.state.review_app
    return app._page(request, "denied.html.j2", status, reviewer=None, headers=headers, message=message)


async def _not_found(request: Request, exc: Exception) -> Response:
    return _message_page(request, 404, "404: no such page")


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """A page whose store read failed (the database stopped, the file gone): 503 and why,
    in one log line, where it had been a bare 500 and a traceback per request."""
    log.error("%s %s: %s", request.method, request.url.path, exc)
    return _message_page(request, 503, f"503: the store cannot be read right now: {str(exc).rstrip('.')}. Nothing was "
                         "changed; try again in a moment.", headers={"Retry-After": "30"})


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return _message_page(request, 405, "405: method not allowed")

