"""`mlp`: the offline plan of a stack, without a cloud, credentials or the Pulumi CLI.

  mlp plan STACK         resource tree by component, pools in effect, policy findings, monthly cost
  mlp check STACK        policy findings and cost only
  mlp diff A B           what differs between two stacks (or A --against GIT_REF: the same stack at a commit)
  mlp prices REGION...   record a region's on-demand prices from the AWS Price List API (needs credentials)
  mlp bench              time `mlp plan` against importing the SDK alone (benchmark, not a test)

plan and check exit 2 on a config error and 1 on a mandatory policy violation, so CI can gate on them;
diff exits 2 when a side cannot be planned and, with --exit-code, 1 when anything differs. --json prints
the documented schema (docs/ci.md) instead of text; --debug shows tracebacks.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from infra import offline
from infra.config import ConfigError, parse
from infra.config.stack_file import ROOT, read_stack_config
from infra.render import plan_json, render_cost, render_pools, render_tree, summary_table, summary_title, write_plan
from policies import runner
from policies.cost_model import estimate


def main(argv: list[str] | None = None) -> int:
    # `mlp plan dev | head` should end quietly, as other Unix tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = _parser().parse_args(argv)
    if args.command == "prices":
        from infra import prices  # boto3 is only needed here
        return prices.main(args.regions, args.out)
    if args.command == "bench":
        from infra import bench
        return bench.main(args.runs, args.extra_pools, args.models)
    if args.command == "diff":
        return _diff(args)
    return _plan(args)


def _diff(args: argparse.Namespace) -> int:
    from infra import diff

    try:
        root = args.cwd or project_root(Path.cwd())
        if bool(args.right) == bool(args.against):
            raise ConfigError("diff takes two stacks (mlp diff dev prod) or one and --against GIT_REF")
        left = diff.plan_at(args.against, args.left, root) if args.against else diff.plan(args.left, root)
        right = diff.plan(args.left if args.against else args.right, root)
        result = diff.compare(left, right)
    except (ConfigError, diff.PlanError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_json(), indent=1, sort_keys=True, default=str) if args.json
          else diff.render(result, tree=args.tree))
    return 1 if args.exit_code and not result.empty else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlp", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("plan", "what the stack creates, whether it passes policy, what it costs"),
                        ("check", "policy findings and the cost estimate only")):
        command = commands.add_parser(name, help=help_)
        command.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
        command.add_argument("-C", "--cwd", type=Path,
                             help="project directory: Pulumi.<stack>.yaml, the program, policies/config.<stack>.json "
                                  "(default: where Pulumi.yaml is, in this directory or a parent, as pulumi finds it)")
        command.add_argument("--policy-pack-config", type=Path,
                             help="pack config JSON (default: policies/config.<stack>.json)")
        command.add_argument("--json", action="store_true", help="print the plan as JSON (schema mlp.plan/v1)")
        command.add_argument("--debug", action="store_true", help="tracebacks instead of one-line errors")
        if name == "plan":
            command.add_argument("--out", type=Path, help="also write here <stack>.resources.json, a YAML file per "
                                 "Kubernetes object (<stack>.manifests/<component>/) and <stack>.graph.mmd")
            command.add_argument("--tree", action="store_true", help="every resource under its component, not "
                                 "the per-component summary")
            command.add_argument("--preview", action="store_true",
                                 help="also list the mandatory rules a first `pulumi preview` could not verify")
    compare = commands.add_parser("diff", help="what differs between two stacks, or a stack and a git ref")
    compare.add_argument("left", metavar="A", help="stack (the old side)")
    compare.add_argument("right", metavar="B", nargs="?", help="stack (the new side)")
    compare.add_argument("--against", metavar="GIT_REF", help="compare stack A at GIT_REF (old) with the checkout")
    compare.add_argument("-C", "--cwd", type=Path, help="project directory (default: as plan finds it)")
    compare.add_argument("--tree", action="store_true", help="every changed resource and property, not a summary")
    compare.add_argument("--json", action="store_true", help="print the diff as JSON (schema mlp.diff/v1)")
    compare.add_argument("--exit-code", action="store_true", help="exit 1 when anything differs")
    compare.add_argument("--debug", action="store_true", help="tracebacks instead of one-line errors")
    prices = commands.add_parser("prices", help="record regions' prices (AWS Price List API, needs credentials)")
    prices.add_argument("regions", nargs="+", metavar="REGION", help="e.g. eu-west-1")
    prices.add_argument("--out", type=Path, help="directory for <region>.json (default: catalog/price_records)")
    bench = commands.add_parser("bench", help="plan time per stack as a ratio to importing the SDK alone")
    bench.add_argument("--runs", type=int, default=5, help="paired runs per stack (median reported)")
    bench.add_argument("--extra-pools", type=int, default=150, help="pools added to prod for the generated stack")
    bench.add_argument("--models", type=int, default=100, help="served models added to prod for the models stack")
    return parser


def _plan(args: argparse.Namespace) -> int:
    # Almost everything a plan allocates lives until it ends, so frequent collections only re-walk
    # the thousands of SDK objects loaded at start: freeze those, and collect young objects rarely.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    try:
        return _planned(args)
    finally:
        gc.unfreeze()


def _planned(args: argparse.Namespace) -> int:
    try:
        root = args.cwd or project_root(Path.cwd())
        if _is_checkout(root) and root.resolve() != ROOT:
            return _in_checkout(root, args)
        raw = read_stack_config(args.stack, root)
        cfg = parse(raw, stack=args.stack)
        recording = offline.run(args.stack, root, raw)
    except ConfigError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = json.loads(args.policy_pack_config.read_text()) if args.policy_pack_config else runner.pack_config(
        args.stack, root / "policies")
    graphs = runner.build_graphs(recording)
    findings = runner.check(recording, config, graphs=graphs)
    failed = 1 if any(f.level == "mandatory" for f in findings) else 0
    if getattr(args, "json", False):
        print(json.dumps(plan_json(recording, cfg.region, findings, estimate(graphs.outputs.resources)),
                         sort_keys=True, default=str))
        return failed
    if args.command == "plan":
        if args.tree:
            print(render_tree(recording), end="\n\n")
        else:
            # Colour only on a terminal: rich checks.
            print(summary_title(recording))
            Console(highlight=False).print(summary_table(recording))
            print()
        print(f"region: {cfg.region}", end="\n\n")
        print(render_pools(cfg, f"Pulumi.{args.stack}.yaml"), end="\n\n")
        if args.out:
            print("wrote " + ", ".join(str(p) for p in write_plan(recording, args.out)), end="\n\n")
    print(runner.render(findings), end="\n\n")
    est = estimate(graphs.outputs.resources)  # what the budget rule sees
    print(render_cost(est))
    if getattr(args, "preview", False):
        first = offline.run(args.stack, root, raw, preview=True)
        print("", runner.render_degraded(runner.check(first, config)), sep="\n")
    mandatory = sum(1 for f in findings if f.level == "mandatory")
    print(f"\n{args.stack}: {sum(1 for r in recording.resources if r.custom)} resources, "
          + (f"{mandatory} mandatory policy violation(s): fails" if mandatory else "policy passes")
          + f", ${est.baseline:,.0f}-${est.ceiling:,.0f} a month")
    return failed


def project_root(start: Path) -> Path:
    """The directory holding Pulumi.yaml: `start` or its nearest parent, as the Pulumi CLI finds a project."""
    for directory in (start, *start.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    raise ConfigError(f"no Pulumi.yaml in {start} or any parent: run mlp inside a checkout, or pass -C DIR")


def _is_checkout(root: Path) -> bool:
    """A checkout of this project (its own program), not just a directory of stack files."""
    return (root / "infra" / "__main__.py").is_file() and (root / "infra" / "cli.py").is_file()


def _in_checkout(root: Path, args: argparse.Namespace) -> int:
    """Plan another checkout with its own code: a subprocess with that checkout first on the path."""
    argv = [args.command, args.stack, "--cwd", str(root)]  # --cwd: older checkouts know no -C
    if args.policy_pack_config:
        argv += ["--policy-pack-config", str(args.policy_pack_config.resolve())]
    if getattr(args, "out", None):
        argv += ["--out", str(args.out.resolve())]
    if getattr(args, "preview", False):
        argv += ["--preview"]
    if getattr(args, "json", False):
        argv += ["--json"]
    if getattr(args, "tree", False):
        argv += ["--tree"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    sys.stdout.flush()
    return subprocess.run([sys.executable, "-m", "infra.cli", *argv], cwd=root, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
