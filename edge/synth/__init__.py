"""Synthetic audio: smoke (T3) and CO (T4) alarm patterns, room noise, the demo recording (offline
tools and tests only).
"""
