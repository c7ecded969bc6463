"""accelsmith: an open generator of tensor, sparse and 3DGS accelerators.

YAML config -> Amaranth -> Verilog + manifest; cocotb verification against NumPy models;
Yosys/nextpnr synthesis. See README.md for the layout of the ``accelsmith.*`` packages.
"""

__version__ = "0.1.0"
