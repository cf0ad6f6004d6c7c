"""Evaluation tools (clip-level `eval-clips`, and the other evaluation modules here); no torch on this path."""
