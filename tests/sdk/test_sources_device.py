"""serial:// and ble:// specs: the parameters parsed once, and the one-line errors a person meets."""

from __future__ import annotations

import errno
import os
import pty

import pytest
import serial

from emotionkd.firmware_bridge.source_spec import parse_source_url
from emotionkd.firmware_bridge.transports import explain_open_error


def test_source_parameters_are_typed_fields_of_the_spec() -> None:
    spec = parse_source_url("serial:///dev/ttyUSB0?protocol=auto&baud=9600&timeout=4&probe=1")
    assert (spec.target, spec.protocol, spec.baud, spec.timeout_s, spec.probe_s, spec.options) == (
        "/dev/ttyUSB0", "auto", 9600, 4.0, 1.0, {})
    spec = parse_source_url("ble://AA:BB:CC:DD:EE:FF?protocol=ekd")
    assert (spec.scheme, spec.target, spec.protocol, spec.mode, spec.timeout_s, spec.options) == (
        "ble", "AA:BB:CC:DD:EE:FF", "ekd", "gatt", 10.0, {})


def test_a_missing_port_says_so() -> None:
    with pytest.raises(serial.SerialException) as info:
        serial.Serial("/dev/ttyEKD-does-not-exist")
    line = explain_open_error(info.value, "/dev/ttyEKD-does-not-exist")
    assert line and "does not exist" in line and "emotionkd-sdk devices" in line


def test_a_busy_port_says_another_program_holds_it() -> None:
    controller, device = pty.openpty()
    path = os.ttyname(device)
    try:
        first = serial.Serial(path, exclusive=True)
        with pytest.raises(serial.SerialException) as info:
            serial.Serial(path, exclusive=True)
        first.close()
    finally:
        os.close(controller)
        os.close(device)
    line = explain_open_error(info.value, path)
    assert line and "busy" in line and "another program" in line


def test_permission_denied_names_the_group(tmp_path) -> None:
    fake = tmp_path / "ttyUSB0"
    fake.write_text("")
    exc = serial.SerialException(errno.EACCES, f"could not open port {fake}: [Errno 13] Permission denied")
    line = explain_open_error(exc, str(fake))
    assert line and "permission denied" in line and "usermod -aG" in line
    import grp

    assert grp.getgrgid(os.stat(fake).st_gid).gr_name in line
    assert explain_open_error(RuntimeError("something else"), "/dev/x") is None
