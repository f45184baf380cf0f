# The per-AZ resources are keyed by zone ("a", "b": local.zones in network.tf);
# state written with the count indexes 0 and 1 moves to those keys on the next
# plan, so an existing deployment keeps its subnets, NAT gateways and routes.

moved {
  from = aws_subnet.public[0]
  to   = aws_subnet.public["a"]
}
moved {
  from = aws_subnet.public[1]
  to   = aws_subnet.public["b"]
}
moved {
  from = aws_subnet.private[0]
  to   = aws_subnet.private["a"]
}
moved {
  from = aws_subnet.private[1]
  to   = aws_subnet.private["b"]
}
moved {
  from = aws_route_table_association.public[0]
  to   = aws_route_table_association.public["a"]
}
moved {
  from = aws_route_table_association.public[1]
  to   = aws_route_table_association.public["b"]
}
moved {
  from = aws_eip.nat[0]
  to   = aws_eip.nat["a"]
}
moved {
  from = aws_eip.nat[1]
  to   = aws_eip.nat["b"]
}
moved {
  from = aws_nat_gateway.main[0]
  to   = aws_nat_gateway.main["a"]
}
moved {
  from = aws_nat_gateway.main[1]
  to   = aws_nat_gateway.main["b"]
}
moved {
  from = aws_route_table.private[0]
  to   = aws_route_table.private["a"]
}
moved {
  from = aws_route_table.private[1]
  to   = aws_route_table.private["b"]
}
moved {
  from = aws_route.private_nat[0]
  to   = aws_route.private_nat["a"]
}
moved {
  from = aws_route.private_nat[1]
  to   = aws_route.private_nat["b"]
}
moved {
  from = aws_route_table_association.private[0]
  to   = aws_route_table_association.private["a"]
}
moved {
  from = aws_route_table_association.private[1]
  to   = aws_route_table_association.private["b"]
}

# The MemoryDB ACL and parameter group are always created (leaderboard.tf).
moved {
  from = aws_memorydb_acl.app[0]
  to   = aws_memorydb_acl.app
}
moved {
  from = aws_memorydb_parameter_group.main[0]
  to   = aws_memorydb_parameter_group.main
}
