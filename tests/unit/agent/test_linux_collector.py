"""The Linux collector's decisions on recorded machines: which source wins, what is null."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nevertrust.agent.posture.linux import collect_linux

from ._recorded import RecordedRunner, failed, ok, vector

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LSBLK = ("lsblk", "-J", "-o", "NAME,TYPE,MOUNTPOINTS")
NFT = ("nft", "list", "ruleset")
IPTABLES = ("iptables", "-S")
LOCK = ("gsettings", "get", "org.gnome.desktop.screensaver", "lock-enabled")
IDLE = ("gsettings", "get", "org.gnome.desktop.session", "idle-delay")


def machine(
    *,
    commands: dict[tuple[str, ...], Any] | None = None,
    processes: dict[str, str] | None = None,
    files: dict[str, str | bytes] | None = None,
    dirs: dict[str, list[str]] | None = None,
) -> RecordedRunner:
    procs = processes if processes is not None else {"1": "systemd", "812": "sshd"}
    all_files: dict[str, str | bytes] = {
        "/etc/os-release": vector("linux", "os-release-debian12.txt"),
        "/var/log/apt/history.log": vector("linux", "apt-history.log"),
        "/var/log/dpkg.log": vector("linux", "dpkg.log"),
        "/proc/self/mountinfo": vector("linux", "mountinfo-overlay.txt"),
        **{f"/proc/{pid}/comm": name + "\n" for pid, name in procs.items()},
        **(files or {}),
    }
    all_dirs = {
        "/var/log/apt": ["eipp.log.xz", "history.log", "term.log"],
        "/var/log": ["apt", "dpkg.log", "syslog"],
        "/proc": [*procs, "self", "sys"],
        **(dirs or {}),
    }
    return RecordedRunner(commands=commands or {}, files=all_files, dirs=all_dirs)


def collect(runner: RecordedRunner, uid: int = 0) -> Any:
    return collect_linux(runner, now=NOW, uid=uid, kernel="6.1.0-28-amd64", tz=UTC)


def test_a_plain_debian_server_reports_what_it_can_and_null_for_the_rest() -> None:
    runner = machine(commands={LSBLK: ok(vector("linux", "lsblk-plain.json"))})
    result = collect(runner)
    assert result.posture.to_json() == {
        "platform": "linux",
        "os_name": "Debian GNU/Linux",
        "os_version": "12",
        "kernel_version": "6.1.0-28-amd64",
        "patch_age_days": 15,  # dpkg.log's 10 November upgrade is newer than apt's 3rd
        "disk_encrypted": False,
        "firewall_active": None,  # neither nft nor iptables could be read
        "edr_running": False,
        "edr_name": None,
        "screen_lock_enabled": None,  # headless
        "collected_at": "2026-11-25T12:00:00Z",
    }
    assert "headless" in result.notes["screen_lock_enabled"]
    assert "need root" in result.notes["firewall_active"]


def test_every_command_is_read_only_and_runs_without_a_shell() -> None:
    runner = machine()
    collect(runner)
    allowed = {LSBLK[0], "nft", "iptables", "ufw", "firewall-cmd", "rpm", "gsettings"}
    assert {argv[0] for argv in runner.ran} <= allowed
    assert ("nft", "list", "ruleset") in runner.ran
    assert not any(word in argv for argv in runner.ran for word in ("add", "flush", "enable"))


def test_rotated_and_compressed_apt_history_is_read_newest_first() -> None:
    import gzip

    old = gzip.compress(vector("linux", "apt-history.log").encode())
    runner = machine(
        files={"/var/log/apt/history.log": "", "/var/log/apt/history.log.2.gz": old},
        dirs={
            "/var/log/apt": ["history.log", "history.log.1.gz", "history.log.2.gz"],
            "/var/log": [],
        },
    )
    assert collect(runner).posture.patch_age_days == 21  # 3 November, from the .2.gz


def test_upgrade_stamp_of_unattended_upgrades_counts_as_an_upgrade() -> None:
    runner = machine(dirs={"/var/log/apt": [], "/var/log": []})
    runner.mtimes = {"/var/lib/apt/periodic/upgrade-stamp": NOW.timestamp() - 2 * 86400}
    assert collect(runner).posture.patch_age_days == 2


def test_no_upgrade_on_record_is_null_not_zero() -> None:
    runner = machine(dirs={"/var/log/apt": [], "/var/log": []})
    result = collect(runner)
    assert result.posture.patch_age_days is None
    assert "no package upgrade" in result.notes["patch_age_days"]


def test_rpm_systems_use_the_dnf_log_then_install_times() -> None:
    dnf = machine(
        files={"/var/log/dnf.rpm.log": vector("linux", "dnf.rpm.log")},
        dirs={"/var/log/apt": [], "/var/log": ["dnf.rpm.log"]},
    )
    assert collect(dnf).posture.patch_age_days == 13
    newest = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
    rpm = machine(
        commands={("rpm", "-qa", "--qf", "%{INSTALLTIME}\\n"): ok(f"{newest}\n1700000000\n")},
        dirs={"/var/log/apt": [], "/var/log": []},
    )
    assert collect(rpm).posture.patch_age_days == 24


def test_luks_root_is_encrypted() -> None:
    runner = machine(commands={LSBLK: ok(vector("linux", "lsblk-luks-lvm.json"))})
    assert collect(runner).posture.disk_encrypted is True


def test_old_lsblk_without_mountpoints_is_asked_for_mountpoint() -> None:
    old = ("lsblk", "-J", "-o", "NAME,TYPE,MOUNTPOINT")
    runner = machine(
        commands={
            LSBLK: failed("lsblk: unknown column: MOUNTPOINTS"),
            old: ok(vector("linux", "lsblk-old-mountpoint.json")),
        }
    )
    assert collect(runner).posture.disk_encrypted is True


def test_without_lsblk_sysfs_finds_dm_crypt_under_lvm() -> None:
    runner = machine(
        files={
            "/proc/self/mountinfo": vector("linux", "mountinfo-dm.txt"),
            "/sys/dev/block/253:1/dev": "253:1\n",
            "/sys/dev/block/253:1/dm/uuid": "LVM-AbCdEf\n",
            "/sys/class/block/dm-0/dev": "253:0\n",
            "/sys/class/block/dm-0/dm/uuid": "CRYPT-LUKS2-0123abcd-nvme0n1p3_crypt\n",
        },
        dirs={"/sys/dev/block/253:1/slaves": ["dm-0"], "/sys/class/block/dm-0/slaves": ["p3"]},
    )
    result = collect(runner)
    assert result.posture.disk_encrypted is True
    assert result.notes["disk_encrypted"].startswith("sysfs")


def test_a_container_root_cannot_be_judged() -> None:
    runner = machine(commands={LSBLK: ok(vector("linux", "lsblk-container.json"))})
    assert collect(runner).posture.disk_encrypted is None


def test_firewall_from_the_kernel_rules() -> None:
    on = machine(commands={NFT: ok(vector("linux", "nft-ruleset-input-drop.txt"))})
    assert collect(on).posture.firewall_active is True
    off = machine(commands={NFT: ok(""), IPTABLES: ok(vector("linux", "iptables-accept.txt"))})
    assert collect(off).posture.firewall_active is False


def test_an_inactive_front_end_alone_does_not_prove_the_firewall_off() -> None:
    runner = machine(
        commands={
            NFT: failed("Operation not permitted"),
            ("ufw", "status"): ok(vector("linux", "ufw-inactive.txt")),
        }
    )
    assert collect(runner).posture.firewall_active is None


def test_firewalld_running_is_a_firewall() -> None:
    runner = machine(commands={("firewall-cmd", "--state"): ok("running\n")})
    assert collect(runner).posture.firewall_active is True


def test_edr_sensor_found_even_with_a_truncated_process_name() -> None:
    runner = machine(processes={"1": "systemd", "901": "elastic-endpoin", "902": "osqueryd"})
    posture = collect(runner).posture
    assert posture.edr_running is True
    assert posture.edr_name == "Elastic Defend (elastic-endpoint)"  # sensor before osquery


def test_hidden_processes_make_edr_unknown_for_a_user_not_absent() -> None:
    runner = machine(files={"/proc/self/mountinfo": vector("linux", "mountinfo-dm.txt")})
    assert collect(runner, uid=1000).posture.edr_running is None
    assert collect(runner, uid=0).posture.edr_running is False


def gnome(uid: int, lock: str, idle: str) -> RecordedRunner:
    return machine(
        processes={"1": "systemd", "2001": "gnome-shell"},
        files={"/proc/2001/status": f"Name:\tgnome-shell\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"},
        commands={LOCK: ok(lock), IDLE: ok(idle)},
    )


def test_screen_lock_read_from_the_users_gnome_session() -> None:
    assert collect(gnome(1000, "true\n", "uint32 300\n"), uid=1000).posture.screen_lock_enabled
    assert (
        collect(gnome(1000, "false\n", "uint32 300\n"), uid=1000).posture.screen_lock_enabled
        is False
    )
    never_idle = collect(gnome(1000, "true\n", "uint32 0\n"), uid=1000)
    assert never_idle.posture.screen_lock_enabled is False


def test_someone_elses_gnome_session_is_not_guessed() -> None:
    result = collect(gnome(1000, "true\n", "uint32 300\n"), uid=0)
    assert result.posture.screen_lock_enabled is None
    assert "another user" in result.notes["screen_lock_enabled"]


def test_gsettings_on_its_memory_backend_is_not_believed() -> None:
    runner = gnome(1000, "true\n", "uint32 300\n")
    runner.commands = {
        LOCK: ok("true\n", "GLib-GIO-Message: Using the 'memory' GSettings backend."),
        IDLE: ok("uint32 300\n"),
    }
    assert collect(runner, uid=1000).posture.screen_lock_enabled is None


def test_unknown_os_is_reported_as_unknown() -> None:
    runner = machine(files={"/etc/os-release": ""})
    posture = collect(runner).posture
    assert (posture.os_name, posture.os_version) == ("unknown", "unknown")
