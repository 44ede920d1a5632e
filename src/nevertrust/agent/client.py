"""The agent's two HTTP calls to the portal: enrol and report (docs/agent.md).

``trust_env=False``: the agent never takes a proxy or CA bundle from the environment (a
proxy variable set for something else would see every report). TLS is verified against
the system's trust store, or the CA file given at enrolment. Servers under ``localhost``
are loopback by definition (RFC 6761) but glibc does not resolve ``*.localhost``: such
URLs are dialled at 127.0.0.1 with the right Host header (and TLS server name). Plain
``http://`` is accepted only for loopback servers: the enrolment token and the device's
posture must not cross a network in the clear.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from nevertrust import __version__
from nevertrust.agent.errors import (
    BadServerResponse,
    EnrolmentRefused,
    ReportRefused,
    ServerUnreachable,
)
from nevertrust.agent.models import Enrolment, ReportOutcome, parse_iso
from nevertrust.errors import InvalidInput

__all__ = ["USER_AGENT", "ServerClient", "ServerEndpoint"]

USER_AGENT = f"nevertrust-agent/{__version__}"
_ENROL = "/api/v1/devices/enrol"


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerEndpoint:
    url: str  # as given, normalised: scheme://host[:port][/prefix] without a trailing slash
    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> ServerEndpoint:
        text = url.strip().rstrip("/")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise InvalidInput(f"--server {url!r} is not a URL: {exc}") from exc
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise InvalidInput(
                f"--server must be the portal URL, such as https://auth.example.com; got {url!r}"
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise InvalidInput(f"--server {url!r}: no user, query or fragment, please")
        if parts.scheme == "http" and not _is_loopback(host):
            raise InvalidInput(
                f"--server {url!r} is plain http: the enrolment token and this device's "
                "posture would cross the network in the clear. Use the https:// portal URL."
            )
        default = 443 if parts.scheme == "https" else 80
        return cls(
            url=text,
            scheme=parts.scheme,
            host=host,
            port=port or default,
            prefix=parts.path,
        )

    @property
    def dial_host(self) -> str:
        return (
            "127.0.0.1"
            if self.host == "localhost" or self.host.endswith(".localhost")
            else self.host
        )

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def dial_origin(self) -> str:
        host = f"[{self.dial_host}]" if ":" in self.dial_host else self.dial_host
        return f"{self.scheme}://{host}:{self.port}{self.prefix}"


def _describe(exc: httpx.HTTPError, url: str) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, httpx.TimeoutException):
        return f"the server at {url} did not answer in time ({type(exc).__name__})"
    if "refused" in lowered:
        return (
            f"cannot connect to {url}: connection refused "
            "(is the server running, and is the URL right?)"
        )
    if "certificate" in lowered or "ssl" in lowered:
        return (
            f"cannot connect to {url}: its TLS certificate is not trusted ({text}); "
            "enrol with --ca-file PATH if the portal uses a private CA"
        )
    if "name or service not known" in lowered or "nodename" in lowered or "getaddrinfo" in lowered:
        return f"cannot connect to {url}: the host name does not resolve"
    return f"cannot reach the server at {url}: {text}"


def _error_body(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        code = str(body.get("error") or f"http-{response.status_code}")
        return code, str(body.get("detail") or "")
    return f"http-{response.status_code}", response.text[:200].strip()


_REPORT_HINTS = {
    "report-stale": "check this machine's clock: the report's time must be close to the server's",
    "report-replayed": "a report with a newer time was already accepted; check the clock, "
    "and that no other agent uses this home",
    "report-signature-invalid": "device.key is not the key this device enrolled with: "
    "enrol again with `nevertrust agent enroll --force`",
    "report-wrong-device": "the report names another device than state.json's: "
    "enrol again with `nevertrust agent enroll --force`",
}
_GONE = (
    "the server no longer knows this device (removed?): "
    "enrol again with `nevertrust agent enroll --force`"
)
_GONE_CODES = ("device-not-enrolled", "unknown-device", "not-found")


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadServerResponse(f"the server's answer has no valid {field!r} list")
    return tuple(value)


def _string(data: Mapping[str, Any], field: str, *, optional: bool = False) -> str | None:
    value = data.get(field)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise BadServerResponse(f"the server's answer has no valid {field!r}")
    return value


class ServerClient:
    """Synchronous: the agent makes one call at a time and exits."""

    def __init__(
        self, endpoint: ServerEndpoint, *, ca_file: str | None = None, timeout: float = 20.0
    ) -> None:
        self._endpoint = endpoint
        verify: ssl.SSLContext | bool = True
        if endpoint.scheme == "https":
            verify = ssl.create_default_context(cafile=ca_file)
        self._extensions: dict[str, Any] = (
            {"sni_hostname": endpoint.host} if endpoint.scheme == "https" else {}
        )
        self._http = httpx.Client(
            base_url=endpoint.dial_origin,
            headers={"host": endpoint.host_header, "user-agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            trust_env=False,
            follow_redirects=False,
            verify=verify,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.post(path, extensions=self._extensions, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerUnreachable(_describe(exc, self._endpoint.url)) from exc

    def _json(self, response: httpx.Response) -> Mapping[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, Mapping):
            raise BadServerResponse(
                f"the server answered {response.status_code} without a JSON object; "
                f"is {self._endpoint.url} the NeverTrust portal URL?"
            )
        return data

    def enrol(
        self, *, token: str, public_key: str, name: str, ownership: str, posture: dict[str, Any]
    ) -> Enrolment:
        body = {
            "token": token,
            "public_key": public_key,
            "name": name,
            "ownership": ownership,
            "posture": posture,
        }
        response = self._post(_ENROL, json=body)
        if response.status_code >= 500:
            code, detail = _error_body(response)
            raise BadServerResponse(f"the server failed ({response.status_code} {code}): {detail}")
        if response.status_code != 201:
            code, detail = _error_body(response)
            raise EnrolmentRefused(
                f"the server refused the enrolment ({response.status_code} {code}): {detail}",
                server_code=code,
                status=response.status_code,
            )
        data = self._json(response)
        interval = data.get("report_interval_seconds")
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise BadServerResponse("the server's answer has no valid 'report_interval_seconds'")
        return Enrolment(
            device_id=str(_string(data, "device_id")),
            certificate=str(_string(data, "certificate")),
            ca_certificate=str(_string(data, "ca_certificate")),
            certificate_expires_at=parse_iso(data.get("certificate_expires_at")),
            report_interval_seconds=interval,
            state=str(_string(data, "state")),
            reasons=_strings(data.get("reasons", []), "reasons"),
        )

    def report(self, *, device_id: str, jws: str) -> ReportOutcome:
        response = self._post(
            f"/api/v1/devices/{device_id}/reports",
            content=jws.encode("ascii"),
            headers={"content-type": "application/jose"},
        )
        if response.status_code >= 500:
            code, detail = _error_body(response)
            raise BadServerResponse(f"the server failed ({response.status_code} {code}): {detail}")
        if response.status_code != 200:
            code, detail = _error_body(response)
            hint = _REPORT_HINTS.get(code)
            if hint is None and (code in _GONE_CODES or response.status_code in (404, 410)):
                hint = _GONE
            message = f"the server refused the report ({response.status_code} {code}): {detail}"
            raise ReportRefused(
                message + (f"; {hint}" if hint else ""),
                server_code=code,
                status=response.status_code,
            )
        data = self._json(response)
        compliant = data.get("compliant")
        if not isinstance(compliant, bool):
            raise BadServerResponse("the server's answer has no valid 'compliant'")
        return ReportOutcome(
            state=str(_string(data, "state")),
            compliant=compliant,
            reasons=_strings(data.get("reasons", []), "reasons"),
            certificate=_string(data, "certificate", optional=True),
            certificate_expires_at=parse_iso(data.get("certificate_expires_at")),
        )
