"""Packaged data: technology energy tables."""
