"""Offline side: meta-learning (torch), truncation, artifact export, evaluation."""
