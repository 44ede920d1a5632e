"""Known EDR agents are recognised by process name, including truncated names."""

from __future__ import annotations

from nevertrust.agent.posture.edr import LINUX_AGENTS, MACOS_AGENTS, WINDOWS_AGENTS, find_agent


def test_a_known_sensor_is_named_with_its_product() -> None:
    assert (
        find_agent(["sshd", "falcon-sensor"], LINUX_AGENTS) == "CrowdStrike Falcon (falcon-sensor)"
    )


def test_the_kernel_truncated_comm_still_matches() -> None:
    # /proc/PID/comm keeps 15 characters; macOS ps -c keeps 16
    assert find_agent(["elastic-endpoin"], LINUX_AGENTS) == "Elastic Defend (elastic-endpoint)"
    assert find_agent(["CbOsxSensorServi"], MACOS_AGENTS) == "Carbon Black EDR (CbOsxSensorService)"


def test_a_short_prefix_is_not_a_match() -> None:
    assert find_agent(["falcon"], LINUX_AGENTS) is None
    assert find_agent(["osquery"], LINUX_AGENTS) is None


def test_windows_names_compare_without_case() -> None:
    assert find_agent(["msmpeng.EXE"], WINDOWS_AGENTS, fold=True) == (
        "Microsoft Defender Antivirus (MsMpEng.exe)"
    )
    assert find_agent(["msmpeng.EXE"], WINDOWS_AGENTS) is None


def test_a_dedicated_sensor_wins_over_antivirus() -> None:
    found = find_agent(["MsMpEng.exe", "SentinelAgent.exe"], WINDOWS_AGENTS, fold=True)
    assert found == "SentinelOne (SentinelAgent.exe)"


def test_no_agent_running() -> None:
    assert find_agent(["systemd", "sshd", "bash"], LINUX_AGENTS) is None
