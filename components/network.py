"""The VPC: private subnets for nodes, public subnets for NAT and load balancers, flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from catalog.discovery import INTERNAL_ELB_TAG, KARPENTER_DISCOVERY_TAG, PUBLIC_ELB_TAG
from catalog.subnets import plan_subnets
from components.handles import PlatformContext
from components.iam import policy_document, service_trust_policy
from components.storage import PrivateBucket, PrivateBucketArgs

# Interface endpoints by config name; `s3` is a (free) gateway endpoint instead.
INTERFACE_ENDPOINTS = {"ecr": ("ecr.api", "ecr.dkr"), "sts": ("sts",)}


@dataclass(frozen=True)
class DeployerLink:
    """The deployer network, connected by VPC peering, a transit gateway, or living in this VPC."""

    connection: str  # peering | transitGateway | inVpc
    cidrs: Sequence[str]
    vpc_id: str | None = None
    peer_account_id: str | None = None
    transit_gateway_id: str | None = None
    route_table_ids: Sequence[str] = ()


@dataclass(frozen=True)
class NetworkArgs:
    context: PlatformContext
    cidr: ipaddress.IPv4Network
    availability_zones: Sequence[str]
    nat_per_az: bool
    flow_logs_destination: str  # cloudwatch | s3
    deployer_link: DeployerLink | None  # how `pulumi up` reaches a private API endpoint
    flow_logs_retention_days: int
    endpoints: Sequence[str]
    protect: bool


class Network(pulumi.ComponentResource):
    """VPC with one private and one public subnet per AZ, NAT egress and flow logs.

    Private subnets carry the Karpenter discovery tag and the internal-ELB role;
    public subnets the internet-facing ELB role. No subnet maps public IPs: nodes
    never get one, and NAT gateways and load balancers bring their own.
    """

    vpc_id: pulumi.Output[str]
    deployer_path: list[pulumi.Resource]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    nat_gateway_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ml-platform:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = plan_subnets(args.cidr, len(args.availability_zones))

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(args.cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": args.context.cluster_name},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={"Name": args.context.cluster_name}, opts=child
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags={"Name": f"{args.context.cluster_name}-public"},
            opts=child,
        )

        public, private, nats, private_rts = [], [], [], []
        for az, public_cidr, private_cidr in zip(args.availability_zones, plan.public, plan.private, strict=True):
            public_subnet = aws.ec2.Subnet(
                f"{name}-public-{az}",
                vpc_id=vpc.id,
                cidr_block=str(public_cidr),
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.context.cluster_name}-public-{az}", PUBLIC_ELB_TAG: "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{az}", subnet_id=public_subnet.id, route_table_id=public_rt.id, opts=child
            )
            public.append(public_subnet)
            if args.nat_per_az or not nats:
                eip = aws.ec2.Eip(f"{name}-nat-{az}", domain="vpc", tags={"Name": f"{args.context.cluster_name}-nat-{az}"},
                                  opts=child)
                nats.append(aws.ec2.NatGateway(
                    f"{name}-nat-{az}",
                    allocation_id=eip.id,
                    subnet_id=public_subnet.id,
                    tags={"Name": f"{args.context.cluster_name}-nat-{az}"},
                    # A NAT gateway needs the IGW attached before it can route.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                ))
            private_subnet = aws.ec2.Subnet(
                f"{name}-private-{az}",
                vpc_id=vpc.id,
                cidr_block=str(private_cidr),
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={
                    "Name": f"{args.context.cluster_name}-private-{az}",
                    INTERNAL_ELB_TAG: "1",
                    KARPENTER_DISCOVERY_TAG: args.context.cluster_name,
                },
                opts=child,
            )
            private.append((az, private_subnet, nats[-1]))

        link, deployer_route = self._deployer_link(name, args, vpc, [subnet for _, subnet, _ in private])
        for az, private_subnet, nat in private:
            route_table = aws.ec2.RouteTable(
                f"{name}-private-{az}",
                vpc_id=vpc.id,
                # Routes are inline (a RouteTable with inline routes removes any standalone aws.ec2.Route).
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id},
                        *({"cidr_block": str(cidr), **deployer_route}
                          for cidr in (args.deployer_link.cidrs if deployer_route else ()))],
                tags={"Name": f"{args.context.cluster_name}-private-{az}"},
                # A route through a transit gateway needs this VPC attached to it first.
                opts=pulumi.ResourceOptions(parent=self, depends_on=link if "transit_gateway_id" in deployer_route
                                            else None),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{az}", subnet_id=private_subnet.id, route_table_id=route_table.id, opts=child
            )
            private_rts.append(route_table)
        private = [subnet for _, subnet, _ in private]
        # What the machine running `pulumi up` needs before it can reach a private API endpoint.
        self.deployer_path = [*link, *(private_rts if deployer_route else [])]

        self._flow_logs(name, args, vpc)
        self._endpoints(name, args, vpc, private, private_rts)

        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.nat_gateway_ids = pulumi.Output.all(*[n.id for n in nats])
        self.register_outputs({
            "vpc_id": self.vpc_id,
            "private_subnet_ids": self.private_subnet_ids,
            "public_subnet_ids": self.public_subnet_ids,
            "nat_gateway_ids": self.nat_gateway_ids,
        })

    def _deployer_link(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc,
                       subnets: list[aws.ec2.Subnet]) -> tuple[list[pulumi.Resource], dict]:
        """Connect the deployer network (peering or transit gateway); the route target private tables use."""
        link = args.deployer_link
        child = pulumi.ResourceOptions(parent=self)
        if link is None or link.connection == "inVpc":
            return [], {}
        if link.connection == "transitGateway":
            attachment = aws.ec2transitgateway.VpcAttachment(
                f"{name}-deployer", transit_gateway_id=link.transit_gateway_id, vpc_id=vpc.id,
                subnet_ids=[s.id for s in subnets], dns_support="enable",
                tags={"Name": f"{args.context.cluster_name}-deployer"}, opts=child)
            return [attachment], {"transit_gateway_id": link.transit_gateway_id}
        peering = aws.ec2.VpcPeeringConnection(
            f"{name}-deployer", vpc_id=vpc.id, peer_vpc_id=link.vpc_id, peer_owner_id=link.peer_account_id,
            # Within one account the stack accepts its own request; across accounts the peer accepts it.
            auto_accept=link.peer_account_id is None,
            tags={"Name": f"{args.context.cluster_name}-deployer"}, opts=child)
        returns = [aws.ec2.Route(f"{name}-deployer-return-{table}", route_table_id=table,
                                 destination_cidr_block=str(args.cidr), vpc_peering_connection_id=peering.id,
                                 opts=child)
                   for table in link.route_table_ids]
        return [peering, *returns], {"vpc_peering_connection_id": peering.id}

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc) -> None:
        """All traffic, accepted and rejected, to CloudWatch or S3 with finite retention."""
        child = pulumi.ResourceOptions(parent=self)
        role_arn = None
        if args.flow_logs_destination == "s3":
            destination_type = "s3"
            destination = PrivateBucket(
                f"{name}-flow-logs",
                PrivateBucketArgs(context=args.context, protect=args.protect,
                                  expire_days=args.flow_logs_retention_days, log_delivery=True),
                opts=child,
            ).arn
        else:
            destination_type = "cloud-watch-logs"
            log_group = aws.cloudwatch.LogGroup(
                f"{name}-flow-logs",
                name=f"/aws/vpc/{args.context.cluster_name}/flow-logs",
                retention_in_days=args.flow_logs_retention_days,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            destination = log_group.arn
            role = aws.iam.Role(f"{name}-flow-logs",
                                assume_role_policy=service_trust_policy("vpc-flow-logs.amazonaws.com"), opts=child)
            aws.iam.RolePolicy(
                f"{name}-flow-logs",
                role=role.id,
                policy=log_group.arn.apply(lambda arn: policy_document([{
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    "Resource": [arn, f"{arn}:*"],
                }])),
                opts=child,
            )
            role_arn = role.arn
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type=destination_type,
            log_destination=destination,
            iam_role_arn=role_arn,
            max_aggregation_interval=60,
            opts=child,
        )

    def _endpoints(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc,
                   subnets: list[aws.ec2.Subnet], route_tables: list[aws.ec2.RouteTable]) -> None:
        """Keep image pulls and AWS API calls off the NAT gateways (cheaper, and private)."""
        child = pulumi.ResourceOptions(parent=self)
        if "s3" in args.endpoints:
            aws.ec2.VpcEndpoint(
                f"{name}-s3",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.context.region}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=[rt.id for rt in route_tables],
                opts=child,
            )
        services = [svc for key in args.endpoints for svc in INTERFACE_ENDPOINTS.get(key, ())]
        if not services:
            return
        security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            description="HTTPS from inside the VPC to interface endpoints",
            ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [str(args.cidr)],
                      "description": "HTTPS from the VPC"}],
            opts=child,
        )
        for service in services:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.context.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in subnets],
                security_group_ids=[security_group.id],
                opts=child,
            )
