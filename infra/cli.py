"""`mlp`: the offline plan of a stack, without a cloud, credentials or the Pulumi CLI.

  mlp plan STACK   resource tree by component, policy findings, monthly cost estimate
  mlp check STACK  policy findings and cost only

Both exit 2 on a config error and 1 on a mandatory policy violation, so CI can gate on them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from infra import offline
from infra.config import ConfigError
from infra.config.stack_file import ROOT
from infra.render import render_cost, render_tree, write_record
from policies import runner


def main(argv: list[str] | None = None) -> int:
    # `mlp plan dev | head` should end quietly, as other Unix tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = argparse.ArgumentParser(prog="mlp", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("plan", "what the stack creates, whether it passes policy, what it costs"),
                        ("check", "policy findings and the cost estimate only")):
        command = commands.add_parser(name, help=help_)
        command.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
        command.add_argument("--cwd", type=Path, default=ROOT,
                             help="project directory holding Pulumi.<stack>.yaml (default: this project)")
        command.add_argument("--policy-pack-config", type=Path,
                             help="pack config JSON (default: policies/config.<stack>.json)")
        if name == "plan":
            command.add_argument("--out", type=Path, help="also write <stack>.resources.json here")
    args = parser.parse_args(argv)

    try:
        recording = offline.run(args.stack, args.cwd)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = json.loads(args.policy_pack_config.read_text()) if args.policy_pack_config else None
    findings = runner.check(recording, config)
    if args.command == "plan":
        print(render_tree(recording), end="\n\n")
        if args.out:
            print(f"wrote {write_record(recording, args.out)}", end="\n\n")
    print(runner.render(findings), end="\n\n")
    print(render_cost(recording))
    return 1 if any(f.level == "mandatory" for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
