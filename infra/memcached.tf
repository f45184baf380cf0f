# ElastiCache memcached: the lazy-loading cache in front of external APIs.
# Two nodes, one per AZ (az_mode cross-az), as in the design card.

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
  from_port                    = 11211
  to_port                      = 11211
  referenced_security_group_id = aws_security_group.lambda.id
}

resource "aws_elasticache_subnet_group" "memcached" {
  name        = "${local.name}-memcached"
  description = "Pulse memcached, private subnets"
  subnet_ids  = aws_subnet.private[*].id
}

resource "aws_elasticache_cluster" "memcached" {
  cluster_id                   = "${local.name}-mc"
  engine                       = "memcached"
  engine_version               = var.memcached_engine_version
  parameter_group_name         = "default.memcached1.6"
  node_type                    = var.memcached_node_type
  num_cache_nodes              = 2
  az_mode                      = "cross-az"
  preferred_availability_zones = local.azs
  port                         = 11211
  subnet_group_name            = aws_elasticache_subnet_group.memcached.name
  security_group_ids           = [aws_security_group.memcached.id]
  # Memcached 1.6.12+ in a VPC supports TLS (no auth); at-rest encryption
  # does not exist for memcached.
  transit_encryption_enabled = var.memcached_transit_encryption
  maintenance_window         = "sun:07:30-sun:08:30"
}
