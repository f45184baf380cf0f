# Read-through cache: ElastiCache memcached in front of slow sources (QR
# entries, the /upstream API). Two nodes, one per AZ (az_mode cross-az).

locals {
  memcached_port  = 11211
  memcached_nodes = [for n in aws_elasticache_cluster.memcached.cache_nodes : "${n.address}:${n.port}"]
}

resource "aws_security_group" "memcached" {
  name        = "${local.name}-memcached"
  description = "memcached: from the Lambdas only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${local.name}-memcached" }
}

resource "aws_vpc_security_group_ingress_rule" "memcached_from_lambda" {
  security_group_id            = aws_security_group.memcached.id
  description                  = "memcached from the Lambda security group"
  ip_protocol                  = "tcp"
  from_port                    = local.memcached_port
  to_port                      = local.memcached_port
  referenced_security_group_id = aws_security_group.lambda.id
}

resource "aws_elasticache_subnet_group" "memcached" {
  name        = "${local.name}-memcached"
  description = "Pulse memcached, private subnets"
  subnet_ids  = local.private_subnet_ids
}

resource "aws_elasticache_cluster" "memcached" {
  cluster_id                   = "${local.name}-mc"
  engine                       = "memcached"
  engine_version               = var.memcached_engine_version
  parameter_group_name         = "default.memcached1.6"
  node_type                    = var.memcached_node_type
  num_cache_nodes              = 2
  az_mode                      = "cross-az"
  preferred_availability_zones = local.az_names
  port                         = local.memcached_port
  subnet_group_name            = aws_elasticache_subnet_group.memcached.name
  security_group_ids           = [aws_security_group.memcached.id]
  # Memcached 1.6.12+ in a VPC supports TLS (no auth); at-rest encryption
  # does not exist for memcached.
  transit_encryption_enabled = var.memcached_transit_encryption
  maintenance_window         = "sun:07:30-sun:08:30"
}

output "memcached_nodes" {
  description = "host:port of each memcached node (MEMCACHED_SERVERS in lambda_environment)."
  value       = local.memcached_nodes
}

output "memcached_transit_encryption" {
  description = "Written to the stage as MEMCACHED_TLS: the client must then connect with TLS."
  value       = var.memcached_transit_encryption
}

output "memcached_configuration_endpoint" {
  description = "host:port for ElastiCache auto discovery, written to the stage as MEMCACHED_CONFIG_ENDPOINT."
  value       = aws_elasticache_cluster.memcached.configuration_endpoint
}
