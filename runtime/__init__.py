"""Syncline runtime: loads, checks, compiles and runs integration projects written in YAML."""

__version__ = "0.1.0"
