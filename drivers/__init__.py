"""Field devices: Modbus transports, the register codec, the device library as data."""
