"""Tests of the stores: one contract suite (`contract.py`) run by every implementation."""
