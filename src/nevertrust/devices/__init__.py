"""Device trust: enrolment, signed posture reports, compliance, quarantine, the device CA."""

from __future__ import annotations

from nevertrust.devices.authority import DeviceAuthority
from nevertrust.devices.ca import DeviceCA, device_id_from_certificate, load_device_public_key
from nevertrust.devices.compliance import evaluate_compliance
from nevertrust.devices.enrolment import Enrolment, EnrolmentService, ReportOutcome
from nevertrust.devices.errors import (
    CertificateRefused,
    DeviceNotEnrolled,
    InvalidDevicePolicy,
    InvalidEnrolmentToken,
    InvalidPosture,
    InvalidPublicKey,
    ReportMalformed,
    ReportRefused,
    ReportReplayed,
    ReportSignatureInvalid,
    ReportStale,
    ReportWrongDevice,
    UnknownDevice,
)
from nevertrust.devices.inventory import DeviceInventory
from nevertrust.devices.models import (
    CompliancePolicy,
    ComplianceReason,
    DeviceRecord,
    DeviceView,
    EnrolmentToken,
    Ownership,
    Platform,
    State,
)
from nevertrust.devices.posture import Posture, parse_posture
from nevertrust.devices.service import DeviceService

__all__ = [
    "CertificateRefused",
    "CompliancePolicy",
    "ComplianceReason",
    "DeviceAuthority",
    "DeviceCA",
    "DeviceInventory",
    "DeviceNotEnrolled",
    "DeviceRecord",
    "DeviceService",
    "DeviceView",
    "Enrolment",
    "EnrolmentService",
    "EnrolmentToken",
    "InvalidDevicePolicy",
    "InvalidEnrolmentToken",
    "InvalidPosture",
    "InvalidPublicKey",
    "Ownership",
    "Platform",
    "Posture",
    "ReportMalformed",
    "ReportOutcome",
    "ReportRefused",
    "ReportReplayed",
    "ReportSignatureInvalid",
    "ReportStale",
    "ReportWrongDevice",
    "State",
    "UnknownDevice",
    "device_id_from_certificate",
    "evaluate_compliance",
    "load_device_public_key",
    "parse_posture",
]
