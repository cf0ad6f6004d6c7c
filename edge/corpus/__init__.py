"""Labelled recordings: manifests, licence filters and clip-level classification metrics (training and
evaluation).
"""
