"""Second factor at sign-in and step-up through the gateway, against the real server.

Codes come from the independent ``oathtool`` client, driven by the secret that
``nevertrust mfa totp enroll`` prints (a stable interface).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.browser import Browser, hidden_fields
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.skipif(shutil.which("oathtool") is None, reason="needs oathtool")

PASSWORD = "correct horse battery staple"
POLICY = """\
version: 1
policies:
  - name: whoami
    apps: [whoami]
    rules:
      - name: staff
        effect: allow
        when:
          groups: [staff]
      - name: admin-pages-need-a-fresh-code
        effect: step-up
        when:
          http: {paths: ["/admin*"]}
        step_up: {methods: [otp], max_age: 3s}
"""


def oathtool(secret: str, *, at: float | None = None) -> str:
    args = ["oathtool", "--totp", "-b"]
    if at is not None:
        args += ["-N", f"@{int(at)}"]
    return subprocess.run(
        [*args, secret], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def enrol(platform: Platform, user: str) -> str:
    out = platform.cli("mfa", "totp", "enroll", user).stdout
    uri = re.search(r"otpauth://\S+", out)
    assert uri, out
    return parse_qs(urlparse(uri.group(0)).query)["secret"][0]


def submit_code(platform: Platform, browser: Browser, page_html: str, code: str, action: str):
    fields = hidden_fields(page_html)
    assert "csrf_token" in fields
    return browser.go("POST", platform.portal + action, data={**fields, "otp": code})


@pytest.fixture
def staff_with_totp(platform: Platform) -> tuple[Platform, str]:
    platform.cli("groups", "add", "staff")
    platform.add_user("bob", PASSWORD, "staff")
    platform.cli("policy", "apply", "-f", "-", input=POLICY)
    return platform, enrol(platform, "bob")


def test_password_then_oathtool_code_reaches_the_app(
    staff_with_totp: tuple[Platform, str],
) -> None:
    platform, secret = staff_with_totp
    b = platform.browser()
    form, _ = b.go("GET", platform.app_url("whoami") + "/hello?x=1")
    page, hops = platform.login(b, "bob", PASSWORD, form=form)

    # The password alone opens nothing: the portal asks for the code, field `otp`.
    assert hops[-1].url.startswith(platform.portal + "/login/mfa")
    assert 'name="otp"' in page.text and "csrf_token" in hidden_fields(page.text)
    assert "nt_session" not in b.cookies("auth.localhost")
    missing, _ = b.go("GET", platform.app_url("whoami") + "/hello?x=1")
    assert "/login/mfa" not in str(missing.url) and missing.status_code == 200
    assert "Sign in" in missing.text  # still the password form: nothing was granted

    page, hops = platform.login(b, "bob", PASSWORD, form=form)
    wrong, _ = submit_code(platform, b, page.text, "000000", "/login/mfa")
    assert wrong.status_code == 401 and 'name="otp"' in wrong.text

    done, hops = submit_code(platform, b, wrong.text, oathtool(secret), "/login/mfa")
    assert hops[-1].url == platform.app_url("whoami") + "/hello?x=1"
    assert done.status_code == 200
    assert "bob" in done.text


def test_a_used_code_cannot_sign_in_again(staff_with_totp: tuple[Platform, str]) -> None:
    platform, secret = staff_with_totp
    code = oathtool(secret)
    first = platform.browser()
    page, _ = platform.login(first, "bob", PASSWORD)
    _, hops = submit_code(platform, first, page.text, code, "/login/mfa")
    assert hops[-1].url == platform.portal + "/"

    second = platform.browser()
    page, _ = platform.login(second, "bob", PASSWORD)
    replay, _ = submit_code(platform, second, page.text, code, "/login/mfa")
    assert replay.status_code == 401
    assert "nt_session" not in second.cookies("auth.localhost")


def test_step_up_sends_the_user_through_a_fresh_code_and_back_to_the_same_url(
    staff_with_totp: tuple[Platform, str],
) -> None:
    platform, secret = staff_with_totp
    b = platform.browser()
    form, _ = b.go("GET", platform.app_url("whoami") + "/")
    page, _ = platform.login(b, "bob", PASSWORD, form=form)
    _, hops = submit_code(platform, b, page.text, oathtool(secret), "/login/mfa")
    assert hops[-1].url == platform.app_url("whoami") + "/"

    time.sleep(3.5)  # the rule wants a code younger than 3 s
    target = platform.app_url("whoami") + "/admin/users?page=2"
    asked, hops = b.go("GET", target)
    assert hops[-1].url.startswith(platform.portal + "/stepup"), [h.url for h in hops]
    assert 'name="otp"' in asked.text and "Verify again" in asked.text

    # A POST is not redirected (its body would be lost): it gets a page that says why.
    refused = b.request("POST", target, data={"a": "1"})
    assert refused.status_code == 403 and "stronger sign-in" in refused.text

    # The next time step's code (the current one was used at sign-in: no replay).
    done, hops = submit_code(
        platform, b, asked.text, oathtool(secret, at=time.time() + 30), "/stepup"
    )
    assert hops[-1].url == target, [h.url for h in hops]
    assert done.status_code == 200

    records = platform.audit_records(
        lambda rs: any(r["action"] == "identity:step-up:succeeded" for r in rs)
    )
    assert any(r["action"] == "identity:step-up:succeeded" for r in records)


def test_changing_factors_with_a_password_only_session_asks_for_a_code_then_returns(
    platform: Platform,
) -> None:
    platform.add_user("dana", PASSWORD)
    b = platform.browser()
    platform.login(b, "dana", PASSWORD)  # no factor yet: the password is the sign-in
    secret = enrol(platform, "dana")  # an admin provisions an app afterwards

    account, _ = b.go("GET", platform.portal + "/account")
    token = hidden_fields(account.text)["csrf_token"]
    asked, hops = b.go(
        "POST", platform.portal + "/account/recovery-codes", data={"csrf_token": token}
    )
    assert hops[-1].url.startswith(platform.portal + "/stepup"), [h.url for h in hops]

    back, hops = submit_code(platform, b, asked.text, oathtool(secret), "/stepup")
    assert hops[-1].url == platform.portal + "/account", back.text
    codes, hops = b.go(
        "POST",
        platform.portal + "/account/recovery-codes",
        data={"csrf_token": hidden_fields(back.text)["csrf_token"]},
    )
    assert hops[-1].url == platform.portal + "/account/recovery-codes"
    assert codes.status_code == 200 and codes.text.count("<li><code>") == 10
