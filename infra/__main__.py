"""Pulumi entry point: parse the stack config, build the platform, export its outputs."""

import pulumi

from infra import config, stack

for _name, _value in stack.build(config.load()).items():
    pulumi.export(_name, _value)
