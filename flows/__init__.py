"""Simulation, synthesis and report parsing around the generated designs."""
