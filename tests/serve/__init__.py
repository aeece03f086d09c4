"""Tests of chronorec.serve (HTTP service, preprocessing, export)."""
