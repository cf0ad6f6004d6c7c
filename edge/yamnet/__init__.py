"""Google's YAMNet (never shipped): the reference model to beat and the training teacher, run with ai-
edge-litert.
"""
