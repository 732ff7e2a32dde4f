"""Database URLs: parse them, show them without secrets, and scrub their secrets out of messages.

A SQLAlchemy URL can carry a secret in three places: the password (``user:password@host``), a query
parameter (``?password=...``, ``?sslpassword=...``, ``?token=...``) and a ``key=value`` pair inside a query
value such as libpq's ``options`` (``?options=-c app.secret=...``). Every URL a message or log shows goes
through `masked_url`, and every driver message that may repeat one goes through `scrub`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"

# Query keys (lower case, "-" read as "_") whose whole value is a secret.
_SECRET_KEYS = frozenset({"pwd", "pass", "pw", "key", "apikey", "auth", "authorization", "sig", "signature"})
# ... and parts that make any key a secret one: password, sslpassword, db_password, client_secret, ...
_SECRET_KEY_PARTS = (
    "password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "access_key", "private_key",
    "credential", "auth_key",
)
# key=value pairs inside a value, e.g. "-c app.password=x" in options: the value runs to whitespace or "&".
_PAIR = re.compile(r"([A-Za-z_][\w.\-]*)\s*=\s*('(?:[^'\\]|\\.)*'|\"[^\"]*\"|(?:\\.|[^\s&;])+)")
# Secrets in text that does not parse as a URL: "scheme://user:password@" and "key=value".
_USERINFO_PASSWORD = re.compile(r"^[^:/?#\s]+://[^:@/?#\s]*:([^@/?#\s]*)@")
# Secrets this short are masked only where they stand alone, so "a" does not mask every "a" in a message.
_SHORT_SECRET = 4


def parse_url(url: str | URL) -> URL:
    """`url` as a SQLAlchemy URL. The ValueError names the problem without repeating the URL, which may hold
    a password."""
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except (ArgumentError, ValueError, TypeError) as e:
        raise ValueError(
            "not a valid database URL (expected e.g. postgresql+psycopg://user@host/db or sqlite:///path/file.db)"
        ) from e


def with_driver(url: URL) -> URL:
    """`url` with the driver this project talks to its backend through, whatever the URL named: psycopg 3 for
    PostgreSQL (execution uses its server-side cursors and cancel), pymysql for MySQL and MariaDB."""
    backend = url.get_backend_name()
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    if backend in ("mysql", "mariadb"):
        return url.set(drivername=f"{backend}+pymysql")
    return url


def is_secret_key(key: str) -> bool:
    """Whether a query parameter or option named `key` holds a secret (password, token, api key, ...)."""
    normal = key.strip().lower().replace("-", "_")
    return normal in _SECRET_KEYS or any(part in normal for part in _SECRET_KEY_PARTS)


def masked_url(url: str | URL) -> str:
    """`url` as text for messages and logs, with its password, secret query values and secret pairs inside
    query values (libpq ``options``) shown as ``***``."""
    try:
        parsed = parse_url(url)
    except ValueError:
        return "(an invalid database URL)"
    query = {key: _masked_query_value(key, value) for key, value in parsed.query.items()}
    text = parsed.set(query=query).render_as_string(hide_password=True)
    # The query is percent-encoded when rendered; show the mask as written.
    return text.replace(quote_plus(MASK), MASK)


def url_secrets(url: str | URL) -> list[str]:
    """Every secret in `url`, each in the spellings a message may repeat it in (as written, percent-encoded,
    decoded), longest first. Works on text that does not parse as a URL too."""
    values: list[str] = []
    raw = url if isinstance(url, str) else None
    parsed: URL | None
    try:
        parsed = parse_url(url)
    except ValueError:
        parsed = None
    if parsed is not None:
        if parsed.password:
            values.append(str(parsed.password))
        for key, value in parsed.query.items():
            for item in (value,) if isinstance(value, str) else value:
                values.extend(_secrets_in_value(key, item))
    if raw is not None:
        match = _USERINFO_PASSWORD.match(raw.strip())
        if match and match.group(1):
            values.append(match.group(1))
        query = raw.partition("?")[2] if "://" in raw else raw
        for part in re.split(r"[&;]", query):
            key, sep, value = part.partition("=")
            if sep:
                values.extend(_secrets_in_value(key, value))
                values.extend(_secrets_in_value(key, unquote_plus(value)))
    return sorted({form for value in values for form in _spellings(value) if form}, key=len, reverse=True)


def scrub(message: str, url: str | URL | None) -> str:
    """`message` with every secret of `url` replaced by ``***``, and the URL itself by its masked form."""
    if url is None:
        return message.strip()
    shown = masked_url(url)
    for whole in _url_spellings(url):
        if len(whole) >= _SHORT_SECRET:
            message = message.replace(whole, shown)
    for secret in url_secrets(url):
        if len(secret) >= _SHORT_SECRET:
            message = message.replace(secret, MASK)
        else:
            message = re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", MASK, message)
    return message.strip()


# --------------------------------------------------------------------------------------------------


def _masked_query_value(key: str, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
    if not isinstance(value, str):
        return tuple(_masked_query_value(key, item) for item in value)  # type: ignore[misc]
    if is_secret_key(key):
        return MASK
    return _PAIR.sub(lambda m: f"{m.group(1)}={MASK}" if is_secret_key(m.group(1)) else m.group(0), value)


def _secrets_in_value(key: str, value: str) -> list[str]:
    if is_secret_key(key):
        return [value]
    found = []
    for pair_key, pair_value in _PAIR.findall(value):
        if is_secret_key(pair_key):
            found.append(pair_value)
            if len(pair_value) >= 2 and pair_value[0] == pair_value[-1] and pair_value[0] in "'\"":
                found.append(pair_value[1:-1])
    return found


def _spellings(value: str) -> Iterable[str]:
    yield value
    yield unquote(value)
    yield unquote_plus(value)
    yield quote(value, safe="")
    yield quote_plus(value)
    yield quote(value)


def _url_spellings(url: str | URL) -> list[str]:
    forms = [url] if isinstance(url, str) else []
    try:
        parsed = parse_url(url)
    except ValueError:
        return forms
    forms.append(parsed.render_as_string(hide_password=False))
    return sorted(set(forms), key=len, reverse=True)
