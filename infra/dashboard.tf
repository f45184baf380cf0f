# One CloudWatch dashboard: the app's business metrics (EMF, namespace Pulse)
# beside what AWS measures of the functions, the API, the stream, the queues,
# the table, MemoryDB and memcached; and the alarms of alarms.tf.

locals {
  # The app's metrics by feature, named as the app emits them (chalicelib/telemetry.py:
  # namespace Pulse, dimensions Stage and Feature, at most one more). Keep in step with it.
  app_namespace = "Pulse"
  app_metrics = {
    leaderboard = ["IngestTweets", "IngestTweetsCounted", "IngestHashtags", "IngestPages",
    "XRateLimitRemaining", "IngestLagSeconds"]
    qr = ["QrCreated", "QrHitMemcached", "QrHitDynamodb", "QrMiss", "QrRenderMs"]
    hotspots = ["ClicksAccepted", "ClicksRefused", "ClicksApplied", "ClicksMalformed",
    "ClicksBatchAgeMs", "ClickDuplicatesDropped"]
    cache  = ["CacheHit", "CacheMiss", "CacheStale", "CacheBypass", "CacheUpstreamErrors"]
    limits = ["RateLimited", "DependencyUnavailable"]
  }
  # Metrics that are a level or a time, shown as their maximum (minimum for what runs out),
  # not summed.
  app_metric_stat = {
    XRateLimitRemaining = "Minimum"
    IngestLagSeconds    = "Maximum"
    QrRenderMs          = "p99"
    ClicksBatchAgeMs    = "Maximum"
  }

  # Chalice's function names: <app>-<stage> for the API, <app>-<stage>-<name> for the others.
  functions = {
    api_handler     = local.name
    ingest_hashtags = "${local.name}-ingest_hashtags"
    qr_created      = "${local.name}-qr_created"
    consume_clicks  = "${local.name}-consume_clicks"
    qr_item_written = "${local.name}-qr_item_written"
  }
  # The functions fed by a stream (Lambda's IteratorAge).
  stream_functions = ["consume_clicks", "qr_item_written"]
  # The REST API as the package names it (deploy/stage_names_override.tf.json) and its stage.
  api_name  = local.name
  api_stage = "api"
  # Queues where a message means something was given up on.
  failure_queues = {
    qr_events_dlq = aws_sqs_queue.qr_events_dlq.name
    clicks_failed = aws_sqs_queue.clicks_failed.name
  }

  dashboard_period = 300

  # Every widget is a 12x6 time series of the stage's region over dashboard_period; each
  # spec gives its title, its metrics and, when all its series share one, its stat.
  widgets = [for w in concat(local.app_widget_specs, local.aws_widget_specs) : {
    type       = "metric"
    width      = 12
    height     = 6
    properties = merge({ region = local.region, period = local.dashboard_period, view = "timeSeries" }, w)
  }]

  # One SEARCH per app metric: whatever extra dimension a metric carries, its series show.
  app_widget_specs = [for feature, names in local.app_metrics : {
    title = "Pulse: ${feature}"
    metrics = [for i, n in names : [{
      expression = "SEARCH('{${local.app_namespace},Feature,Stage} MetricName=\"${n}\" Stage=\"${var.stage}\"', '${lookup(local.app_metric_stat, n, "Sum")}', ${local.dashboard_period})"
      id         = "m${i}"
      label      = n
    }]]
  }]

  # What AWS measures of the functions, the API, the stream, the queues, the table and the caches.
  aws_widget_specs = [
    {
      title = "Lambda errors and throttles", stat = "Sum"
      metrics = concat(
        [for k, f in local.functions : ["AWS/Lambda", "Errors", "FunctionName", f, { label = "${k} errors" }]],
        [for k, f in local.functions : ["AWS/Lambda", "Throttles", "FunctionName", f, { label = "${k} throttles" }]],
      )
    },
    {
      title   = "Lambda duration p99 (ms)", stat = "p99"
      metrics = [for k, f in local.functions : ["AWS/Lambda", "Duration", "FunctionName", f, { label = k }]]
    },
    {
      title = "API Gateway: 4xx, 5xx, latency p99"
      metrics = [
        ["AWS/ApiGateway", "4XXError", "ApiName", local.api_name, "Stage", local.api_stage, { stat = "Sum" }],
        ["AWS/ApiGateway", "5XXError", "ApiName", local.api_name, "Stage", local.api_stage, { stat = "Sum" }],
        ["AWS/ApiGateway", "Latency", "ApiName", local.api_name, "Stage", local.api_stage, { stat = "p99", yAxis = "right" }],
      ]
    },
    {
      title = "Kinesis clicks: incoming records, iterator age"
      metrics = concat(
        [["AWS/Kinesis", "IncomingRecords", "StreamName", aws_kinesis_stream.clicks.name, { stat = "Sum" }],
        ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", aws_kinesis_stream.clicks.name, { stat = "Maximum", yAxis = "right" }]],
        [for k in local.stream_functions : ["AWS/Lambda", "IteratorAge", "FunctionName", local.functions[k], { stat = "Maximum", yAxis = "right", label = "${k} iterator age" }]],
      )
    },
    {
      title   = "SQS: dead-letter and failure queues", stat = "Maximum"
      metrics = [for k, q in local.failure_queues : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q, { label = k }]]
    },
    {
      title = "DynamoDB QR table: throttles", stat = "Sum"
      metrics = [
        ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", aws_dynamodb_table.qr_cache.name],
        ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", aws_dynamodb_table.qr_cache.name],
      ]
    },
    {
      title = "MemoryDB: memory %, evictions, CPU %"
      metrics = [
        ["AWS/MemoryDB", "DatabaseMemoryUsagePercentage", "ClusterName", aws_memorydb_cluster.main.name, { stat = "Maximum" }],
        ["AWS/MemoryDB", "Evictions", "ClusterName", aws_memorydb_cluster.main.name, { stat = "Sum", yAxis = "right" }],
        ["AWS/MemoryDB", "EngineCPUUtilization", "ClusterName", aws_memorydb_cluster.main.name, { stat = "Maximum" }],
      ]
    },
    {
      title = "ElastiCache memcached: memory, evictions, CPU %"
      metrics = [
        ["AWS/ElastiCache", "BytesUsedForCacheItems", "CacheClusterId", aws_elasticache_cluster.memcached.cluster_id, { stat = "Maximum" }],
        ["AWS/ElastiCache", "Evictions", "CacheClusterId", aws_elasticache_cluster.memcached.cluster_id, { stat = "Sum", yAxis = "right" }],
        ["AWS/ElastiCache", "CPUUtilization", "CacheClusterId", aws_elasticache_cluster.memcached.cluster_id, { stat = "Maximum", yAxis = "right" }],
      ]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.name
  dashboard_body = jsonencode({ widgets = local.widgets })
}

output "dashboard_name" {
  description = "The stage's CloudWatch dashboard: the app's metrics (namespace Pulse) beside Lambda, API Gateway, Kinesis, SQS, DynamoDB, MemoryDB and memcached."
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}

output "app_metric_names" {
  description = "The app's metric names the dashboard shows, by feature (namespace Pulse); the app must emit these names."
  value       = local.app_metrics
}
