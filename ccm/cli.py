"""The `vipam` command line: one sub-command per process kind (see DESIGN.md)."""

from __future__ import annotations

import argparse
import sys

from ccm import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vipam", description="LoadBalancer IPs without a cloud")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(f"vipam {__version__}")
        return 0
    print(f"vipam: unknown command {args.command}", file=sys.stderr)
    return 2
