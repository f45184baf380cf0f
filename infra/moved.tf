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
# The app's alarms are one resource keyed by alarm name (alarms.tf).
moved {
  from = aws_cloudwatch_metric_alarm.function_errors["api_handler"]
  to   = aws_cloudwatch_metric_alarm.app["api_handler-errors"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function_errors["ingest_hashtags"]
  to   = aws_cloudwatch_metric_alarm.app["ingest_hashtags-errors"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function_errors["qr_created"]
  to   = aws_cloudwatch_metric_alarm.app["qr_created-errors"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function_errors["consume_clicks"]
  to   = aws_cloudwatch_metric_alarm.app["consume_clicks-errors"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function_errors["qr_item_written"]
  to   = aws_cloudwatch_metric_alarm.app["qr_item_written-errors"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function_throttles["api_handler"]
  to   = aws_cloudwatch_metric_alarm.app["api_handler-throttles"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function_throttles["ingest_hashtags"]
  to   = aws_cloudwatch_metric_alarm.app["ingest_hashtags-throttles"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function_throttles["qr_created"]
  to   = aws_cloudwatch_metric_alarm.app["qr_created-throttles"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function_throttles["consume_clicks"]
  to   = aws_cloudwatch_metric_alarm.app["consume_clicks-throttles"]
}
moved {
  from = aws_cloudwatch_metric_alarm.function_throttles["qr_item_written"]
  to   = aws_cloudwatch_metric_alarm.app["qr_item_written-throttles"]
}
moved {
  from = aws_cloudwatch_metric_alarm.iterator_age["consume_clicks"]
  to   = aws_cloudwatch_metric_alarm.app["consume_clicks-iterator-age"]
}
moved {
  from = aws_cloudwatch_metric_alarm.iterator_age["qr_item_written"]
  to   = aws_cloudwatch_metric_alarm.app["qr_item_written-iterator-age"]
}
moved {
  from = aws_cloudwatch_metric_alarm.failure_queue["qr_events_dlq"]
  to   = aws_cloudwatch_metric_alarm.app["qr_events_dlq-not-empty"]
}
moved {
  from = aws_cloudwatch_metric_alarm.failure_queue["clicks_failed"]
  to   = aws_cloudwatch_metric_alarm.app["clicks_failed-not-empty"]
}
moved {
  from = aws_cloudwatch_metric_alarm.api_5xx_rate
  to   = aws_cloudwatch_metric_alarm.app["api-5xx-rate"]
}
moved {
  from = aws_cloudwatch_metric_alarm.x_rate_limit
  to   = aws_cloudwatch_metric_alarm.app["x-rate-limit-low"]
}
