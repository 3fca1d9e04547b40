"""`check_permission_status` and `request_permission`: can the agent see and act on the screen?

Both run `deskloop doctor`'s probe (screen/doctor.py) and answer with its report, so the
person and the agent read the same checks and the same fixes.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from deskloop.screen.doctor import DoctorReport, run_doctor
from deskloop.screen.errors import ScreenError
from deskloop.tools.contract import (
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFamily,
    ToolInput,
    ToolOutput,
)

ROUTING = (
    "A screen tool fails for lack of access: check_permission_status, then request_permission."
)

# System Settings > Privacy & Security, by pane (Apple's x-apple.systempreferences URLs).
MACOS_PANES = {
    "accessibility": "x-apple.systempreferences:com.apple.preference.security?Privacy_Accessibility",
    "screen_recording": "x-apple.systempreferences:com.apple.preference.security?Privacy_ScreenCapture",
}

REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"permission": {"enum": list(MACOS_PANES)}},
    "additionalProperties": False,
}


def _summary(report: DoctorReport) -> str:
    return report.render()


async def check_permission_status(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    return _summary(await run_doctor())


async def _open_macos_pane(permission: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "open", MACOS_PANES[permission], stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        return f"could not open System Settings ({err.decode(errors='replace').strip()})"
    return (
        f"opened System Settings > Privacy & Security > {permission.replace('_', ' ').title()}; "
        "the user must switch on the app deskloop runs in (e.g. Terminal), then quit and "
        "reopen it if the probe still fails"
    )


async def _enable_linux_accessibility() -> str:
    from deskloop.screen.backends.atspi.connection import connect_session_bus
    from deskloop.screen.backends.atspi.toolkits import accessibility_enabled, enable_accessibility

    try:
        session = await connect_session_bus()
    except ScreenError as exc:
        return f"could not reach the session bus: {exc}"
    try:
        if await accessibility_enabled(session):
            return "accessibility is already announced (IsEnabled is true)"
        await enable_accessibility(session)
        return "set org.a11y.Status.IsEnabled to true: Qt and Chromium apps started from now on join the tree"
    except Exception as exc:  # a D-Bus refusal is reported to the model, not raised
        return f"could not set IsEnabled: {exc}"
    finally:
        session.disconnect()


async def request_permission(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    permission = str(tool_input.get("permission", "accessibility"))
    if sys.platform == "darwin":
        done = await _open_macos_pane(permission)
    elif sys.platform.startswith("linux"):
        done = await _enable_linux_accessibility()
    else:
        done = f"{sys.platform} has no screen backend yet"
    report = await run_doctor()
    fixes = [
        f"- {check.name}: {check.fix}"
        for check in report.checks
        if check.status != "ok" and check.fix
    ]
    lines = [done, "probed again:", _summary(report)]
    if fixes:
        lines.append("what the user must still do:\n" + "\n".join(fixes))
    return "\n".join(lines)


def build_permission_tools(context: ToolContext) -> list[Tool]:
    empty = {"type": "object", "properties": {}}
    return [
        Tool(
            "check_permission_status",
            "Check screen access permissions, with fixes.",
            empty,
            "read",
            TimeoutTier.INTERNAL,
            check_permission_status,
        ),
        Tool(
            "request_permission",
            "Ask the OS for screen access, then recheck.",
            REQUEST_SCHEMA,
            "act",
            TimeoutTier.OTHER,
            request_permission,
        ),
    ]


PERMISSIONS_FAMILY = ToolFamily("permissions", ROUTING, build_permission_tools)
