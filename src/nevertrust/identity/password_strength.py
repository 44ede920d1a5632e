"""Guessability of a password, by zxcvbn: length alone lets "password1234" through.

zxcvbn knows common passwords, names, keyboard walks, repeats, dates and l33t swaps, and
estimates guesses; a score below 3 means an offline attack on a leaked hash would find it
quickly. No breach corpus is queried: the machines we run on may have no internet, and
sending even a hash prefix of a password outward is a choice an operator should make.
"""

from __future__ import annotations

from collections.abc import Sequence

from zxcvbn import zxcvbn

__all__ = ["MIN_SCORE", "weakness"]

MIN_SCORE = 3
_CHECKED_PREFIX = 72  # zxcvbn refuses longer input (and is super-linear in length)


def weakness(
    password: str, *, related: Sequence[str] = (), min_score: int = MIN_SCORE
) -> str | None:
    """Why ``password`` is too guessable (a sentence for the user), or None if it is fine.

    ``min_score`` 0 turns the check off (zxcvbn's scores run from 0 to 4).
    """
    if min_score <= 0:
        return None
    result = zxcvbn(password[:_CHECKED_PREFIX], user_inputs=[r for r in related if r])
    if int(result["score"]) >= min_score:
        return None
    feedback = result.get("feedback") or {}
    warning = str(feedback.get("warning") or "").strip()
    suggestions = [str(s) for s in feedback.get("suggestions") or [] if s]
    parts = [warning or "This password is too easy to guess."]
    if suggestions:
        parts.append(suggestions[0])
    return " ".join(p if p.endswith(".") else p + "." for p in parts)
