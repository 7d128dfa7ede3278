"""MQTT uplink adapter: the backend contract over paho-mqtt, drained from the durable outbox."""
