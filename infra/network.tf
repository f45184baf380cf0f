# The network every feature shares: a VPC across two AZs, a public and a private
# subnet in each, NAT per AZ, VPC endpoints, the Lambda security group and flow logs.

locals {
  # Pinned by name (not "the first two available"), so the subnets never move
  # when AWS adds or reorders zones.
  az_names = var.availability_zones != null ? var.availability_zones : ["${var.region}a", "${var.region}b"]

  # Per-AZ resources are keyed "a" and "b" (the first and second zone), not by
  # zone name, so their addresses are the same in every region. Each zone's /20s:
  # public 0-1, private 8-9 (room to add AZs later).
  zones = {
    for i, key in ["a", "b"] : key => {
      name         = local.az_names[i]
      public_cidr  = cidrsubnet(var.vpc_cidr, 4, i)
      private_cidr = cidrsubnet(var.vpc_cidr, 4, i + 8)
    }
  }
}

# Fails the plan if a pinned zone does not exist or is not available.
data "aws_availability_zones" "pinned" {
  state = "available"
  filter {
    name   = "zone-name"
    values = local.az_names
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == 2
      error_message = "Both availability_zones must exist and be available in ${var.region}."
    }
  }
}

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # needed by interface endpoints' private DNS

  tags = { Name = local.name }
}

# Closes the default security group (nothing uses it).
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "${local.name}-default-closed" }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = local.name }
}

# Public subnets hold only the NAT gateways; nothing gets a public IP.
resource "aws_subnet" "public" {
  for_each                = local.zones
  vpc_id                  = aws_vpc.main.id
  availability_zone       = each.value.name
  cidr_block              = each.value.public_cidr
  map_public_ip_on_launch = false

  tags = { Name = "${local.name}-public-${each.value.name}", Tier = "public" }
}

# Private subnets: the Lambdas (through Chalice's subnet_ids), MemoryDB,
# memcached and the interface endpoints.
resource "aws_subnet" "private" {
  for_each          = local.zones
  vpc_id            = aws_vpc.main.id
  availability_zone = each.value.name
  cidr_block        = each.value.private_cidr

  tags = { Name = "${local.name}-private-${each.value.name}", Tier = "private" }
}

locals {
  # In zone order ("a", "b"): the private_subnet_ids output and the subnet groups.
  private_subnet_ids = values(aws_subnet.private)[*].id
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "${local.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main.id
}

resource "aws_route_table_association" "public" {
  for_each       = local.zones
  subnet_id      = aws_subnet.public[each.key].id
  route_table_id = aws_route_table.public.id
}

# One NAT gateway per AZ: a NAT gateway is only highly available inside its
# AZ, so each private subnet leaves through the one in its own AZ.
resource "aws_eip" "nat" {
  for_each = local.zones
  domain   = "vpc"
  tags     = { Name = "${local.name}-nat-${each.value.name}" }

  depends_on = [aws_internet_gateway.main]
}

resource "aws_nat_gateway" "main" {
  for_each      = local.zones
  allocation_id = aws_eip.nat[each.key].id
  subnet_id     = aws_subnet.public[each.key].id
  tags          = { Name = "${local.name}-${each.value.name}" }

  depends_on = [aws_internet_gateway.main]
}

resource "aws_route_table" "private" {
  for_each = local.zones
  vpc_id   = aws_vpc.main.id
  tags     = { Name = "${local.name}-private-${each.value.name}" }
}

resource "aws_route" "private_nat" {
  for_each               = local.zones
  route_table_id         = aws_route_table.private[each.key].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.main[each.key].id
}

resource "aws_route_table_association" "private" {
  for_each       = local.zones
  subnet_id      = aws_subnet.private[each.key].id
  route_table_id = aws_route_table.private[each.key].id
}

# --- VPC endpoints -------------------------------------------------------------

# Gateway endpoints are free and take S3 (QR images) and DynamoDB (QR cache)
# traffic off the NAT gateways.
resource "aws_vpc_endpoint" "gateway" {
  for_each          = toset(["s3", "dynamodb"])
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = values(aws_route_table.private)[*].id

  tags = { Name = "${local.name}-${each.key}" }
}

# Interface endpoints cost per hour per AZ, so only services with real volume
# (by default kinesis-streams: every click is a PutRecord) get one.
resource "aws_vpc_endpoint" "interface" {
  for_each            = var.enable_interface_endpoints ? toset(var.interface_endpoint_services) : toset([])
  vpc_id              = aws_vpc.main.id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.endpoints.id]

  tags = { Name = "${local.name}-${each.key}" }
}

# --- security groups -------------------------------------------------------------

# Attached to every Chalice function through .chalice/config.json
# (security_group_ids), not by Terraform.
resource "aws_security_group" "lambda" {
  # checkov:skip=CKV2_AWS_5:Attached to the Lambda functions by Chalice (security_group_ids written by deploy/configure.py), outside Terraform.
  name        = "${local.name}-lambda"
  description = "Pulse Lambda functions"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-lambda" }
}

resource "aws_vpc_security_group_egress_rule" "lambda_https" {
  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS: X API through NAT, AWS APIs, interface endpoints"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_memorydb" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "Redis TLS to MemoryDB"
  ip_protocol                  = "tcp"
  from_port                    = local.memorydb_port
  to_port                      = local.memorydb_port
  referenced_security_group_id = aws_security_group.memorydb.id
}

resource "aws_vpc_security_group_egress_rule" "lambda_to_memcached" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "memcached to ElastiCache"
  ip_protocol                  = "tcp"
  from_port                    = local.memcached_port
  to_port                      = local.memcached_port
  referenced_security_group_id = aws_security_group.memcached.id
}

resource "aws_security_group" "endpoints" {
  name        = "${local.name}-endpoints"
  description = "Interface VPC endpoints: HTTPS from the Lambdas only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-endpoints" }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_lambda" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the Lambda security group"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.lambda.id
}

# --- flow logs -------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "flow_logs" {
  count             = var.enable_flow_logs ? 1 : 0
  name              = "/pulse/${var.stage}/vpc-flow-logs"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_iam_role" "flow_logs" {
  count = var.enable_flow_logs ? 1 : 0
  name  = "${local.name}-vpc-flow-logs"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
      }
    }]
  })
}

resource "aws_iam_role_policy" "flow_logs" {
  count = var.enable_flow_logs ? 1 : 0
  name  = "write-flow-logs"
  role  = aws_iam_role.flow_logs[0].id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
      ]
      Resource = [
        aws_cloudwatch_log_group.flow_logs[0].arn,
        "${aws_cloudwatch_log_group.flow_logs[0].arn}:log-stream:*",
      ]
    }]
  })
}

resource "aws_flow_log" "vpc" {
  count                = var.enable_flow_logs ? 1 : 0
  vpc_id               = aws_vpc.main.id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn         = aws_iam_role.flow_logs[0].arn
}

output "vpc_id" {
  description = "The VPC of the data tier and the Lambdas."
  value       = aws_vpc.main.id
}

output "private_subnet_ids" {
  description = "The private subnets, one per AZ in zone order: Chalice's subnet_ids."
  value       = local.private_subnet_ids
}

output "lambda_security_group_ids" {
  description = "The Lambda security group: Chalice's security_group_ids."
  value       = [aws_security_group.lambda.id]
}
