"""NumPy golden and bit-accurate models, and the data encoders shared by testbenches and the host driver."""
