"""The portal home lists exactly the apps a user may reach, decided like the gateway."""

from __future__ import annotations

import re

from nevertrust.app import Services

from ._support import client_for

POLICY = """\
version: 1
policies:
  - name: billing
    apps: [billing]
    rules:
      - name: staff
        effect: allow
        when: {groups: [staff]}
  - name: ops
    apps: [ops]
    rules:
      - name: staff
        effect: allow
        when: {groups: [staff]}
      - name: needs-a-passkey
        effect: step-up
        when: {groups: [staff]}
        step_up: {methods: [webauthn], max_age: 10m}
"""


async def test_home_shows_apps_allowed_by_rules_policies_or_after_step_up_and_hides_others(
    admin_and_alice: Services,
) -> None:
    svc = admin_and_alice
    svc.directory.add_group("staff", actor="admin:root")
    svc.directory.set_membership("staff", "alice", True, actor="admin:root")
    for app in ("wiki", "billing", "ops", "secret"):
        svc.catalog.add_app(app, upstream="http://127.0.0.1:9", actor="admin:root")
    svc.catalog.set_rule("wiki", "staff", True, actor="admin:root")
    svc.catalog.set_rule("secret", "admins", True, actor="admin:root")
    svc.policy.apply(POLICY, file="policy.yaml", actor="admin:root")

    async with client_for(svc, "alice") as client:
        page = await client.get("/")

    assert page.status_code == 200
    listed = set(re.findall(r"http://(\w+)\.localhost", page.text))
    assert listed == {"wiki", "billing", "ops"}
    assert "secret" not in page.text
