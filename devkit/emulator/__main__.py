"""`python -m devkit.emulator`: serve the emulator until SIGINT/SIGTERM (used by the playground)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from devkit.emulator.emulator import Emulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devkit.emulator",
                                     description="Kubernetes API emulator on 127.0.0.1")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for this server here")
    parser.add_argument("--crd", type=Path, action="extend", nargs="+", default=[],
                        help="CRD YAML files or directories to apply at start (repeatable)")
    parser.add_argument("--history-size", type=int, default=10_000)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


async def serve(args: argparse.Namespace) -> None:
    emulator = Emulator(args.host, args.port, history_size=args.history_size,
                        crd_paths=args.crd)
    await emulator.start()
    if args.kubeconfig:
        emulator.write_kubeconfig(args.kubeconfig)
    print(emulator.url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.crd if not path.exists()]
    if missing:
        parser.error(f"--crd: no such file or directory: {', '.join(missing)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
