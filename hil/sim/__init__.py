"""Simulated field devices and backend: OCPP charge points, Modbus meters, the MQTT backend."""
