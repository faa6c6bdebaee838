"""Rendering project objects for people: flow graphs, run reports."""
