"""Request-target normalisation that leaves no room between the policy and the upstream.

A path-based rule ("``/admin/*`` needs group admins") is only as good as the agreement
between the string the policy matched and the resource the upstream serves. Every
disagreement is a bypass: oauth2-proxy matched ``skip_auth_routes`` against path *and*
query (CVE-2025-54576) and let a ``#`` the upstream read as a fragment widen a pattern
(GHSA-pxq7-h93f-9jrg); Tomcat reads ``..;/`` as ``../``; IIS and Node read ``\\`` as
``/``; frameworks that decode ``%2F`` into a separator after routing see another path
than the router did. Envoy's ``normalize_path``, ``merge_slashes`` and
``path_with_escaped_slashes_action`` exist for the same reason.

So :func:`normalise_path` produces ONE canonical string that the policy decides on and the
upstream receives byte for byte, and refuses what cannot be made unambiguous:

* **Reject** (``BadPath``, 400): no leading ``/``; control characters, raw (``\\x00``-
  ``\\x1f``, ``\\x7f``) or escaped (``%00``-``%1F``, ``%7F``), because NUL and CR/LF truncate
  or split the request in C servers and logs; ``\\`` and ``%5C``, a separator on Windows,
  IIS and Node; ``%2F``, a separator for upstreams that decode before routing but not for
  us; a malformed escape (``%G1``, trailing ``%``), which every parser repairs differently;
  a double-encoded ``.``, ``/``, ``\\`` or control character (``%252e``), a dot segment or
  separator for any upstream that decodes twice; a dot segment with parameters (``..;x``),
  which Tomcat and Spring read as ``..``; more than 8192 bytes in or out.
* **Decode** escapes of unreserved characters (``ALPHA / DIGIT / - . _ ~``) and upper-case
  the hex of every other escape (RFC 3986 §6.2.2.1-2): ``/%61dmin`` *is* ``/admin``.
* **Encode** what may not appear raw in a path: non-ASCII bytes, space, the backquote and
  ``" # < > ? [ ] ^ { | }`` become ``%XX`` (upper-case), so the result can be sent
  upstream as is and a ``#`` or ``?`` cannot end the path early for anyone.
* **Remove dot segments** (RFC 3986 §5.2.4, §6.2.2.3) *after* that decoding, so
  ``%2e%2e`` is ``..``; a ``..`` above the root stays at the root, as browsers do.
* **Merge slashes**: ``//a///b`` is ``/a/b``; upstreams disagree on empty segments.
* A trailing slash is kept (``/a/`` and ``/a`` are different resources to most apps); a
  final ``.`` or ``..`` segment leaves one, as §5.2.4 says (``/a/b/..`` is ``/a/``).

``;`` is ordinary path data and kept (``/admin;x`` stays ``/admin;x``): RFC 3986 upstreams
see the segment ``admin;x``, not ``admin``. Servlet containers strip ``;x`` before
routing, so a rule guarding ``/admin`` for one should match the prefix ``/admin`` rather
than only ``/admin/``. Escapes of reserved characters other than ``/`` and ``\\`` stay
encoded (``%3B``, ``%3F``, ``%25``): policies see and should be written in that form.

The result is idempotent (``normalise_path(normalise_path(x)) == normalise_path(x)``), so
normalising again further down costs only the fast path.
"""

from __future__ import annotations

import re

from nevertrust.errors import InvalidInput

__all__ = ["MAX_PATH_BYTES", "BadPath", "normalise_path", "split_target"]

MAX_PATH_BYTES = 8192


