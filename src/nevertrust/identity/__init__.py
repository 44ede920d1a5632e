"""Identity: people, groups, passwords, sign-in, sessions, second factors, machines."""

from __future__ import annotations

from nevertrust.identity.authentication import AuthService, IssuedSession
from nevertrust.identity.directory import ADMIN_GROUP, DirectoryService, check_password_policy
from nevertrust.identity.errors import (
    InvalidCredentials,
    InvalidHandoff,
    UnknownGroup,
    UnknownUser,
    WeakPassword,
)
from nevertrust.identity.handoff import HandoffService
from nevertrust.identity.inventory import KeyView, ServiceAccount
from nevertrust.identity.mfa_reset import MfaReset, MfaResetService
from nevertrust.identity.models import (
    BanRecord,
    GroupRecord,
    SessionKind,
    SessionRecord,
    UserRecord,
)
from nevertrust.identity.passwords import Passwords
from nevertrust.identity.recovery import RecoveryCodeService
from nevertrust.identity.regulation import (
    InvalidBanSubject,
    Limit,
    RegulationPolicy,
    RegulationUnavailable,
    Regulator,
)
from nevertrust.identity.reports import IdentityReport, ReportService
from nevertrust.identity.service_accounts import ServiceAccountService
from nevertrust.identity.sessions import SessionService
from nevertrust.identity.totp import (
    InvalidOtp,
    MfaStatus,
    TotpAlreadyEnrolled,
    TotpEnrolment,
    TotpNotEnrolled,
    TotpService,
)
from nevertrust.identity.webauthn import (
    PasskeyAuthenticationFailed,
    PasskeyChallengeExpired,
    PasskeyCloned,
    PasskeyRegistrationFailed,
    UnknownPasskey,
    WebAuthnService,
)

__all__ = [
    "ADMIN_GROUP",
    "AuthService",
    "HandoffService",
    "SessionService",
    "MfaReset",
    "MfaResetService",
    "BanRecord",
    "DirectoryService",
    "GroupRecord",
    "IdentityReport",
    "InvalidBanSubject",
    "InvalidCredentials",
    "InvalidHandoff",
    "InvalidOtp",
    "IssuedSession",
    "KeyView",
    "Limit",
    "MfaStatus",
    "PasskeyAuthenticationFailed",
    "PasskeyChallengeExpired",
    "PasskeyCloned",
    "PasskeyRegistrationFailed",
    "Passwords",
    "RecoveryCodeService",
    "RegulationPolicy",
    "RegulationUnavailable",
    "Regulator",
    "ReportService",
    "ServiceAccount",
    "ServiceAccountService",
    "SessionKind",
    "SessionRecord",
    "TotpAlreadyEnrolled",
    "TotpEnrolment",
    "TotpNotEnrolled",
    "TotpService",
    "UnknownGroup",
    "UnknownPasskey",
    "UnknownUser",
    "UserRecord",
    "WeakPassword",
    "WebAuthnService",
    "check_password_policy",
]
