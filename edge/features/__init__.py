"""Stage 2, samples to features: the incremental STFT + log-mel front end (the same code for training
and runtime) and levels in dBFS.
"""
