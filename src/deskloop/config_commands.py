"""`deskloop config get|set|unset|path`."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

from deskloop.settings import (
    default_setting,
    get_setting,
    load_settings,
    paths,
    set_setting,
    unset_setting,
)


def config_command(args: argparse.Namespace) -> int:
    if args.config_action == "path":
        where = paths()
        print(f"config file:  {where.config_file}")
        print(f"MCP servers:  {where.mcp_servers_file}")
        print(f"database:     {where.database}")
        print(f"session logs: {where.logs_dir}")
        return 0
    if args.config_action == "get":
        if args.key:
            print(json.dumps(get_setting(args.key)))
            return 0
        settings = load_settings()
        for section in settings.SECTIONS:
            for name, value in asdict(getattr(settings, section)).items():
                shown = "***" if name.endswith("api_key") and value else json.dumps(value)
                print(f"{section}.{name} = {shown}")
        return 0
    if args.config_action == "unset":
        default = json.dumps(default_setting(args.key))
        if unset_setting(args.key):
            print(f"{args.key} is back to its default, {default}  (removed from {paths().config_file})")
        else:
            print(f"{args.key} was not set in {paths().config_file}; it is {default} by default")
        env_name = "DESKLOOP_" + args.key.replace(".", "_").upper()
        if env_name in os.environ:
            print(f"note: {env_name} is set in the environment and still overrides it")
        return 0
    value = set_setting(args.key, args.value)
    print(f"{args.key} = {json.dumps(value)}  (in {paths().config_file})")
    return 0
