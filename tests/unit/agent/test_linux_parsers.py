"""The Linux parsers on recorded outputs (tests/vectors/agent/linux/)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nevertrust.agent.posture import linux_parsers as p

from ._recorded import vector


def linux(name: str) -> str:
    return vector("linux", name)


@pytest.mark.parametrize(
    ("file", "name", "version"),
    [
        ("os-release-debian12.txt", "Debian GNU/Linux", "12"),
        ("os-release-ubuntu2204.txt", "Ubuntu", "22.04"),
        ("os-release-fedora.txt", "Fedora Linux", "40"),
        ("os-release-arch.txt", "Arch Linux", "rolling"),
    ],
)
def test_os_name_and_version_come_from_os_release(file: str, name: str, version: str) -> None:
    assert p.os_name_version(p.os_release(linux(file))) == (name, version)


def test_os_release_without_a_version_says_so_rather_than_inventing_one() -> None:
    assert p.os_name_version(p.os_release('NAME="Mystery"\n')) == ("Mystery", None)


def test_patch_age_counts_apt_upgrades_not_new_installs() -> None:
    # The newest transaction only installed cowsay; the newest upgrade is 3 November.
    assert p.newest_apt_upgrade(linux("apt-history.log")) == datetime(2026, 11, 3, 17, 40, 51)


def test_an_apt_history_with_installs_only_shows_no_upgrade() -> None:
    assert p.newest_apt_upgrade(linux("apt-history-installs-only.log")) is None


def test_dpkg_log_upgrade_lines_count_and_install_lines_do_not() -> None:
    assert p.newest_dpkg_upgrade(linux("dpkg.log")) == datetime(2026, 11, 10, 6, 25, 2)


def test_dnf_log_upgrades_are_read_in_the_machines_zone() -> None:
    assert p.newest_dnf_upgrade(linux("dnf.rpm.log"), UTC) == datetime(2026, 11, 12, 7, 31, 10)


def test_rpm_install_times_are_unix_seconds_whatever_the_locale() -> None:
    newest = p.newest_rpm_install(linux("rpm-installtime.txt"), UTC)
    assert newest == datetime(2025, 11, 18, 8, 0)
    assert p.newest_rpm_install("(none)\n", UTC) is None


@pytest.mark.parametrize(
    ("file", "encrypted"),
    [
        ("lsblk-luks-lvm.json", True),  # disk > part > crypt > lvm /
        ("lsblk-old-mountpoint.json", True),  # util-linux < 2.37: MOUNTPOINT column
        ("lsblk-plain.json", False),
        ("lsblk-lvm-spanning-plain-disk.json", False),  # one way up has no crypt
        ("lsblk-container.json", None),  # / is not a block device here: cannot tell
    ],
)
def test_root_encryption_follows_the_device_stack(file: str, encrypted: bool | None) -> None:
    assert p.root_encrypted_lsblk(linux(file)) is encrypted


def test_unreadable_lsblk_output_is_undetermined() -> None:
    assert p.root_encrypted_lsblk("lsblk: unknown column: MOUNTPOINTS") is None


def test_mountinfo_names_the_root_device() -> None:
    assert p.mountinfo_root(linux("mountinfo-dm.txt")) == ("253:1", "/dev/mapper/vg0-root")
    assert p.mountinfo_root(linux("mountinfo-overlay.txt")) == ("0:48", "overlay")


def test_hidepid_on_proc_is_noticed() -> None:
    assert p.proc_hidden(linux("mountinfo-dm.txt")) is True
    assert p.proc_hidden(linux("mountinfo-overlay.txt")) is False


@pytest.mark.parametrize(
    ("file", "filters"),
    [
        ("nft-ruleset-input-drop.txt", True),  # policy drop on the input hook
        ("nft-ruleset-reject-rule.txt", True),  # firewalld: a final catch-all reject
        ("nft-ruleset-counted-drop.txt", True),  # counted and logged, still catch-all
        ("nft-ruleset-docker-only.txt", False),  # forward-hook drops protect containers only
        ("nft-ruleset-invalid-only.txt", False),  # conditional drops are not a firewall
    ],
)
def test_nft_ruleset_filters_only_with_an_input_drop(file: str, filters: bool) -> None:
    assert p.nft_filters(linux(file)) is filters


def test_an_empty_nft_ruleset_is_no_firewall() -> None:
    assert p.nft_filters("") is False


@pytest.mark.parametrize(
    ("file", "filters"),
    [
        ("iptables-ufw.txt", True),
        ("iptables-reject-last.txt", True),
        ("iptables-accept.txt", False),  # fail2ban's jump is not a firewall
    ],
)
def test_iptables_rules_filter_by_policy_or_final_reject(file: str, filters: bool) -> None:
    assert p.iptables_filters(linux(file)) is filters


def test_ufw_and_firewalld_states() -> None:
    assert p.ufw_active(linux("ufw-active.txt")) is True
    assert p.ufw_active(linux("ufw-inactive.txt")) is False
    assert p.ufw_active("ERROR: You need to be root to run this script") is None
    assert p.firewalld_running("running\n") is True
    assert p.firewalld_running("not running\n") is False
    assert p.firewalld_running("FirewallD is not running") is None


def test_gsettings_values() -> None:
    assert p.gsettings_bool("true\n") is True
    assert p.gsettings_bool("false\n") is False
    assert p.gsettings_bool("No such schema “org.gnome.desktop.screensaver”") is None
    assert p.gsettings_uint("uint32 300\n") == 300
    assert p.gsettings_uint("uint32 0\n") == 0
    assert p.gsettings_uint("garbage") is None


def test_status_uid_is_the_real_uid() -> None:
    assert p.status_uid("Name:\tgnome-shell\nUid:\t1000\t1000\t1000\t1000\n") == 1000
    assert p.status_uid("Name:\tx\n") is None
