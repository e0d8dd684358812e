"""The platform's facts: instances and prices per region, EKS releases and addon pins, chart pins,
the scheduling contract, the subnet plan, node launch settings and the pool spec models.

The bottom layer: it imports nothing of the project and no Pulumi, so config,
components and the policy pack can all stand on it (tests/test_layers.py).
"""
