"""Device trust errors. Codes are stable; messages say expected versus got, never a secret.

NeverTrustError
 +-- InvalidInput (400)
 |    +-- InvalidPublicKey         not a PEM SubjectPublicKeyInfo of an EC P-256 key
 |    +-- InvalidPosture           the posture document is malformed (names the field)
 |    +-- InvalidDevicePolicy      a compliance policy value is out of range
 |    +-- ReportMalformed          not a compact JWS with the claims a report needs
 +-- NotFound (404)
 |    +-- UnknownDevice
 +-- Unauthenticated (401)
      +-- InvalidEnrolmentToken    unknown, used, expired, or its user cannot enrol
      +-- DeviceNotEnrolled        a report for a device that does not (or no longer) exist
      +-- ReportSignatureInvalid   not signed by the device's key with ES256
      +-- ReportWrongDevice        ``sub`` is not the device the URL names
      +-- ReportStale              ``iat`` outside the accepted window
      +-- ReportReplayed           not newer than the last accepted report, or a seen jti
      +-- CertificateRefused       a client certificate that is not a device's current one
      +-- BindProofRefused         a browser-binding proof that is forged, stale, replayed,
                                   for another purpose, or for a device this user cannot bind
"""

from __future__ import annotations

from nevertrust.errors import InvalidInput, NotFound, Unauthenticated

__all__ = [
    "BindProofRefused",
    "CertificateRefused",
    "DeviceNotEnrolled",
    "InvalidDevicePolicy",
    "InvalidEnrolmentToken",
    "InvalidPosture",
    "InvalidPublicKey",
    "ReportMalformed",
    "ReportRefused",
    "ReportReplayed",
    "ReportSignatureInvalid",
    "ReportStale",
    "ReportWrongDevice",
    "UnknownDevice",
]


class UnknownDevice(NotFound):
    code = "unknown-device"


class InvalidPublicKey(InvalidInput):
    code = "invalid-public-key"


class InvalidPosture(InvalidInput):
    code = "invalid-posture"


class InvalidDevicePolicy(InvalidInput):
    code = "invalid-device-policy"


class InvalidEnrolmentToken(Unauthenticated):
    """Deliberately one answer for unknown, used and expired tokens."""

    code = "invalid-enrolment-token"


class ReportMalformed(InvalidInput):
    code = "report-malformed"


class ReportRefused(Unauthenticated):
    """Root of the refusals of a well-formed signed report."""

    code = "report-refused"


class DeviceNotEnrolled(ReportRefused):
    code = "device-not-enrolled"


class ReportSignatureInvalid(ReportRefused):
    code = "report-signature-invalid"


class ReportWrongDevice(ReportRefused):
    code = "report-wrong-device"


class ReportStale(ReportRefused):
    code = "report-stale"


class ReportReplayed(ReportRefused):
    code = "report-replayed"


class CertificateRefused(Unauthenticated):
    code = "device-certificate-refused"


class BindProofRefused(Unauthenticated):
    """``nevertrust agent bind-browser``'s proof did not show this user holds the device."""

    code = "device-bind-proof-refused"
