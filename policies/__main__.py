"""The CrossGuard policy pack. Constructing PolicyPack starts the analyzer server: nothing imports this file."""

from pulumi_policy import PolicyPack

from policies.pack import RULES

PolicyPack(name="ml-platform", policies=RULES)
