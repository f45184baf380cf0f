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

# Every app alarm by its name after "${local.name}-": what it watches and when it fires.
# All are notBreaching on missing data and publish to the alarm topic on alarm and on OK.
locals {
  app_alarms = merge(
    # Any error of a function in 5 minutes.
    { for k, f in local.functions : "${k}-errors" => {
      description = "Lambda ${f} raised an error"
      namespace   = "AWS/Lambda", metric = "Errors", dimensions = tomap({ FunctionName = f })
      statistic   = "Sum", period = 300, operator = "GreaterThanThreshold", threshold = 0
    } },
    # Any throttled invocation: the function's reserved concurrency is used up.
    { for k, f in local.functions : "${k}-throttles" => {
      description = "Lambda ${f} was throttled (its reserved concurrency is used up)"
      namespace   = "AWS/Lambda", metric = "Throttles", dimensions = tomap({ FunctionName = f })
      statistic   = "Sum", period = 300, operator = "GreaterThanThreshold", threshold = 0
    } },
    # A stream consumer more than a minute behind its stream.
    { for k in local.stream_functions : "${k}-iterator-age" => {
      description = "Lambda ${local.functions[k]} is more than a minute behind its stream"
      namespace   = "AWS/Lambda", metric = "IteratorAge", dimensions = tomap({ FunctionName = local.functions[k] })
      statistic   = "Maximum", period = 60, operator = "GreaterThanThreshold", threshold = 60000
    } },
    # Any message in a dead-letter or failure queue: something was given up on.
    { for k, q in local.failure_queues : "${k}-not-empty" => {
      description = "Queue ${q} holds a message that was given up on (look, then redrive or replay)"
      namespace   = "AWS/SQS", metric = "ApproximateNumberOfMessagesVisible", dimensions = tomap({ QueueName = q })
      statistic   = "Maximum", period = 300, operator = "GreaterThanThreshold", threshold = 0
    } },
    {
      # API Gateway's 5XXError is 1 per failed request, so its average is the 5xx rate.
      "api-5xx-rate" = {
        description = "More than ${var.api_5xx_alarm_percent}% of the API's answers are 5xx"
        namespace   = "AWS/ApiGateway", metric = "5XXError"
        dimensions  = tomap({ ApiName = local.api_name, Stage = local.api_stage })
        statistic   = "Average", period = 300, operator = "GreaterThanThreshold"
        threshold   = var.api_5xx_alarm_percent / 100
      }
      # The X API's rate-limit window nearly used up (the app's XRateLimitRemaining).
      "x-rate-limit-low" = {
        description = "The X API allows fewer than ${var.x_rate_limit_alarm_remaining} more requests in its window"
        namespace   = local.app_namespace, metric = "XRateLimitRemaining"
        dimensions  = tomap({ Stage = var.stage, Feature = "leaderboard" })
        statistic   = "Minimum", period = 300, operator = "LessThanThreshold"
        threshold   = var.x_rate_limit_alarm_remaining
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "app" {
  for_each            = local.app_alarms
  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = each.value.period
  evaluation_periods  = 1
  comparison_operator = each.value.operator
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

output "alarm_names" {
  description = "Every alarm of the stage; each publishes to alarm_topic_arn."
  value = concat(
    [aws_cloudwatch_metric_alarm.memorydb_memory.alarm_name],
    [for a in aws_cloudwatch_metric_alarm.app : a.alarm_name],
  )
}
