"""Stage 4, scores to events: the detector (thresholds, persistence, release), the familiarity and
alarm-pattern gates, and the event chain that joins them.
"""
