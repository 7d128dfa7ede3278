"""OCPP server adapter: WebSocket endpoint, one handler module per protocol version."""
