"""`mlp bench`: how much `mlp plan` costs beyond loading the SDK it needs (a benchmark, not a test).

For dev, prod and a generated stack (prod plus N extra Karpenter pools, about
450 resources at N=150) it times `mlp plan` as a whole process against a floor
process that only imports the same third-party modules (the SDK and the
provider modules the plan touches), in pairs, A B A B ..., and reports the
median of the per-pair ratios of CPU time (user + system; wall time beside it)
and the peak memory of each. The work one more resource costs is counted
twice, in Python calls (a number the machine's load cannot move), from prod to
prod + N/2 pools and from there to prod + N: it must stay flat (the second
within +-25 % of the first); CPU ms per added resource are printed beside it.
Targets (DESIGN.md): <= 1.2x for dev and prod, <= 1.5x for the generated
stack. Exits 1 when a target is missed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from infra.config.stack_file import ROOT, read_stack_config

PROJECT_PACKAGES = ("catalog", "components", "infra", "policies")
TARGETS = {"dev": 1.2, "prod": 1.2, "generated": 1.5, "models": 1.5}
FLAT = 0.25  # the marginal cost per resource may change by this much from the first N/2 pools to the next

# Run once untimed: which third-party modules the plan loads (the floor imports them), how many
# resources it records, and how many Python calls it makes (a count the machine's load cannot move).
_PROBE = """
import contextlib, cProfile, io, json, pstats, sys
from pathlib import Path
from infra.cli import main
from infra import offline
profile = cProfile.Profile()
with contextlib.redirect_stdout(io.StringIO()):
    profile.runcall(main, ["plan", *sys.argv[1:]])
calls = pstats.Stats(profile).total_calls
resources = len(offline.run(sys.argv[1], Path(sys.argv[3])).resources)
modules = sorted(m for m in sys.modules if m.split(".")[0] not in {packages} and not m.startswith("_")
                 and "." not in m.split(".")[0] and m != "__main__")
