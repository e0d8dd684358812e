"""The policy pack as `pulumi policy publish` uploads it: one directory that boots on its own.

A published pack is only its directory: the enforcing machine installs its
requirements.txt into a fresh virtualenv and runs `__main__.py`. So
`build` lays out dist/policy-pack/ with the pack's modules, the facts layer
they import (catalog/, price records included), requirements.txt pinned from
constraints.txt, and a PulumiPolicy.yaml whose virtualenv lies inside the
pack. `check` copies that directory alone elsewhere, installs it into a new
virtualenv from the package index, starts it as the CLI does and asks it,
over gRPC, for its rules.

  python -m infra.policy_pack build [DIR]    (make policy-pack)
  python -m infra.policy_pack check [DIR]    (make pack-check; needs the package index)
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.config.stack_file import ROOT

DIST = ROOT / "dist" / "policy-pack"
# What the pack's modules import from PyPI: the SDK (pulumi_policy) and pydantic (catalog's pool spec).
TOP_LEVEL = ("pulumi-policy", "pydantic")
PACKAGES = {"policies": ("*.py",), "catalog": ("*.py", "price_records/*.json")}
POLICY_YAML = """\
description: ml-platform security and cost rules (AWS, Kubernetes, cost budget) for EKS ML platforms
runtime:
  name: python
  options:
    # Inside the pack: the machine that enforces it creates this from requirements.txt.
    virtualenv: venv
"""


# A new virtualenv brings these; pip freeze (and so constraints.txt) leaves them out.
VENV_PROVIDED = {"pip", "setuptools", "wheel"}


def _name(requirement: str) -> str:
    return canonicalize_name(Requirement(requirement).name)


def requirements() -> list[str]:
    """TOP_LEVEL and everything they need here, at the versions of constraints.txt (as CI tests them)."""
    pins = {_name(line.strip()): line.strip() for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    wanted: dict[str, str] = {}
    queue = list(TOP_LEVEL)
    while queue:
        requirement = Requirement(queue.pop())
        name = canonicalize_name(requirement.name)
        if name in wanted or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        wanted[name] = pins.get(name) or (str(requirement) if name in VENV_PROVIDED else "")
        queue += importlib.metadata.requires(name) or []
    missing = sorted(name for name, pin in wanted.items() if not pin)
    if missing:
        raise SystemExit(f"policy-pack: constraints.txt pins no version of {', '.join(missing)}; run make lock")
    return sorted(wanted.values(), key=str.lower)


def build(out: Path = DIST) -> Path:
    if out.exists():
        shutil.rmtree(out)
    for package, patterns in PACKAGES.items():
        for pattern in patterns:
            for source in sorted((ROOT / package).glob(pattern)):
                if package == "policies" and source.name == "__main__.py":
                    continue
                target = out / package / source.relative_to(ROOT / package)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    shutil.copy2(ROOT / "policies" / "__main__.py", out / "__main__.py")
    (out / "PulumiPolicy.yaml").write_text(POLICY_YAML)
    (out / "requirements.txt").write_text(
        "# The pack's own dependencies, pinned from the repository's constraints.txt (make policy-pack).\n"
        + "\n".join(requirements()) + "\n")
    return out


def served_rules(pack: Path, python: Path, timeout: float = 60) -> list[str]:
    """Start the pack as the Pulumi CLI does (`python __main__.py` in its directory) and list its rules."""
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2_grpc

    process = subprocess.Popen([str(python), "__main__.py"], cwd=pack, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        port = process.stdout.readline().strip()
        if not port.isdigit():
            raise SystemExit(f"pack-check: the pack did not start: {process.stderr.read() if process.poll() else port}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=timeout)
        return [policy.name for policy in info.policies]
    finally:
        process.kill()
        process.wait()


def check(built: Path = DIST) -> int:
    """The built pack alone, in a new virtualenv, serves every rule of the roster."""
    from policies.pack import RULES

    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "policy-pack"
        shutil.copytree(built, pack)
        venv.create(pack / "venv", with_pip=True)
        python = pack / "venv" / "bin" / "python"
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                        "requirements.txt"], cwd=pack, check=True)
        served = served_rules(pack, python)
    expected = [rule.name for rule in RULES]
    if served != expected:
        print(f"pack-check: the pack serves {len(served)} rules, the roster has {len(expected)}: "
              f"missing {sorted(set(expected) - set(served))}, extra {sorted(set(served) - set(expected))}",
              file=sys.stderr)
        return 1
    print(f"pack-check: {built} installed alone and served all {len(served)} rules over gRPC")
    return 0


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["build"]
    where = Path(rest[0]) if rest else DIST
    if command == "build":
        print(f"wrote {build(where)}")
    elif command == "check":
        sys.exit(check(where))
    else:
        raise SystemExit(__doc__)
