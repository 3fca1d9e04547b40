"""`deskloop config get|set|path`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from deskloop.settings import get_setting, load_settings, paths, set_setting


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
    value = set_setting(args.key, args.value)
    print(f"{args.key} = {json.dumps(value)}  (in {paths().config_file})")
    return 0