class BadPath(InvalidInput):
    """A request path that cannot be normalised without guessing; answered with 400."""

    code = "bad-path"
    http_status = 400


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
# What a path may hold raw: unreserved, sub-delims, ":" "@" (RFC 3986 pchar) and "/".
_PCHAR = "A-Za-z0-9\\-._~!$&'()*+,;=:@/"
# One linear scan decides the fast path: any character outside pchar (which covers "%",
# controls, "\\" and non-ASCII), or a possible dot segment, or an empty segment.
_NEEDS_WORK = re.compile(f"[^{_PCHAR}]|/\\.|//")
_RAW_FORBIDDEN = re.compile("[\x00-\x1f\x7f\\\\]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# Every Latin-1 character that may not stay raw in a path, with its escape. "%" is
# handled by the decoder; "\\" and controls are refused before this table is used.
_RAW_OK = frozenset(_UNRESERVED | set("!$&'()*+,;=:@/%"))
_ENCODE = {c: f"%{c:02X}" for c in range(0x20, 0x100) if chr(c) not in _RAW_OK}
_ESCAPED = [chr(v) if chr(v) in _UNRESERVED else f"%{v:02X}" for v in range(0x100)]
# After one decode these are ".", "/", "\\" or a control character.
_DOUBLE_ENCODED_BAD = frozenset([f"{v:02X}" for v in (*range(0x20), 0x7F, 0x2E, 0x2F, 0x5C)])


def normalise_path(raw: bytes | str) -> str:
    """The path the policy decides on AND the upstream receives (so both see the same thing).

    ``raw`` is the path as sent on the wire, percent-encoded and without the query (ASGI
    ``scope["raw_path"]``, or the path part of X-Forwarded-Uri / X-Original-URL). A ``str``
    is taken as those bytes decoded as Latin-1, which is how ASGI servers and this code base
    turn header bytes into text, so it round-trips exactly; only a ``str`` that cannot be
    Latin-1 (no wire byte decodes above U+00FF) is encoded as UTF-8 instead.

    Raises ``BadPath`` naming what is wrong; the module docstring gives the rules and why.
    """
    if isinstance(raw, bytes):
        text = raw.decode("latin-1")
    elif raw.isascii():
        text = raw
    else:
        try:
            raw.encode("latin-1")
            text = raw
        except UnicodeEncodeError:
            text = raw.encode("utf-8").decode("latin-1")
    if len(text) > MAX_PATH_BYTES:
        raise BadPath(f"path is longer than {MAX_PATH_BYTES} bytes")
    if not text.startswith("/"):
        raise BadPath("path must start with '/'")
    if _NEEDS_WORK.search(text) is None:
        return text  # already canonical: the common case costs one C-level scan
    bad = _RAW_FORBIDDEN.search(text)
    if bad is not None:
        if bad.group() == "\\":
            raise BadPath("path contains a backslash")
        raise BadPath(f"path contains control character 0x{ord(bad.group()):02X}")
    path = _remove_dot_segments(_decode(text))
    if "%25" in path:
        _refuse_double_encoding(path)
    if len(path) > MAX_PATH_BYTES:
        raise BadPath(f"path is longer than {MAX_PATH_BYTES} bytes once encoded")
    return path


def split_target(target: str) -> tuple[str, str]:
    """Split an origin-form request target ``path?query`` (RFC 9112 §3.2.1).

    Returns the path already through :func:`normalise_path` (normalising it again is
    harmless) and the raw query without ``?``; a fragment is dropped. Absolute-form
    (``http://host/p``), authority-form (``host:443``) and asterisk-form (``*``) are refused:
    the host comes from its own header, never from inside the target. A control character
    in the query is refused too, since the query ends up in a ``Location`` header.
    """
    target = target.partition("#")[0]
    if not target.startswith("/"):
        if target == "*":
            raise BadPath("asterisk-form request target ('*') is not accepted")
        if "://" in target:
            raise BadPath("absolute-form request target is not accepted; expected '/path?query'")
        raise BadPath("request target must start with '/' (origin-form)")
    path, _, query = target.partition("?")
    if query and _CONTROL.search(query) is not None:
        raise BadPath("query contains a control character")
    return normalise_path(path), query


def _decode(text: str) -> str:
    """Decode unreserved escapes, upper-case the others, escape what may not stay raw."""
    if "%" not in text:
        return text.translate(_ENCODE)
    pieces: list[str] = []
    start = 0
    end = len(text)
    while start < end:
        at = text.find("%", start)
        if at < 0:
            pieces.append(text[start:].translate(_ENCODE))
            break
        if at > start:
            pieces.append(text[start:at].translate(_ENCODE))
        pair = text[at + 1 : at + 3]
        if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
            raise BadPath(f"invalid percent-escape {text[at : at + 3]!r}")
        value = int(pair, 16)
        if value < 0x20 or value == 0x7F:
            raise BadPath(f"path contains encoded control character %{value:02X}")
        if value == 0x2F:
            raise BadPath("path contains an encoded slash (%2F)")
        if value == 0x5C:
            raise BadPath("path contains an encoded backslash (%5C)")
        pieces.append(_ESCAPED[value])
        start = at + 3
    return "".join(pieces)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 over whole segments, with empty segments merged away."""
    if "/." not in path and "//" not in path:
        return path
    segments = path.split("/")
    last = segments[-1]
    kept: list[str] = []
    for segment in segments[1:-1]:
        if segment == "" or segment == ".":
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        _refuse_dot_parameters(segment)
        kept.append(segment)
    if last == "..":
        if kept:
            kept.pop()
        trailing = True
    elif last == "" or last == ".":
        trailing = True
    else:
        _refuse_dot_parameters(last)
        kept.append(last)
        trailing = False
    if not kept:
        return "/"
    return "/" + "/".join(kept) + ("/" if trailing else "")


def _refuse_dot_parameters(segment: str) -> None:
    # Tomcat and Spring strip ";params" before resolving dots: "..;x" is ".." to them.
    if segment[0] == "." and (";" in segment or "%3B" in segment):
        head = segment.split(";", 1)[0].split("%3B", 1)[0]
        if head == "." or head == "..":
            raise BadPath("path contains a dot segment with parameters (like '..;')")


def _refuse_double_encoding(path: str) -> None:
    at = path.find("%25")
    while at >= 0:
        if path[at + 3 : at + 5].upper() in _DOUBLE_ENCODED_BAD:
            raise BadPath(f"path contains a double-encoded character {path[at : at + 5]!r}")
        at = path.find("%25", at + 3)
