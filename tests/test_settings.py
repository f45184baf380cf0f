from chalicelib.settings import LOCAL_REDIS_PORT, Settings


def test_defaults_point_at_the_local_stack():
    s = Settings.from_env({})
    assert s.stage == "local"
    assert s.redis_url == f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
    assert not s.redis_cluster
    assert len(s.memcached_servers) == 2


def test_values_come_from_standard_variable_names():
    s = Settings.from_env({
        "PULSE_STAGE": "prod",
        "REDIS_URL": "rediss://clustercfg.pulse.memorydb.us-east-1.amazonaws.com:6379",
        "REDIS_CLUSTER": "true",
        "REDIS_USERNAME": "pulse-app",
        "MEMCACHED_SERVERS": "a.cache:11211, b.cache:11211",
        "AWS_REGION": "eu-west-1",
        "QR_BUCKET": "b", "QR_TABLE": "t", "EVENT_BUS_NAME": "bus",
        "CLICK_STREAM_NAME": "clicks",
    })
    assert s.redis_cluster and s.redis_username == "pulse-app"
    assert s.memcached_servers == ("a.cache:11211", "b.cache:11211")
    assert (s.region, s.qr_bucket, s.qr_table, s.event_bus_name, s.click_stream_name) == (
        "eu-west-1", "b", "t", "bus", "clicks")


def test_public_dict_holds_no_secret_values():
    s = Settings.from_env({"REDIS_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:x:1:secret:p"})
    assert "password" not in str(s.as_public_dict()).lower().replace("password_secret_arn", "")


def test_leaderboard_settings():
    local, prod = Settings.from_env({}), Settings.from_env({"PULSE_STAGE": "prod"})
    assert (local.leaderboard_source, prod.leaderboard_source) == ("synthetic", "twitter")
    assert (local.leaderboard_name, local.ingest_max_pages, local.ingest_rate_minutes) == (
        "default", 10, 5)
    s = Settings.from_env({
        "LEADERBOARD_SOURCE": " Archive ", "LEADERBOARD_QUERY": "#kpop -is:retweet",
        "LEADERBOARD_ARCHIVE": "a.jsonl, b.jsonl", "LEADERBOARD_NAME": "kpop",
        "INGEST_MAX_PAGES": "3", "INGEST_RATE_MINUTES": "15",
    })
    assert (s.leaderboard_source, s.leaderboard_query, s.leaderboard_archive) == (
        "archive", "#kpop -is:retweet", ("a.jsonl", "b.jsonl"))
    assert (s.leaderboard_name, s.ingest_max_pages, s.ingest_rate_minutes) == ("kpop", 3, 15)
