"""Stage 5, events out: sinks (JSON lines, MQTT with its durable outbox and Home Assistant discovery,
opt-in clips).
"""
