from tests.streaming.broker import kafka_broker  # noqa: F401 - the session's broker
