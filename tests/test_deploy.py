"""The systemd units in deploy/: systemd-analyze accepts them, and they say what we promise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parent.parent / "deploy"
SERVICES = ("digest.service", "digest-once.service", "digest-web.service", "digest-backup.service")
UNITS = (*SERVICES, "digest-once.timer", "digest-backup.timer")
EXECUTABLE = "/opt/digest/venv/bin/digest"  # the example path the units ship with
# [Service] keys that legitimately differ between the three services; all others must agree.
PER_UNIT = {
    "Type",
    "NotifyAccess",
    "ExecStart",
    "WatchdogSec",
    "Restart",
    "RestartSec",
    "RestartPreventExitStatus",
    "TimeoutStartSec",
    "TimeoutStopSec",
}

Unit = dict[str, dict[str, list[str]]]


def parse(name: str) -> Unit:
    """Return {section: {key: [values...]}}; keys may repeat (SystemCallFilter=, resets)."""
    unit: Unit = {}
    section: dict[str, list[str]] = {}
    for raw in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{name}: keep one setting per line: {line}"
        if line.startswith("["):
            section = unit.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{name}: not a KEY=value line: {line}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def get(unit: Unit, section: str, key: str) -> str | None:
    """Return the effective (last) value of a key, or None when absent."""
    values = unit.get(section, {}).get(key)
    return values[-1] if values else None


# -- systemd-analyze verify ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    """Return the systemd-analyze command; fail (never skip) without it: CI must check units."""
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail(
            "systemd-analyze not found: install systemd (e.g. apt-get install systemd) "
            "to verify the units in deploy/"
        )
    return path


def stage(tmp_path: Path, change: tuple[str, str] | None = None) -> list[Path]:
    """Copy the units into tmp_path, pointing ExecStart at a stub; return the copies.

    `systemd-analyze verify` fails when an ExecStart binary does not exist, and
    /opt/digest/venv is only an example install path, so each copy runs tmp_path/digest
    instead. change=(old, new) also rewrites a line, to break a unit on purpose.
    """
    stub = tmp_path / "digest"
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    copies = []
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        if name.endswith(".service"):
            assert EXECUTABLE in text, f"{name}: ExecStart should use {EXECUTABLE}"
            text = text.replace(EXECUTABLE, str(stub))
        if change and change[0] in text:
            text = text.replace(*change)
        (tmp_path / name).write_text(text, encoding="utf-8")
        copies.append(tmp_path / name)
    return copies


def verify(command: str, units: list[Path]) -> tuple[int, list[str]]:
    """Run systemd-analyze verify; return its exit code and the stderr lines about our units.

    No running systemd is needed. --recursive-errors=no (systemd >= 250) turns syntax
    warnings in the given units into a failing exit code while ignoring the host's own
    units; older versions only print the warnings, hence the stderr lines too. Warnings
    are only counted when logged, so the log level is pinned to "warning" (not "err"), on
    the console even when the tests run under journald.
    """
    options = ["--man=no"]
    help_text = subprocess.run([command, "--help"], capture_output=True, text=True).stdout
    if "--recursive-errors" in help_text:
        options.append("--recursive-errors=no")
    env = {
        "PATH": "/usr/bin:/bin",
        "SYSTEMD_LOG_LEVEL": "warning",
        "SYSTEMD_LOG_TARGET": "console",
        "SYSTEMD_LOG_COLOR": "0",
    }
    result = subprocess.run(
        [command, "verify", *options, *map(str, units)],
        capture_output=True,
        text=True,
        env=env,
        cwd=units[0].parent,
        timeout=60,
    )
    ours = [line for line in result.stderr.splitlines() if any(u.name in line for u in units)]
    return result.returncode, ours


def test_systemd_analyze_accepts_the_units(systemd_analyze: str, tmp_path: Path) -> None:
    code, complaints = verify(systemd_analyze, stage(tmp_path))
    assert complaints == []
    assert code == 0


def test_systemd_analyze_rejects_a_broken_unit(systemd_analyze: str, tmp_path: Path) -> None:
    """Proves the test above can fail: a misspelt Type= is only a warning to systemd."""
    code, complaints = verify(systemd_analyze, stage(tmp_path, ("Type=notify", "Type=notfy")))
    assert code != 0 or complaints
    assert any("notfy" in line for line in complaints)


# -- what the units promise ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digest.service", "digest-web.service"])
def test_long_running_units_notify_and_restart(name: str) -> None:
    unit = parse(name)
    assert get(unit, "Service", "Type") == "notify"
    assert get(unit, "Service", "NotifyAccess") == "main"
    assert get(unit, "Service", "WatchdogSec") == "60"
    assert get(unit, "Service", "Restart") == "on-failure"
    assert get(unit, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("name", SERVICES)
def test_services_are_unprivileged_and_hardened(name: str) -> None:
    unit = parse(name)
    user = get(unit, "Service", "User")
    assert get(unit, "Service", "DynamicUser") == "yes" or user not in (None, "root", "0")
    assert get(unit, "Service", "StateDirectory") == "digest"
    assert get(unit, "Service", "WorkingDirectory") == "/var/lib/digest"
    assert get(unit, "Service", "Environment") == "DIGEST_CONFIG=/etc/digest/settings.toml"
    assert get(unit, "Service", "EnvironmentFile") == "-/etc/digest/secrets.env"
    assert get(unit, "Service", "NoNewPrivileges") == "yes"
    assert get(unit, "Service", "ProtectSystem") == "strict"
    assert get(unit, "Service", "ProtectHome") == "yes"
    assert get(unit, "Service", "PrivateTmp") == "yes"
    assert get(unit, "Service", "CapabilityBoundingSet") == ""


def test_services_share_user_environment_and_hardening() -> None:
    def common(name: str) -> dict[str, list[str]]:
        service = parse(name)["Service"]
        return {key: values for key, values in service.items() if key not in PER_UNIT}

    reference = common("digest.service")
    for name in SERVICES[1:]:
        assert common(name) == reference, f"{name} differs from digest.service"


def test_each_service_runs_its_command() -> None:
    commands = {name: get(parse(name), "Service", "ExecStart") for name in SERVICES}
    assert commands == {
        "digest.service": f"{EXECUTABLE} run",
        "digest-once.service": f"{EXECUTABLE} once",
        "digest-web.service": f"{EXECUTABLE} serve",
        "digest-backup.service": f"{EXECUTABLE} backup --keep 14 /var/lib/digest/backups",
    }


def test_once_is_a_oneshot_without_watchdog() -> None:
    unit = parse("digest-once.service")
    assert get(unit, "Service", "Type") == "oneshot"
    assert get(unit, "Service", "WatchdogSec") is None
    assert get(unit, "Service", "Restart") is None
    assert get(unit, "Service", "SuccessExitStatus") is None  # a partial cycle shows as failed


def test_timer_starts_the_once_service_daily() -> None:
    timer = parse("digest-once.timer")
    assert get(timer, "Timer", "Unit") in (None, "digest-once.service")
    assert (get(timer, "Timer", "OnCalendar") or "").startswith("*-*-* 07:00:00")
    assert get(timer, "Timer", "Persistent") == "true"
    assert get(timer, "Install", "WantedBy") == "timers.target"


def test_stop_timeout_outlasts_an_smtp_send() -> None:
    """SIGTERM lets the in-flight message finish; an SMTP send may take 30 s."""
    for name in ("digest.service", "digest-once.service"):
        assert int(get(parse(name), "Service", "TimeoutStopSec") or 0) > 30


def test_backup_is_a_oneshot_started_nightly_off_send_at() -> None:
    unit = parse("digest-backup.service")
    assert get(unit, "Service", "Type") == "oneshot"
    assert get(unit, "Service", "Restart") is None and get(unit, "Install", "WantedBy") is None
    timer = parse("digest-backup.timer")
    assert get(timer, "Timer", "Unit") in (None, "digest-backup.service")
    assert (get(timer, "Timer", "OnCalendar") or "").startswith("*-*-* 03:30:00")
    assert get(timer, "Timer", "Persistent") == "true"
    assert get(timer, "Install", "WantedBy") == "timers.target"
    # the backups stay where the service may write: under its StateDirectory
    assert (get(unit, "Service", "ExecStart") or "").endswith(" /var/lib/digest/backups")
