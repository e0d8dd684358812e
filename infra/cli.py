"""`mlp`: the offline plan of a stack, without a cloud, credentials or the Pulumi CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra import offline
from infra.config import ConfigError
from infra.plan import render_tree, write_record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="run the program for STACK under the mock engine and show what it creates")
    plan.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    plan.add_argument("--out", type=Path, help="also write <stack>.resources.json here")
    plan.add_argument("--cwd", type=Path, default=offline.ROOT,
                      help="project directory holding Pulumi.<stack>.yaml (default: this project)")
    args = parser.parse_args(argv)

    try:
        recording = offline.run(args.stack, args.cwd)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_tree(recording))
    if args.out:
        print(f"\nwrote {write_record(recording, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
