"""Stage 1, audio in: microphone and file sources, the lock-free ring buffer they fill, resampling to
the model rate, microphone supervision.
"""
