"""Secrets out of everything livemask prints or writes: URLs shown with credentials masked.

:func:`redact_url` masks, in one URL,

* the whole userinfo (``user:password@``, a bare ``TOKEN@``, a password that itself holds
  ``@``): everything between ``//`` and the *last* ``@`` of the authority becomes ``***``;
* the value of every query or fragment parameter whose name looks like a credential
  (:data:`SECRET_PARAMS`, case-insensitive, also as a suffix such as ``x_api_key``,
  ``X-Amz-Signature``).

:func:`redact_text` applies it to every URL-looking run inside free text (log lines,
error messages), so a message that quotes a URL anywhere is safe to print.
"""

from __future__ import annotations

import re

MASK = "***"

# parameter names (lower case) whose values are secrets; a name that ends with one of these
# after '_', '-' or '.' counts too (x_api_key, X-Amz-Signature, client.secret)
SECRET_PARAMS = (
    "password", "passwd", "pass", "pwd", "passphrase", "token", "access_token", "refresh_token", "id_token",
    "auth", "authorization", "auth_token", "key", "apikey", "api_key", "secret", "client_secret", "signature",
    "sig", "credential", "credentials", "session", "sessionid", "session_id", "jwt", "bearer", "code", "otp",
)
_SECRET_RE = re.compile(r"(?:^|.*[_.\-])(?:" + "|".join(map(re.escape, SECRET_PARAMS)) + r")$", re.IGNORECASE)

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*:)//")
# a URL inside free text: scheme://, then anything up to whitespace or a quote/bracket that ends it
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>()\[\]{}]*")
# "user:pass@host" written without a scheme (ffmpeg and some libraries print URLs so)
_BARE_USERINFO = re.compile(r"(?<![\w/:@.\-])[^\s/'\"<>@:]+:[^\s/'\"<>]*@(?=[\w\[])")


def is_secret_param(name: str) -> bool:
    return bool(_SECRET_RE.match(name.strip()))


def _redact_params(text: str) -> str:
    """``a=1&token=x;sig=y`` -> ``a=1&token=***;sig=***``."""
    parts = re.split(r"([&;])", text)
    out = []
    for part in parts:
        name, eq, value = part.partition("=")
        if eq and value and is_secret_param(_unquote(name)):
            part = f"{name}={MASK}"
        out.append(part)
    return "".join(out)


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def redact_url(url: str) -> str:
    """``url`` with userinfo and credential-like query/fragment values replaced by ``***``.

    Works on text that is not a well-formed URL too (never raises), so it is safe to call
    on anything the user passed as a source.
    """
    text = str(url)
    m = _SCHEME.match(text)
    if m:
        start = m.end()
        rest = text[start:]
        # the authority ends at the first '/', '?' or '#' after the last '@' that precedes them;
        # a password may hold '/', '?', '#' only percent-encoded, but '@' is often left raw
        end = len(rest)
        for ch in "/?#":
            i = rest.find(ch)
            if i != -1:
                end = min(end, i)
        at = rest.rfind("@", 0, end)
        if at == -1:
            # a raw '/' or '#' in a password ends the authority early: an '@' after a ':' and
            # before any '?' still marks userinfo (over-masking a path is the safe mistake)
            later_at = rest.find("@")
            if later_at != -1 and ":" in rest[:later_at] and "?" not in rest[:later_at]:
                at = later_at
        if at != -1:
            rest = MASK + rest[at:]
        text = text[:start] + rest
    head, q, query = text.partition("?")
    if q:
        query, h, frag = query.partition("#")
        text = head + "?" + _redact_params(query) + (h + _redact_params(frag) if h else "")
    else:
        head, h, frag = text.partition("#")
        if h:
            text = head + "#" + _redact_params(frag)
    return text


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted with :func:`redact_url`, plus bare ``user:pass@host``."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(text))
    return _BARE_USERINFO.sub(MASK + "@", text)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (any run of line breaks/tabs -> ' | ' or ' '), at most ``limit`` characters."""
    text = str(text)
    if len(text) > 8 * limit:  # never scan a huge message in full
        text = text[: 8 * limit]
        cut = True
    else:
        cut = False
    text = re.sub(r"\s*[\r\n]+\s*", " | ", text.strip())
    text = re.sub(r"[\t\x0b\x0c]", " ", text)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    if len(text) > limit or cut:
        text = text[: limit - 3].rstrip() + "..."
    return text


def safe_message(text: str, limit: int = 300) -> str:
    """What may reach the user: redacted, one line, bounded."""
    return one_line(redact_text(str(text)[: 8 * limit + 2000]), limit)
