"""Device cookies: failed guesses by others do not lock a person out of their own browser.

The real portal app with the real regulator, both backends. The attacker and the owner
come from different addresses; the owner's browser signed in successfully before.
"""

from __future__ import annotations

from nevertrust.app import Services
from nevertrust.identity.device_cookies import DEVICE_COOKIE

from ._support import PASSWORD
from .test_lockout import (  # noqa: F401 - fixtures
    browser,
    fail,
    passwords,
    sign_in,
    signed_in,
    svc,
)


async def test_the_owners_known_browser_signs_in_while_strangers_are_locked_out(
    svc: Services,  # noqa: F811 - the fixture imported above
) -> None:
    async with browser(svc, ip="192.0.2.10") as owner:
        first = await sign_in(owner, "alice", PASSWORD)
        assert signed_in(first) and DEVICE_COOKIE in owner.cookies
        owner.cookies.delete("nt_session")  # signed out; the device cookie stays

        async with browser(svc, ip="203.0.113.66") as attacker:
            await fail(attacker, "alice", svc.settings.regulation.max_retries)
            assert (await sign_in(attacker, "alice", PASSWORD)).status_code == 401
        async with browser(svc, ip="192.0.2.11") as stranger:  # alice on a new laptop
            assert (await sign_in(stranger, "alice", PASSWORD)).status_code == 401

        assert signed_in(await sign_in(owner, "alice", PASSWORD))


async def test_a_device_cookie_allows_only_a_few_guesses_of_its_own(
    svc: Services,  # noqa: F811
) -> None:
    async with browser(svc, ip="192.0.2.10") as thief:
        assert signed_in(await sign_in(thief, "alice", PASSWORD))
        thief.cookies.delete("nt_session")  # a stolen browser profile, session gone
        await fail(thief, "alice", svc.settings.regulation.max_retries)
        assert (await sign_in(thief, "alice", PASSWORD)).status_code == 401

        bans = [b.subject for b in svc.regulator.list_bans()]
        assert any(s.startswith("device:") for s in bans) and "user:alice" not in bans
        device = next(s for s in bans if s.startswith("device:"))
        svc.regulator.lift(device, actor="user:root")
        assert signed_in(await sign_in(thief, "alice", PASSWORD))


async def test_a_device_cookie_counts_only_for_the_user_it_was_issued_to(
    svc: Services,  # noqa: F811
) -> None:
    async with browser(svc, ip="192.0.2.10") as shared:
        assert signed_in(await sign_in(shared, "bob", PASSWORD))
        shared.cookies.delete("nt_session")
        # Bob's cookie does not make this browser a known device for alice.
        await fail(shared, "alice", svc.settings.regulation.max_retries)
        assert "user:alice" in [b.subject for b in svc.regulator.list_bans()]


async def test_a_forged_device_cookie_is_ignored(svc: Services) -> None:  # noqa: F811
    async with browser(svc, ip="192.0.2.10") as forger:
        forger.cookies.set(DEVICE_COOKIE, "AAAAAAAAAAAAAAAA.not-a-valid-signature")
        await fail(forger, "alice", svc.settings.regulation.max_retries)
        assert "user:alice" in [b.subject for b in svc.regulator.list_bans()]


def test_every_complete_sign_in_gives_the_browser_a_device_cookie(
    svc: Services,  # noqa: F811
) -> None:
    password_only = svc.auth.login("alice", PASSWORD, source_ip="", user_agent="")
    assert password_only.device_cookie
    svc.totp.enroll_confirmed("alice", actor="cli:root")
    pending = svc.auth.login("alice", PASSWORD, source_ip="", user_agent="")
    assert pending.device_cookie == ""  # a password alone earns no trust
    done = svc.auth.complete_second_factor(
        pending.record, method="otp", source_ip="", user_agent=""
    )
    assert done.device_cookie
    by_passkey = svc.auth.login_with_passkey(done.user, source_ip="", user_agent="")
    assert by_passkey.device_cookie
