"""Host driver: register-map access from a design's manifest, transports, workload runners."""
