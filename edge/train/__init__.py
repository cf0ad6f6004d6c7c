"""Training recipe for the household-sound model (needs the ``train`` extra: torch, onnx, soundfile, tqdm).

Never imported by the runtime.
"""
