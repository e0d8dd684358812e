"""Preflight: a missing addon version or AMI alias stops the deploy; a short GPU quota warns with the fix."""

from __future__ import annotations

import botocore.session
from botocore.stub import Stubber

from catalog.eks import RELEASES
from infra import preflight


class Session:
    """A boto3-like session handing out stubbed clients."""

    def __init__(self, clients):
        self.clients = clients

    def client(self, name):
        return self.clients[name]


def _clients(missing_addon: str | None = None, missing_ami: bool = False, quota: float = 10_000):
    session = botocore.session.get_session()
    made = {name: session.create_client(name, region_name="us-east-1", aws_access_key_id="x",
                                        aws_secret_access_key="x") for name in ("eks", "ssm", "service-quotas")}
    stubs = {name: Stubber(client) for name, client in made.items()}
    release = RELEASES["1.35"]
    for addon, version in release.addons.items():
        offered = [] if addon == missing_addon else [{"addonVersion": version}]
        stubs["eks"].add_response("describe_addon_versions", {"addons": [{"addonName": addon, "addonVersions": offered}]},
                                  {"addonName": addon, "kubernetesVersion": "1.35"})
    for name in preflight.ami_parameters("1.35", "al2023@v20260903"):
        if missing_ami:
            stubs["ssm"].add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": name})
        else:
            stubs["ssm"].add_response("get_parameter", {"Parameter": {"Name": name, "Value": "ami-1"}}, {"Name": name})
    for _ in range(4):
        stubs["service-quotas"].add_response("get_service_quota", {"Quota": {"Value": quota}})
    for stub in stubs.values():
        stub.activate()
    return Session(made)


def test_pins_that_exist_pass(capsys):
    assert preflight.main("prod", _clients()) == 0
    assert "preflight prod: ok" in capsys.readouterr().out


def test_a_missing_addon_version_or_ami_alias_fails_with_its_name(capsys):
    assert preflight.main("prod", _clients(missing_addon="snapshot-controller")) == 1
    assert f"addon snapshot-controller {RELEASES['1.35'].addons['snapshot-controller']} is not offered" in \
        capsys.readouterr().err
    assert preflight.main("prod", _clients(missing_ami=True)) == 1
    assert "amazon-eks-node-al2023-x86_64-nvidia-1.35-v20260903/image_id does not exist" in capsys.readouterr().err


def test_a_gpu_quota_below_the_pools_limits_warns_with_the_command(capsys):
    assert preflight.main("prod", _clients(quota=96)) == 0
    out = capsys.readouterr().out
    assert "warning: P on-demand quota L-417A185B is 96 vCPUs" in out
    assert "aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-417A185B" in out
