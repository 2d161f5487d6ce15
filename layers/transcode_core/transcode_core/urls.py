"""URL helpers: joining provider paths onto a configured base, and removing credentials before storing."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that carry credentials or signatures in the URLs providers hand back (signed S3/CDN
# links, FTP/HTTP URLs with keys). Compared case-insensitively; anything that starts with x-amz- too.
_SECRET_PARAMS = frozenset(
    {
        "signature",
        "sig",
        "key",
        "apikey",
        "api_key",
        "access_key",
        "accesskey",
        "awsaccesskeyid",
        "secret",
        "secret_key",
        "token",
        "access_token",
        "auth",
        "password",
        "passwd",
        "pwd",
        "policy",
        "key-pair-id",
        "userkey",
        "user_key",
        "se",
        "sp",
        "sv",
        "sr",
    }
)


def join_url(base: str, path: str) -> str:
    """`base` + `path` with exactly one slash between them, whether or not base ends in one."""
    return base.rstrip("/") + "/" + path.lstrip("/")


def redact_url(url: str | None) -> str | None:
    """The URL without userinfo, without query parameters that carry credentials or signatures, and without
    a fragment (OAuth-style `#access_token=...`)."""
    if not url:
        return url
    try:
        parts = urlsplit(_without_userinfo(url) if "@" in url else url)
    except ValueError:
        return None  # not a URL we can clean: keep nothing rather than a secret
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = (
        urlencode(
            [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if not _is_secret(name)]
        )
        if parts.query
        else ""  # most URLs have none: what urlencode would make of no parameters
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# `scheme://user:password@` where the password holds characters that end the authority for a URL parser
# ("/", "?", "#": AWS secret keys often contain "/"). A colon followed by a port number is not a password.
_LOOSE_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@:]*:(?!\d+[/?#]|\d+$)[^@]*@")


def _without_userinfo(url: str) -> str:
    return _LOOSE_USERINFO.sub(r"\g<scheme>", url, count=1)


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_PARAMS or lowered.startswith("x-amz-") or lowered.startswith("x-goog-")
