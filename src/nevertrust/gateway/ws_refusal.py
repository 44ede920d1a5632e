"""Refusing a websocket handshake with the reason, not a bare 403.

Closing a websocket before accepting it makes the server answer the handshake with a 403
that says nothing, and ``nevertrust connect`` (the tunnel client) could only print
"access denied by policy". Servers that offer the ASGI websocket denial-response extension
(uvicorn does) let the gateway answer with a real HTTP response instead: the same status,
the stable reason codes in ``X-NeverTrust-Reason`` (as forward-auth sends them) and the
explanations as plain text, which the client shows. Where the extension is missing, or
nothing was decided (no session), the bare close remains.
"""

from __future__ import annotations

from nevertrust.gateway.access import Check, Outcome
from nevertrust.gateway.answers import UNDECIDED
from nevertrust.types import Scope, Send

__all__ = ["REASON_HEADER", "refuse_handshake"]

REASON_HEADER = b"x-nevertrust-reason"
_EXTENSION = "websocket.http.response"


async def refuse_handshake(scope: Scope, send: Send, check: Check) -> None:
    """Answer a websocket handshake that ``check`` does not allow; nothing is accepted."""
    decision = check.decision
    if _EXTENSION not in (scope.get("extensions") or {}) or (
        decision is None and check.outcome is not Outcome.UNAVAILABLE
    ):
        await send({"type": "websocket.close", "code": 1008})
        return
    if check.outcome is Outcome.UNAVAILABLE or decision is None:
        status, reason = 503, "unavailable"
        text = check.message or UNDECIDED
    else:
        status, reason = 403, ",".join(decision.reasons)
        text = " ".join(decision.explanations) or "Access denied by policy."
    body = (text + "\n").encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (REASON_HEADER, reason.encode("ascii", "replace")),
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})
