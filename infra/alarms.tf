# Alarms of the stage, published to one encrypted SNS topic. Subscribe to
# it (var.alarm_email, or any SNS subscription made outside Terraform).

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.data.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# MemoryDB runs with maxmemory-policy noeviction (leaderboard.tf): at 100 % every
# write fails. Warn while there is room to scale the node type or trim data.
resource "aws_cloudwatch_metric_alarm" "memorydb_memory" {
  alarm_name          = "${local.name}-memorydb-memory"
  alarm_description   = "MemoryDB memory above ${var.memorydb_memory_alarm_percent}% (noeviction: writes fail at 100%)"
  namespace           = "AWS/MemoryDB"
  metric_name         = "DatabaseMemoryUsagePercentage"
  dimensions          = { ClusterName = aws_memorydb_cluster.main.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.memorydb_memory_alarm_percent
  treat_missing_data  = "missing"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

output "alarm_topic_arn" {
  description = "SNS topic of the data tier's alarms."
  value       = aws_sns_topic.alarms.arn
}

# --- the app's alarms: each to the same topic --------------------------------------------

# Any error of a function in 5 minutes.
resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each            = local.functions
  alarm_name          = "${local.name}-${each.key}-errors"
  alarm_description   = "Lambda ${each.value} raised an error"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Any throttled invocation: the function's reserved concurrency is used up.
resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each            = local.functions
  alarm_name          = "${local.name}-${each.key}-throttles"
  alarm_description   = "Lambda ${each.value} was throttled (its reserved concurrency is used up)"
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# API Gateway's 5XXError is 1 per failed request, so its average is the 5xx rate.
resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${local.name}-api-5xx-rate"
  alarm_description   = "More than ${var.api_5xx_alarm_percent}% of the API's answers are 5xx"
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  dimensions          = { ApiName = local.api_name, Stage = local.api_stage }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_5xx_alarm_percent / 100
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# A stream consumer more than a minute behind its stream.
resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  for_each            = toset(local.stream_functions)
  alarm_name          = "${local.name}-${each.key}-iterator-age"
  alarm_description   = "Lambda ${local.functions[each.key]} is more than a minute behind its stream"
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = local.functions[each.key] }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 60000
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Any message in a dead-letter or failure queue: something was given up on.
resource "aws_cloudwatch_metric_alarm" "failure_queue" {
  for_each            = local.failure_queues
  alarm_name          = "${local.name}-${each.key}-not-empty"
  alarm_description   = "Queue ${each.value} holds a message that was given up on (look, then redrive or replay)"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# The X API's rate-limit window nearly used up (the app's XRateLimitRemaining).
resource "aws_cloudwatch_metric_alarm" "x_rate_limit" {
  alarm_name          = "${local.name}-x-rate-limit-low"
  alarm_description   = "The X API allows fewer than ${var.x_rate_limit_alarm_remaining} more requests in its window"
  namespace           = local.app_namespace
  metric_name         = "XRateLimitRemaining"
  dimensions          = { Stage = var.stage, Feature = "leaderboard" }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = var.x_rate_limit_alarm_remaining
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

output "alarm_names" {
  description = "Every alarm of the stage; each publishes to alarm_topic_arn."
  value = concat(
    [aws_cloudwatch_metric_alarm.memorydb_memory.alarm_name, aws_cloudwatch_metric_alarm.api_5xx_rate.alarm_name,
    aws_cloudwatch_metric_alarm.x_rate_limit.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.function_errors : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.function_throttles : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.iterator_age : a.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.failure_queue : a.alarm_name],
  )
}
