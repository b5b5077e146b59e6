"""Keeping credentials out of everything Penchant writes or shows.

Secrets reach a run as ``${env:NAME}`` references (resolved only in memory) or inside
connection URLs. :func:`mask_url` is for naming a database in a message; :func:`scrub` is the
last line of defence, applied by the runner to log lines and error messages before they reach
the run store, observers or the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
#: Shorter values are not scrubbed: replacing every "1" or "db" would garble messages and
#: protect nothing.
MIN_SECRET = 4


def mask_url(url: str) -> str:
    """``mysql+pymysql://shop:***@db:3306/shop``: the URL with its password hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<connection URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:{MASK}@{netloc[1]}").geturl()


def url_password(url: str) -> str | None:
    """The password in a URL (decoded), or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and its URL-encoded form) replaced by ``***``."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len,
                         reverse=True):
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, MASK)
    return text
