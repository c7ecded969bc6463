"""cocotb testbenches, one module per family, checking the RTL against ``accelsmith.models``."""
