# Alarms of the data tier, published to one encrypted SNS topic. Subscribe to
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
