"""The ``gaussian`` family's algorithm layer: scenes and cameras, the float reference
rasteriser, order-independent (neural) blending and its training, axis-oriented evaluation,
tile schedules and the bit-accurate fixed-point model the hardware implements."""
