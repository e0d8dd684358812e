"""`mlp` plans the project it stands in: its stack files, its program and its pack config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _copy_project(target: Path) -> Path:
    target.mkdir()
    keep = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "catalog", "components", "infra", "policies")
    for name in keep:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def test_mlp_plans_the_checkout_it_stands_in_with_its_code_and_pack_config(tmp_path):
    other = _copy_project(tmp_path / "other")
    record = other / "catalog" / "price_records" / "us-east-1.json"
    prices = json.loads(record.read_text())
    record.write_text(json.dumps({**prices, "date": "2099-01-01"}))  # that checkout's own facts
    (other / "Pulumi.dev.yaml").write_text((other / "Pulumi.dev.yaml").read_text().replace(
        "natGateways: single", "natGateways: perAz"))
    config = json.loads((other / "policies" / "config.dev.json").read_text())
    (other / "policies" / "config.dev.json").write_text(json.dumps({**config, "cost-nat-gateway-count": {
        "maxNatGateways": 1}}))
    (other / "sub").mkdir()
    done = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "dev"], cwd=other / "sub",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "us-east-1 prices of 2099-01-01" in done.stdout, "the checkout's code and data, not the installed ones"
    assert "NAT gateways x2" in done.stdout, "the checkout's stack file"
    assert "advisory      cost-nat-gateway-count" in done.stdout, "the checkout's pack config"


def test_mlp_outside_a_project_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "dev"]) == 2
    assert capsys.readouterr().err == (f"error: no Pulumi.yaml in {tmp_path} or any parent: run mlp inside a "
                                       "checkout, or pass -C DIR\n")


@pytest.mark.parametrize("flag", ["-C", "--cwd"])
def test_a_new_stack_gets_its_own_pack_config(tmp_path, capsys, flag):
    (tmp_path / "Pulumi.euprod.yaml").write_text((ROOT / "Pulumi.dev.yaml").read_text())
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "config.euprod.json").write_text(json.dumps({"cost-nat-gateway-count": {
        "maxNatGateways": 0}}))
    assert main(["plan", "euprod", flag, str(tmp_path)]) == 0
    assert "1 NAT gateways (~$33/month each before data); this stack expects 0" in capsys.readouterr().out


def test_a_config_error_exits_2_with_one_line_naming_the_file(tmp_path):
    """As CI runs it: a subprocess, its exit status and stderr."""
    (tmp_path / "Pulumi.yaml").write_text("name: ml-platform\nruntime: python\n")
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    config["config"]["ml-platform:nodePool"] = config["config"].pop("ml-platform:nodePools")
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "broken", "-C", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: Pulumi.broken.yaml: ml-platform:nodePool: unknown key; did you mean "
                                  "'nodePools'?") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
