"""Shared numerics of the FastLRNR solve service (numpy only, no torch)."""
