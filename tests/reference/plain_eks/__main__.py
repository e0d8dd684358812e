"""A plain EKS program in the shape tutorials give it: public subnets, a default node group, an open API.

Nothing here is this platform's code or convention; it is what the policy pack
meets when another team points `pulumi preview --policy-pack` at its own
stack. tests/test_reference_stack.py lists what is wrong with it.
"""

import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

ZONES = ["us-east-1a", "us-east-1b"]


def trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


vpc = aws.ec2.Vpc("main", cidr_block="10.0.0.0/16", enable_dns_hostnames=True, enable_dns_support=True)
gateway = aws.ec2.InternetGateway("main", vpc_id=vpc.id)
routes = aws.ec2.RouteTable("public", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}])
subnets = []
for index, zone in enumerate(ZONES):
    subnet = aws.ec2.Subnet(f"public-{index}", vpc_id=vpc.id, cidr_block=f"10.0.{index}.0/24",
                            availability_zone=zone, map_public_ip_on_launch=True)
    aws.ec2.RouteTableAssociation(f"public-{index}", subnet_id=subnet.id, route_table_id=routes.id)
    subnets.append(subnet)

cluster_sg = aws.ec2.SecurityGroup(
    "cluster", vpc_id=vpc.id, description="EKS cluster",
    ingress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
    egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}])

# A bastion to reach the nodes, from anywhere, as the quick starts set it up.
bastion_sg = aws.ec2.SecurityGroup(
    "bastion", vpc_id=vpc.id, description="SSH",
    ingress=[{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": ["0.0.0.0/0"]}])
aws.ec2.Instance("bastion", ami="ami-0abcdef1234567890", instance_type="t3.micro", subnet_id=subnets[0].id,
                 vpc_security_group_ids=[bastion_sg.id], key_name="admin")

cluster_role = aws.iam.Role("cluster", assume_role_policy=trust("eks.amazonaws.com"))
cluster_policy = aws.iam.RolePolicyAttachment("cluster", role=cluster_role.name,
                                              policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")
cluster = aws.eks.Cluster(
    "demo", role_arn=cluster_role.arn,
    vpc_config={"subnet_ids": [s.id for s in subnets], "security_group_ids": [cluster_sg.id]},
    opts=pulumi.ResourceOptions(depends_on=[cluster_policy]))

node_role = aws.iam.Role("node", assume_role_policy=trust("ec2.amazonaws.com"))
node_policies = [
    aws.iam.RolePolicyAttachment(f"node-{name}", role=node_role.name, policy_arn=f"arn:aws:iam::aws:policy/{name}")
    for name in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
]
aws.eks.NodeGroup(
    "default", cluster_name=cluster.name, node_role_arn=node_role.arn, subnet_ids=[s.id for s in subnets],
    instance_types=["t3.medium"], scaling_config={"desired_size": 2, "min_size": 1, "max_size": 3},
    opts=pulumi.ResourceOptions(depends_on=node_policies))

kubeconfig = pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
    lambda c: json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "demo",
        "clusters": [{"name": "demo", "cluster": {"server": c[1], "certificate-authority-data": c[2]}}],
        "contexts": [{"name": "demo", "context": {"cluster": "demo", "user": "demo"}}],
        "users": [{"name": "demo", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                                     "command": "aws", "args": ["eks", "get-token", "--cluster-name", c[0]]}}}],
    }))
provider = k8s.Provider("demo", kubeconfig=kubeconfig)
on_cluster = pulumi.ResourceOptions(provider=provider)

# Give the team's admin role access, the way the EKS getting-started guides did before access entries.
k8s.core.v1.ConfigMapPatch(
    "aws-auth", metadata={"name": "aws-auth", "namespace": "kube-system"},
    data={"mapRoles": "- rolearn: arn:aws:iam::111122223333:role/admin\n  username: admin\n  groups: [system:masters]\n"},
    opts=on_cluster)

labels = {"app": "web"}
k8s.apps.v1.Deployment(
    "web", metadata={"name": "web"},
    spec={"replicas": 2, "selector": {"match_labels": labels},
          "template": {"metadata": {"labels": labels},
                       "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"container_port": 80}]}]}}},
    opts=on_cluster)
k8s.core.v1.Service(
    "web", metadata={"name": "web"},
    spec={"type": "LoadBalancer", "selector": labels, "ports": [{"port": 80, "target_port": 80}]},
    opts=on_cluster)

pulumi.export("kubeconfig", pulumi.Output.secret(kubeconfig))
