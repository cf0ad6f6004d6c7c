"""What every stage shares: the error root, the event type, the settings schema, file locations,
logging helpers.
"""
