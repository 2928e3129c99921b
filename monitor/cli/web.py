"""`monitor serve`: the review pages in the browser (monitor.web)."""

from __future__ import annotations

import logging
import os
import signal
import socket

import click

from monitor.cli.context import config_of

log = logging.getLogger("monitor.serve")


@click.command("serve")
@click.option("--host", metavar="ADDR", help="Address to listen on (default: serve.host, 127.0.0.1: "
              "this machine only). Anything else needs review links or Basic credentials.")
@click.option("--port", type=click.IntRange(0, 65535), metavar="N",
              help="Port (default: serve.port, 8765; 0 picks a free one).")
@click.option("--behind-proxy", is_flag=True, default=None,
              help="A proxy on this machine passes requests on (default: serve.behind_proxy): "
              "ask for review links or Basic credentials even on a loopback address.")
@click.pass_context
def serve(ctx, host, port, behind_proxy):
    """Review flagged items in the browser.

    Pages: flagged items with filters and CSV/JSON export, one item with its text, why it
    was flagged and relevant / not relevant buttons, feed health, and a dry run of edited
    keyword rules. Verdicts are the review rows `monitor review mark` writes, so the next
    `monitor train` learns from them. Reads and writes the configured store; safe beside
    `monitor run`. Ctrl-C stops it.

    \b
    Examples:
      monitor serve                          http://127.0.0.1:8765/
      MONITOR_REVIEW_KEY=… monitor serve --host 0.0.0.0 --port 8765
      MONITOR_REVIEW_KEY=… monitor serve --behind-proxy   a TLS proxy on this machine
    """
    from monitor.cli.context import config_file_of, open_review_store, reviewer_name
    from monitor.config import config_path
    from monitor.exceptions import UsageError
    from monitor.web.access import Access, is_loopback

    config = config_of(ctx)
    # what an error names: the option given, else the config's key and file
    where = (f"monitor serve --host {host}" if host else
             f"monitor serve (serve.host = {config.serve.host!r} in "
             f"{config_path(config_file_of(ctx))})")
    host = host or config.serve.host
    port = config.serve.port if port is None else port
    if behind_proxy is None:
        behind_proxy = config.serve.behind_proxy
        if behind_proxy and is_loopback(host):
            where = f"monitor serve (serve.behind_proxy = true in {config_path(config_file_of(ctx))})"
    elif behind_proxy and is_loopback(host):
        where = "monitor serve --behind-proxy"
    loopback = is_loopback(host) and not behind_proxy
    access = Access(loopback=loopback, link_key=config.digest.review_key(),
                    username=config.serve.username, password=config.serve.password(),
                    local_user=reviewer_name(), behind_proxy=bool(behind_proxy))
    problem = access.problem()
    if problem:
        raise UsageError(f"{where}: {problem}")
    try:
        sock = socket.create_server((host.strip("[]"), port),
                                    family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as exc:
        raise UsageError(f"{where}: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # accepted connections inherit it: a response's headers and body go out at once instead
    # of the body waiting ~40 ms for the client's delayed ACK on a kept-alive connection
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _, store = open_review_store(ctx)
    _run(config, store, access, sock, config_path(config_file_of(ctx)))


def _run(config, store, access, sock: socket.socket, config_file=None) -> None:
    import uvicorn

    from monitor.config import MIN_KEY_LENGTH
    from monitor.web.app import create_app

    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    allowed = (sorted({"127.0.0.1", "localhost", "::1", "[::1]", bound_host, shown})
               if access.loopback else None)        # and the loopback address it listens on
    app = create_app(config, store, access, allowed_hosts=allowed, config_file=config_file)
    how = ("this machine only" if access.loopback else
           "sign-in: " + " or ".join(w for w, on in (("review links", access.link_key),
                                                      ("Basic credentials", access.basic)) if on))
    click.echo(f"monitor serve: http://{shown}:{bound_port}/  ({how}; Ctrl-C stops)", nl=True)
    if not config.digest.review_url:
        click.echo("note: digest.review_url is not set: the digest shows item ids, not links to "
                   "this server")
    if os.environ.get(config.digest.review_key_env) and access.link_key is None:
        click.echo(f"note: ${config.digest.review_key_env} is shorter than {MIN_KEY_LENGTH} "
                   "characters, so review links are off (a short key is easy to guess)")
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False,
                                           server_header=False, lifespan="off"))
    # uvicorn shuts down gracefully on Ctrl-C or SIGTERM and then raises the signal again
    # under the handlers it found: the default ones printed "Aborted!" and exited 1, or
    # ended the process by SIGTERM (143), where a stop asked for is a success (0)
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with store:
            server.run(sockets=[sock])
    except _Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("monitor serve stopped")


class _Stop(Exception):
    """The stop signal uvicorn raises again once it has shut down."""


def _stopped(signum, frame) -> None:
    raise _Stop(signum)


COMMANDS = (serve,)
