"""The agent's use cases: enrol this device, report its posture, say what is stored.

``Agent`` is handed its home, a posture collector, a clock and a way to open a server
client, so tests run it against a real local server with real crypto and a recorded or
real posture. Nothing is written until the server has accepted: a refused enrolment
leaves an existing enrolment untouched, and ``state.json`` is written last, so a home is
either enrolled with a key and certificates that belong together or not enrolled.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlencode

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from nevertrust.agent.client import ServerClient, ServerEndpoint
from nevertrust.agent.errors import AlreadyEnrolled, BadServerResponse, NotEnrolled
from nevertrust.agent.home import AgentHome
from nevertrust.agent.models import AgentState, Collected, Enrolment, ReportOutcome
from nevertrust.agent.posture import collect_posture
from nevertrust.agent.signing import (
    certificate_expiry,
    load_private_key,
    new_private_key,
    private_key_pem,
    public_key_pem,
    sign_bind_proof,
    sign_report,
)
from nevertrust.errors import InvalidInput, NeverTrustError

__all__ = ["Agent", "Enrolled", "Reported", "Status"]

OWNERSHIPS = ("managed", "personal")


@dataclass(frozen=True, slots=True)
class Enrolled:
    state: AgentState
    enrolment: Enrolment
    collected: Collected


@dataclass(frozen=True, slots=True)
class Reported:
    state: AgentState
    outcome: ReportOutcome
    collected: Collected
    certificate_renewed: bool


@dataclass(frozen=True, slots=True)
class Status:
    home: str
    state: AgentState
    certificate_expires_at: datetime | None


def _now() -> datetime:
    return datetime.now(UTC)


def _hostname() -> str:
    return (socket.gethostname() or "unnamed-device")[:100]


def _check_certificate(pem: str, key: ec.EllipticCurvePrivateKey, ca_pem: str | None) -> None:
    """The certificate is ours (our public key) and, when the CA is known, issued by it.

    A server that answered with someone else's certificate would leave a device whose mTLS
    never works; better to say so now than at the first refused connection.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise BadServerResponse(f"the server sent an unreadable certificate: {exc}") from exc
    if cert.public_key() != key.public_key():
        raise BadServerResponse("the server's certificate is not for this device's key")
    if ca_pem is not None:
        try:
            ca = x509.load_pem_x509_certificate(ca_pem.encode("ascii"))
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise BadServerResponse(
                f"the device certificate is not issued by the CA the server sent: {exc}"
            ) from exc
        except InvalidSignature as exc:
            raise BadServerResponse(
                "the device certificate's signature does not verify with the server's CA"
            ) from exc


