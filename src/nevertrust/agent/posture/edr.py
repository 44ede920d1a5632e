"""The endpoint security agents the collectors look for, per platform, and the matcher.

A running process with one of these names counts as "EDR running"; ``edr_name`` names
the first one found, as ``Product (process)``, in the order below (dedicated EDR sensors
before antivirus and visibility tools, so a machine running both reports the sensor).
The lists are the vendors' documented process names; an agent missing from them reads
as ``edr_running: false`` until it is added (never a guessed ``true``).

Process names are compared exactly, except that the kernel truncates them (Linux
``/proc/PID/comm`` keeps 15 characters, macOS ``ps -c`` 16): a name of that length
matches a longer agent name it is the start of. Windows image names compare without case.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LINUX_AGENTS", "MACOS_AGENTS", "WINDOWS_AGENTS", "find_agent"]

# (process name, product) pairs.
LINUX_AGENTS: tuple[tuple[str, str], ...] = (
    ("falcon-sensor", "CrowdStrike Falcon"),
    ("SentinelAgent", "SentinelOne"),
    ("s1-agent", "SentinelOne"),
    ("wdavdaemon", "Microsoft Defender for Endpoint"),
    ("elastic-endpoint", "Elastic Defend"),
    ("cbagentd", "Carbon Black Cloud"),
    ("xagt", "Trellix Endpoint Security"),
    ("ds_agent", "Trend Micro Deep Security"),
    ("TaniumClient", "Tanium"),
    ("wazuh-agentd", "Wazuh"),
    ("ossec-agentd", "OSSEC"),
    ("osqueryd", "osquery"),
)

MACOS_AGENTS: tuple[tuple[str, str], ...] = (
    ("falcond", "CrowdStrike Falcon"),
    ("com.crowdstrike.falcon.Agent", "CrowdStrike Falcon"),
    ("SentinelAgent", "SentinelOne"),
    ("wdavdaemon", "Microsoft Defender for Endpoint"),
    ("elastic-endpoint", "Elastic Defend"),
    ("CbOsxSensorService", "Carbon Black EDR"),
    ("JamfProtect", "Jamf Protect"),
    ("xagt", "Trellix Endpoint Security"),
    ("wazuh-agentd", "Wazuh"),
    ("osqueryd", "osquery"),
)

WINDOWS_AGENTS: tuple[tuple[str, str], ...] = (
    ("CSFalconService.exe", "CrowdStrike Falcon"),
    ("SentinelAgent.exe", "SentinelOne"),
    ("MsSense.exe", "Microsoft Defender for Endpoint"),
    ("cyserver.exe", "Cortex XDR"),
    ("elastic-endpoint.exe", "Elastic Defend"),
    ("RepMgr.exe", "Carbon Black Cloud"),
    ("CylanceSvc.exe", "Cylance"),
    ("xagt.exe", "Trellix Endpoint Security"),
    ("TaniumClient.exe", "Tanium"),
    ("MsMpEng.exe", "Microsoft Defender Antivirus"),
    ("wazuh-agent.exe", "Wazuh"),
    ("osqueryd.exe", "osquery"),
)

_TRUNCATED_AT = 15


def _matches(process: str, agent: str, *, fold: bool) -> bool:
    if fold:
        process, agent = process.casefold(), agent.casefold()
    if process == agent:
        return True
    return len(process) >= _TRUNCATED_AT and agent.startswith(process)


def find_agent(
    processes: Iterable[str], agents: tuple[tuple[str, str], ...], *, fold: bool = False
) -> str | None:
    """``Product (process)`` of the first known agent running, in the list's order, or None."""
    running = [p.strip() for p in processes if p.strip()]
    for name, product in agents:
        if any(_matches(p, name, fold=fold) for p in running):
            return f"{product} ({name})"
    return None
