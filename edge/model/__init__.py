"""Stage 3, features to scores: the ONNX model file, the contract it carries, the streaming block
classifier and its embedding prototypes.
"""
