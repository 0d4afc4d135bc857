"""The `vipam migrate` command: read, convert, report, and write only what is safe to apply.

Exit status: 0 when the objects were written (nothing lost, or ``--allow-loss``); 1 when a
field would be lost and ``--allow-loss`` was not given (nothing is written, so a pipe into
``kubectl apply`` applies nothing); 2 when the input is unusable (unreadable, invalid, or
the output would not pass `vipam check`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

EXIT_OK, EXIT_LOSS, EXIT_INVALID = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "migrate", help="convert MetalLB / Cilium LB-IPAM objects to vipam objects",
        description="Convert MetalLB (metallb.io) and Cilium LB-IPAM (cilium.io) objects into "
                    "vipam IPPool, L2Advertisement, BGPPeer and BGPAdvertisement YAML. Every "
                    "field that cannot be carried is reported; the command fails unless "
                    "--allow-loss.",
    )
    parser.add_argument("files", nargs="*", help="YAML files (multi-document, Lists); - is stdin")
    parser.add_argument("--kubeconfig", help="read the objects (and Services) live from a cluster")
    parser.add_argument("--context", help="kubeconfig context (with --kubeconfig)")
    parser.add_argument("-o", "--output", help="write the YAML here instead of stdout")
    parser.add_argument("--allow-loss", action="store_true",
                        help="write the objects even though some fields cannot be carried")


def run(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
        stdin: TextIO | None = None) -> int:
    # loaded here, not with the parser: `vipam version` needs neither the converters nor the
    # kube client
    from ccm.migrate.convert import convert
    from ccm.migrate.source import SourceError, read_cluster, read_files

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    if bool(args.files) == bool(args.kubeconfig):
        print("vipam migrate: give YAML files (or -) or --kubeconfig, not both", file=stderr)
        return EXIT_INVALID
    try:
        if args.kubeconfig:
            objects = asyncio.run(read_cluster(args.kubeconfig, args.context))
        else:
            objects = read_files(args.files, stdin)
    except SourceError as exc:
        print(f"vipam migrate: {exc}", file=stderr)
        return EXIT_INVALID
    out = convert(objects, services_listed=bool(args.kubeconfig))
    report = out.report
    report.write(stderr)
    counts = ", ".join(
        f"{len(out.of_kind(kind))} {kind}" for kind in ("IPPool", "L2Advertisement", "BGPPeer",
                                                        "BGPAdvertisement")
    )
    if report.errors:
        print(f"vipam migrate: {len(report.errors)} error(s); nothing written", file=stderr)
        return EXIT_INVALID
    if not out.objects:
        print("vipam migrate: no MetalLB or Cilium LB-IPAM object found; nothing written",
              file=stderr)
        return EXIT_INVALID
    if report.losses and not args.allow_loss:
        print(f"vipam migrate: {len(report.losses)} field(s) cannot be carried (lost: above); "
              "nothing written. Fix the sources, or re-run with --allow-loss to write the rest",
              file=stderr)
        return EXIT_LOSS
    text = out.yaml()
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as exc:
            print(f"vipam migrate: cannot write {args.output}: {exc.strerror or exc}",
                  file=stderr)
            return EXIT_INVALID
    else:
        stdout.write(text)
    compat = ",".join(sorted(out.projects))
    print(f"vipam migrate: wrote {counts}{' to ' + args.output if args.output else ''}; "
          f"run the controller with --compat {compat}", file=stderr)
    return EXIT_OK
