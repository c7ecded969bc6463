"""Reusable Amaranth building blocks: register files, tensor-engine cores and their stream shells,
the synthesis IO harness."""
