"""Parsing of `--fault` specs (design.md's fault table)."""

from __future__ import annotations

import pytest

from simulator.faults import FaultAnchor, FaultKind, FaultSpec


@pytest.mark.parametrize(
    ("text", "kind", "at_s", "argument"),
    [
        ("safety-key@12", FaultKind.SAFETY_KEY, 12.0, None),
        ("user-stop@0", FaultKind.USER_STOP, 0.0, None),
        ("user-pause@7.5", FaultKind.USER_PAUSE, 7.5, None),
        ("control-lost@3", FaultKind.CONTROL_LOST, 3.0, None),
        ("reset@4", FaultKind.RESET, 4.0, None),
        ("disconnect@5", FaultKind.DISCONNECT, 5.0, None),
        ("silence@30:5", FaultKind.SILENCE, 30.0, 5.0),
        ("console-speed@10:2.5", FaultKind.CONSOLE_SPEED, 10.0, 2.5),
        ("console-incline@10:-1", FaultKind.CONSOLE_INCLINE, 10.0, -1.0),
        ("overspeed@8:7.2", FaultKind.OVERSPEED, 8.0, 7.2),
        ("ignore-stop@1", FaultKind.IGNORE_STOP, 1.0, None),
        ("zero-blip@1", FaultKind.ZERO_BLIP, 1.0, None),
        ("cp-timeout@2", FaultKind.CP_TIMEOUT, 2.0, None),
        ("cp-error@3:4", FaultKind.CP_ERROR, 3.0, 4.0),
        ("cp-error@3:0x05", FaultKind.CP_ERROR, 3.0, 5.0),
        ("cp-error@3:operation_failed", FaultKind.CP_ERROR, 3.0, 4.0),
        ("cp-error@3:0x7f", FaultKind.CP_ERROR, 3.0, 127.0),
        ("garbage@9", FaultKind.GARBAGE, 9.0, None),
        ("incline-drift@20:5.4", FaultKind.INCLINE_DRIFT, 20.0, 5.4),
        ("run-away@30:3.9", FaultKind.RUN_AWAY, 30.0, 3.9),
        ("  Safety-Key@12 ", FaultKind.SAFETY_KEY, 12.0, None),
    ],
)
def test_every_fault_kind_parses(text: str, kind: FaultKind, at_s: float, argument: float | None) -> None:
    spec = FaultSpec.parse(text)
    assert (spec.kind, spec.at_s, spec.argument) == (kind, at_s, argument)
    assert FaultSpec.parse(str(spec)) == spec


def test_every_kind_of_design_md_is_known() -> None:
    assert {k.value for k in FaultKind} == {
        "safety-key",
        "user-stop",
        "user-pause",
        "control-lost",
        "reset",
        "disconnect",
        "silence",
        "console-speed",
        "console-incline",
        "overspeed",
        "ignore-stop",
        "zero-blip",
        "cp-timeout",
        "cp-error",
        "garbage",
        "preroll",  # not in design.md: issue 16 v4, a belt already running when the client connects
        "incline-drift",
        "run-away",
    }


RC = FaultAnchor.REQUEST_CONTROL


@pytest.mark.parametrize(
    ("text", "kind", "argument", "anchor", "shown"),
    [
        ("preroll@2.0", FaultKind.PREROLL, 2.0, FaultAnchor.POWER_ON, "preroll@2"),
        ("safety-key@request-control", FaultKind.SAFETY_KEY, None, FaultAnchor.REQUEST_CONTROL, None),
        ("Reset@Request-Control", FaultKind.RESET, None, RC, "reset@request-control"),
        ("cp-error@request-control:4", FaultKind.CP_ERROR, 4.0, FaultAnchor.REQUEST_CONTROL, None),
        ("silence@3:5", FaultKind.SILENCE, 5.0, FaultAnchor.FIRST_START, None),
    ],
)
def test_faults_before_the_first_start_have_their_anchor(
    text: str, kind: FaultKind, argument: float | None, anchor: FaultAnchor, shown: str | None
) -> None:
    spec = FaultSpec.parse(text)
    assert (spec.kind, spec.argument, spec.anchor) == (kind, argument, anchor)
    assert FaultSpec.parse(str(spec)) == spec
    if shown is not None:
        assert str(spec) == shown


def test_cp_error_code_property() -> None:
    assert FaultSpec.parse("cp-error@1:0x03").code == 3
    assert str(FaultSpec.parse("cp-error@1:3")) == "cp-error@1:0x03"
    with pytest.raises(AttributeError):
        _ = FaultSpec.parse("reset@1").code


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("safety-key", "expected KIND@T"),
        ("", "expected KIND@T"),
        ("explode@3", "unknown fault kind 'explode'"),
        ("safety-key@", "T .* must be a number"),
        ("safety-key@soon", "T .* must be a number"),
        ("safety-key@nan", "T .* must be a number"),
        ("safety-key@-1", "T must be between 0"),
        ("safety-key@1e9", "T must be between 0"),
        ("safety-key@3:1", "safety-key takes no argument"),
        ("disconnect@3:", "disconnect takes no argument"),
        ("silence@30", "silence needs an argument: silence@T:SECONDS"),
        ("silence@30:", "silence needs an argument"),
        ("silence@30:0", "SECONDS must be positive"),
        ("silence@30:lots", "SECONDS must be a number"),
        ("console-speed@3", "console-speed needs an argument: console-speed@T:KMH"),
        ("console-speed@3:0", "KMH must be in"),
        ("overspeed@3:-2", "KMH must be in"),
        ("overspeed@3:100", "KMH must be in"),
        ("console-incline@3:99", "PCT must be in"),
        ("incline-drift@3", "incline-drift needs an argument: incline-drift@T:PCT"),
        ("incline-drift@3:99", "PCT must be in"),
        ("run-away@3", "run-away needs an argument: run-away@T:KMH"),
        ("run-away@3:0", "KMH must be in"),
        ("cp-error@3", "cp-error needs an argument: cp-error@T:CODE"),
        ("cp-error@3:1", "CODE 1 is Success"),
        ("cp-error@3:0x100", "CODE must be 0-255"),
        ("cp-error@3:nope", "CODE must be a result code"),
        ("preroll@0", "KMH must be in"),
        ("preroll@41", "KMH must be in"),
        ("preroll@fast", "KMH .* must be a number"),
        ("preroll@1:2", "KMH .* must be a number"),
        ("safety-key@request", "T .* must be a number"),
        ("safety-key@request-control:1", "safety-key takes no argument"),
    ],
)
def test_bad_specs_name_the_spec_and_the_rule(text: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule) as caught:
        FaultSpec.parse(text)
    assert f"fault spec {text!r}" in str(caught.value)
