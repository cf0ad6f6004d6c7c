"""The always-on job: configuration, the listener that runs the stages in order, health, signals,
systemd.
"""
