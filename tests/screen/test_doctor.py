"""The doctor's verdicts: exit code and data say whether the agent can see and act."""

from __future__ import annotations

from deskloop.screen.doctor import Check, DoctorReport


def report(*checks: Check) -> DoctorReport:
    return DoctorReport("linux", list(checks))


def test_all_ok_sees_and_acts() -> None:
    done = report(Check("session bus", "ok", "connected", needed_to="both"))
    assert (done.can_see, done.can_act, done.exit_code) == (True, True, 0)


def test_no_synthetic_input_still_sees_but_cannot_act() -> None:
    done = report(
        Check("registry", "ok", "answers", needed_to="both"),
        Check("synthetic input", "fail", "no XTest", "enable XTEST", "act"),
    )
    assert (done.can_see, done.can_act, done.exit_code) == (True, False, 2)
    assert "fix: enable XTEST" in done.render()


def test_warnings_do_not_fail_and_data_keeps_every_check() -> None:
    done = report(Check("accessibility enabled", "warn", "IsEnabled is false", "gsettings …"))
    assert done.exit_code == 0
    data = done.to_json()
    assert data["checks"][0] == {
        "name": "accessibility enabled", "status": "warn", "detail": "IsEnabled is false",
        "fix": "gsettings …", "needed_to": "see",
    }
