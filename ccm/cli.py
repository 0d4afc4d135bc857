"""The `vipam` command line (DESIGN.md): controller, speaker, check, version.

The playground is development tooling (`devkit.playground`, `./scripts/playground`).

Every setting of a process is a flag here and an environment variable `VIPAM_<NAME>`; flags win.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from pydantic import BaseModel, ValidationError

from ccm import __version__
from ccm.migrate.command import add_parser as add_migrate_parser
from ccm.migrate.command import run as run_migrate


def _add_settings_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    for name, info in model.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = info.description or ""
        if info.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            parser.add_argument(flag, default=None, help=help_text)


def _settings_from(args: argparse.Namespace, model: type[BaseModel]) -> Any:
    given = {
        name: getattr(args, name)
        for name in model.model_fields
        if getattr(args, name, None) is not None
    }
    return model(**given)


def build_parser() -> argparse.ArgumentParser:
    from ccm.controller.settings import ControllerSettings
    from ccm.speaker.settings import SpeakerSettings

    parser = argparse.ArgumentParser(prog="vipam", description="LoadBalancer IPs without a cloud")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the version")
    controller = sub.add_parser("controller", help="run the controller (allocates addresses)")
    _add_settings_flags(controller, ControllerSettings)
    speaker = sub.add_parser("speaker", help="run the speaker (announces addresses; one per node)")
    _add_settings_flags(speaker, SpeakerSettings)
    check = sub.add_parser("check", help="validate IPPool and advertisement YAML offline")
    check.add_argument("files", nargs="+", help="YAML files (multi-document allowed)")
    add_migrate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "version":
        print(f"vipam {__version__}")
        return 0
    if args.command == "check":
        from ccm.check import check_files

        return check_files(args.files)
    if args.command == "migrate":
        return run_migrate(args)
    if args.command in ("controller", "speaker"):
        from ccm.controller.settings import ControllerSettings
        from ccm.speaker.settings import SpeakerSettings

        model: type[BaseModel] = (
            ControllerSettings if args.command == "controller" else SpeakerSettings
        )
        try:
            settings = _settings_from(args, model)
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"])
                print(f"vipam {args.command}: --{where.replace('_', '-')}: {error['msg']}",
                      file=sys.stderr)
            return 2
        return asyncio.run(_run_process(args.command, settings))
    parser.error(f"unknown command {args.command}")
    return 2


async def _run_process(kind: str, settings: Any) -> int:
    """Run a controller or a speaker until SIGINT/SIGTERM, then stop it cleanly."""
    from ccm.health.server import HealthServer
    from ccm.logs import setup_logging

    setup_logging(settings.log_format, settings.log_level)
    controller: Any
    if kind == "controller":
        from ccm.controller.manager import Controller

        controller = Controller(settings)
    else:
        from ccm.speaker.process import Speaker

        controller = Speaker(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    health = HealthServer(controller, settings.health_host, int(settings.health_port))
    await health.start()
    print(f"vipam {kind}: health on {health.url}", file=sys.stderr, flush=True)
    try:
        starting = asyncio.create_task(controller.start())
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            starting.result()
            await stop.wait()
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
    finally:
        await controller.stop()
        await health.stop()
    return 0