class Agent:
    def __init__(
        self,
        home: AgentHome,
        *,
        collect: Callable[[], Collected] = collect_posture,
        clock: Callable[[], datetime] = _now,
        open_client: Callable[[ServerEndpoint, str | None], ServerClient] | None = None,
        hostname: Callable[[], str] = _hostname,
    ) -> None:
        self.home = home
        self._collect = collect
        self._clock = clock
        self._open = open_client or (lambda endpoint, ca: ServerClient(endpoint, ca_file=ca))
        self._hostname = hostname

    def enroll(
        self,
        *,
        server: str,
        token: str,
        ownership: str = "managed",
        force: bool = False,
        ca_file: str | None = None,
    ) -> Enrolled:
        endpoint = ServerEndpoint.parse(server)
        token = token.strip()
        if not token:
            raise InvalidInput("--token is empty: give the one-time token from the admin")
        if ownership not in OWNERSHIPS:
            raise InvalidInput(f"ownership must be managed or personal, got {ownership!r}")
        self.home.check(create=True)
        if self.home.enrolled() and not force:
            try:
                known = self.home.load_state()
                which = f" as {known.device_id} with {known.server}"
            except NeverTrustError:
                which = ""
            raise AlreadyEnrolled(
                f"this home ({self.home.path}) is already enrolled{which}; "
                "enrol again with --force (a new key replaces the old one)"
            )
        key = new_private_key()
        collected = self._collect()
        with self._open(endpoint, ca_file) as client:
            enrolment = client.enrol(
                token=token,
                public_key=public_key_pem(key),
                name=self._hostname(),
                ownership=ownership,
                posture=collected.posture.to_json(),
            )
        _check_certificate(enrolment.certificate, key, enrolment.ca_certificate)
        now = self._clock()
        state = AgentState(
            server=endpoint.url,
            device_id=enrolment.device_id,
            state=enrolment.state,
            reasons=enrolment.reasons,
            ownership=ownership,
            enrolled_at=now,
            report_interval_seconds=enrolment.report_interval_seconds,
            certificate_expires_at=enrolment.certificate_expires_at
            or certificate_expiry(enrolment.certificate),
            ca_file=ca_file,
        )
        self.home.write_key(private_key_pem(key))
        self.home.write(AgentHome.CERTIFICATE, enrolment.certificate.encode("ascii"))
        self.home.write(AgentHome.CA, enrolment.ca_certificate.encode("ascii"))
        self.home.save_state(state)
        return Enrolled(state=state, enrolment=enrolment, collected=collected)

    def report(self) -> Reported:
        self.home.check()
        state = self.home.load_state()
        key = load_private_key(self.home.read_key())
        collected = self._collect()
        now = self._clock()
        # Strictly newer than the last report sent: the server refuses an equal iat.
        iat = max(int(now.timestamp()), state.last_iat + 1)
        jws = sign_report(
            key, device_id=state.device_id, iat=iat, posture=collected.posture.to_json()
        )
        try:
            with self._open(ServerEndpoint.parse(state.server), state.ca_file) as client:
                outcome = client.report(device_id=state.device_id, jws=jws)
            renewed = outcome.certificate is not None
            if outcome.certificate is not None:
                ca = self.home.read_text(AgentHome.CA)
                _check_certificate(outcome.certificate, key, ca)
                self.home.write(AgentHome.CERTIFICATE, outcome.certificate.encode("ascii"))
        except NeverTrustError as exc:
            self.home.save_state(
                replace(
                    state, last_iat=iat, last_error=f"{exc.code}: {exc.message}", last_error_at=now
                )
            )
            raise
        expires = state.certificate_expires_at
        if outcome.certificate is not None:
            expires = outcome.certificate_expires_at or certificate_expiry(outcome.certificate)
        state = replace(
            state,
            state=outcome.state,
            reasons=outcome.reasons,
            last_report_at=now,
            last_iat=iat,
            certificate_expires_at=expires,
            last_error=None,
            last_error_at=None,
        )
        self.home.save_state(state)
        return Reported(
            state=state, outcome=outcome, collected=collected, certificate_renewed=renewed
        )

    def bind_browser_link(self) -> str:
        """The portal link that binds a browser on this machine to this device.

        Made offline with the device key; the server accepts it once, within
        ``devices.report_max_age_seconds`` of now, and only a proof newer than the last
        one it accepted: so ``iat`` steps past the last one this agent signed (two links in
        one second would otherwise look like one link used twice).
        """
        self.home.check()
        state = self.home.load_state()
        key = load_private_key(self.home.read_key())
        iat = max(int(self._clock().timestamp()), state.last_iat + 1)
        proof = sign_bind_proof(key, device_id=state.device_id, iat=iat)
        self.home.save_state(replace(state, last_iat=iat))
        return f"{state.server}/account/devices/bind?{urlencode({'proof': proof})}"

    def status(self) -> Status:
        if not self.home.path.exists():
            raise NotEnrolled(
                f"this device is not enrolled (no {self.home.path}): "
                "run `nevertrust agent enroll --server URL --token TOKEN`"
            )
        self.home.check()
        state = self.home.load_state()
        expiry = certificate_expiry(self.home.read_text(AgentHome.CERTIFICATE))
        return Status(
            home=str(self.home.path),
            state=state,
            certificate_expires_at=expiry or state.certificate_expires_at,
        )