print(json.dumps({{"resources": resources, "calls": calls, "modules": modules}}))
"""


@dataclass(frozen=True)
class Case:
    name: str
    stack: str
    root: Path
    pack_config: Path | None = None  # default: policies/config.<stack>.json


def generated_stack(directory: Path, extra_pools: int, name: str = "generated") -> Case:
    """prod plus `extra_pools` small CPU Karpenter pools, checked with prod's pack config (within its caps)."""
    config = read_stack_config("prod", ROOT)
    pools = config["ml-platform:nodePools"]
    for i in range(extra_pools):
        pools[f"extra-{i:03d}"] = {"role": "cpu", "provisioner": "karpenter", "instanceTypes": ["c6i.xlarge"],
                                   "maxSize": 2}
    (directory / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return Case(name, name, directory, ROOT / "policies" / "config.prod.json")


def models_stack(directory: Path, models: int, name: str) -> Case:
    """prod plus `models` small served models on a pool of their own, under prod's pack config with caps raised
    for that pool (the benchmark times planning, not whether such a stack is wise)."""
    config = read_stack_config("prod", ROOT)
    config["ml-platform:nodePools"]["bench"] = {"role": "inference", "provisioner": "karpenter",
                                                "instanceTypes": ["g5.xlarge"], "maxSize": 2 * models}
    served = config["ml-platform:serving"]["models"]
    for i in range(models):
        served[f"bench-{i:03d}"] = {"model": "Qwen/Qwen2.5-0.5B-Instruct", "pool": "bench", "cpu": "1",
                                    "memory": "4Gi", "replicas": {"min": 1, "max": 1}}
    (directory / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    pack = json.loads((ROOT / "policies" / "config.prod.json").read_text())
    pack["cost-max-gpus"]["maxGpus"] += 2 * models
    pack["cost-max-pool-size"]["maxNodes"] = max(pack["cost-max-pool-size"]["maxNodes"], 2 * models)
    pack["cost-monthly-budget"]["monthlyBudgetUsd"] *= 10
    (directory / f"config.{name}.json").write_text(json.dumps(pack))
    return Case(name, name, directory, directory / f"config.{name}.json")


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system: what the process itself spent, less exposed to a busy machine
    peak_mib: float


def _timed(command: list[str], quiet: bool = False) -> Run:
    """One whole process (`quiet`: its stderr too is dropped)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if quiet else None,
                               cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(command)} exited {os.waitstatus_to_exitcode(status)}")
    return Run(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def measure(case: Case, runs: int) -> dict:
    args = [case.stack, "--cwd", str(case.root)]
    if case.pack_config:
        args += ["--policy-pack-config", str(case.pack_config)]
    probe = subprocess.run([sys.executable, "-c", _PROBE.format(packages=set(PROJECT_PACKAGES)), *args],
                           capture_output=True, text=True, check=True, cwd=ROOT)
    seen = json.loads(probe.stdout)
    plan = [sys.executable, "-m", "infra.cli", "plan", *args]
    floor = [sys.executable, "-c", "import " + ", ".join(seen["modules"])]
    # The floor leaves the event loop the SDK opens at import to interpreter teardown, which complains
    # on stderr; its exit status is still checked.
    _timed(plan), _timed(floor, quiet=True)  # warm the page cache
    pairs = [(_timed(plan), _timed(floor, quiet=True)) for _ in range(runs)]
    median = statistics.median
    return {"case": case.name, "resources": seen["resources"], "calls": seen["calls"],
            "ratio": median(a.cpu_s / b.cpu_s for a, b in pairs),
            "wall_ratio": median(a.wall_s / b.wall_s for a, b in pairs),
            "plan_s": median(a.cpu_s for a, _ in pairs), "floor_s": median(b.cpu_s for _, b in pairs),
            # Above-floor seconds per pair: the floor run beside it cancels most of the machine's drift.
            "above_s": median(a.cpu_s - b.cpu_s for a, b in pairs),
            "plan_mib": max(a.peak_mib for a, _ in pairs), "floor_mib": max(b.peak_mib for _, b in pairs)}


def main(runs: int, extra_pools: int, models: int = 100) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cases = [Case("dev", "dev", ROOT), Case("prod", "prod", ROOT),
                 generated_stack(Path(tmp), extra_pools // 2, "half"), generated_stack(Path(tmp), extra_pools),
                 models_stack(Path(tmp), models // 2, "models-half"), models_stack(Path(tmp), models, "models")]
        results = {case.name: measure(case, runs) for case in cases}
    print(f"mlp plan vs importing its SDK modules alone: medians of {runs} paired runs; "
          f"generated = prod + {extra_pools} pools, half = prod + {extra_pools // 2}; "
          f"models = prod + {models} served models, models-half = prod + {models // 2}")
    print("CPU seconds (user + system) of each whole process; wall ratio for reference")
    print(f"{'stack':<10} {'resources':>9} {'plan s':>7} {'floor s':>7} {'ratio':>6} {'target':>6} "
          f"{'wall':>6} {'plan MiB':>8} {'floor MiB':>9}")
    missed = []
    for r in results.values():
        target = TARGETS.get(r["case"])
        print(f"{r['case']:<10} {r['resources']:>9} {r['plan_s']:>7.2f} {r['floor_s']:>7.2f} {r['ratio']:>6.2f} "
              f"{target or '':>6} {r['wall_ratio']:>6.2f} {r['plan_mib']:>8.0f} {r['floor_mib']:>9.0f}")
        if target and r["ratio"] > target:
            missed.append(f"{r['case']} ratio {r['ratio']:.2f} > {target}")
    first, second = (_marginal(results[a], results[b], "calls") for a, b in (("prod", "half"),
                                                                            ("half", "generated")))
    print(f"Python calls per added resource: prod -> half {first:,.0f}, half -> generated {second:,.0f} "
          f"(flat: within +-{FLAT:.0%}); CPU ms per added resource: "
          f"{1000 * _marginal(results['prod'], results['half'], 'above_s'):.2f}, "
          f"{1000 * _marginal(results['half'], results['generated'], 'above_s'):.2f} (noisy on a shared machine)")
    if abs(second - first) > FLAT * first:
        missed.append(f"the work per resource goes from {first:,.0f} to {second:,.0f} calls as the stack grows")
    by_model = [(results[b]["calls"] - results[a]["calls"]) / (results[b]["resources"] - results[a]["resources"])
                for a, b in (("prod", "models-half"), ("models-half", "models"))]
    print(f"Python calls per added resource with served models: prod -> models-half {by_model[0]:,.0f}, "
          f"models-half -> models {by_model[1]:,.0f} (flat: within +-{FLAT:.0%})")
    if abs(by_model[1] - by_model[0]) > FLAT * by_model[0]:
        missed.append(f"the work per resource goes from {by_model[0]:,.0f} to {by_model[1]:,.0f} calls as models "
                      f"are added")
    for line in missed:
        print(f"missed: {line}")
    return 1 if missed else 0


def _marginal(smaller: dict, larger: dict, key: str) -> float:
    return (larger[key] - smaller[key]) / (larger["resources"] - smaller["resources"])
