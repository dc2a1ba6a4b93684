"""Findings, their evidence, investigations, trace runs and exports of their results."""
