"""What binding a browser to a device takes, as the browser and the agent do it.

The agent's half is ``sign_bind_proof`` (what ``nevertrust agent bind-browser`` puts in
its link) over a device enrolled with a ``SoftDevice`` key; the browser's half reads the
page's data attributes and hidden fields exactly as ``static/webauthn.js`` and a form
submission would, and a ``SoftAuthenticator`` answers ``navigator.credentials``.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlencode

import httpx

from nevertrust.agent.signing import sign_bind_proof
from nevertrust.app import Services
from tests.soft_authenticator import SoftAuthenticator
from tests.soft_device import SoftDevice

from ._support import set_cookies

BIND_PATH = "/account/devices/bind"


def enrolled_device(svc: Services, user: str, name: str) -> SoftDevice:
    """A device enrolled for ``user`` that has just reported a compliant posture."""
    soft = SoftDevice()
    token = svc.device_enrolment.create_token(user, actor="admin:root").token
    done = svc.device_enrolment.enrol(token=token, public_key_pem=soft.public_pem, name=name)
    soft.device_id = done.device.device_id
    outcome = svc.device_enrolment.report(soft.device_id, soft.report(at=svc.clock.now()))
    assert outcome.compliant, outcome.reasons
    return soft


def bind_proof(
    svc: Services,
    device: SoftDevice,
    *,
    signer: SoftDevice | None = None,
    age: timedelta = timedelta(0),
) -> str:
    """The proof ``nevertrust agent bind-browser`` signs for ``device``, made ``age`` ago.

    ``signer``: another device's key signs instead (a forgery naming ``device``).
    """
    iat = int((svc.clock.now() - age).timestamp())
    key = (signer or device).key
    return sign_bind_proof(key, device_id=device.device_id, iat=iat)


def bind_link(proof: str) -> str:
    """The portal path (with query) of the link the agent prints."""
    return f"{BIND_PATH}?{urlencode({'proof': proof})}"


def hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form posting to ``action``, as the browser would send them."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', page, re.S)
    assert form is not None, page
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1))
    return {name: html.unescape(value) for name, value in found}


def register_form(page: str) -> dict[str, str]:
    """The ``data-*`` attributes of ``form#passkey-register`` (what webauthn.js reads)."""
    tag = re.search(r'<form id="passkey-register"([^>]*)>', page, re.S)
    assert tag is not None, page
    return {k: html.unescape(v) for k, v in re.findall(r'data-(\w+)="([^"]*)"', tag.group(1))}


async def bind_begin(browser: httpx.AsyncClient, proof: str) -> httpx.Response:
    """What the page's "Bind this browser" button posts first."""
    return await browser.post(f"{BIND_PATH}/begin", json={"proof": proof})


async def register_finish(
    browser: httpx.AsyncClient, credential: dict[str, object], name: str = "laptop browser"
) -> httpx.Response:
    return await browser.post(
        "/webauthn/register/finish", json={"credential": credential, "name": name}
    )


async def bind_this_browser(
    browser: httpx.AsyncClient, key: SoftAuthenticator, proof: str
) -> httpx.Response:
    """Open the link, press the button, let the platform authenticator answer."""
    page = await browser.get(bind_link(proof))
    assert page.status_code == 200, page.text
    form = register_form(page.text)
    headers = {"x-csrf-token": form["csrf"]}
    begun = await browser.post(form["begin"], json={"proof": form["proof"]}, headers=headers)
    assert begun.status_code == 200, begun.text
    return await browser.post(
        form["finish"],
        json={"credential": key.create(begun.text), "name": "laptop browser"},
        headers=headers,
    )


async def sign_in_with_passkey(
    browser: httpx.AsyncClient, key: SoftAuthenticator, *, rd: str = "", state: str = ""
) -> str:
    """Passkey-first sign-in from the login page; returns the new portal session token.

    A signed-in browser is not shown the login page, so any earlier session is forgotten
    first, as when it ended."""
    browser.cookies.delete("nt_session")
    page = await browser.get("/login", params={"rd": rd, "state": state})
    assert page.status_code == 200, page.text
    match = re.search(r'id="passkey-login"[^>]*data-csrf="([^"]+)"', page.text, re.S)
    assert match, page.text
    headers = {"x-csrf-token": match.group(1)}
    begun = await browser.post("/webauthn/passwordless/begin", headers=headers)
    assert begun.status_code == 200, begun.text
    finished = await browser.post(
        "/webauthn/passwordless/finish",
        headers=headers,
        json={"credential": key.get(begun.text, any_key=True), "rd": rd, "state": state},
    )
    assert finished.status_code == 200, finished.text
    return set_cookies(finished)["nt_session"]["nt_session"].value
