"""The one package that speaks MQTT.

``client`` wraps gmqtt for ingest (ack after persist), receipts and tests;
``exactly_once`` is a small MQTT 5 QoS 2 publisher whose release step the
ground segment makes durable, so a delivery survives kill -9 without repeating.
"""

from gateway.mqtt.client import BrokerAddress, Inbound, InboundHandler, MqttClient
from gateway.mqtt.exactly_once import ExactlyOncePublisher

__all__ = ["BrokerAddress", "ExactlyOncePublisher", "Inbound", "InboundHandler", "MqttClient"]
