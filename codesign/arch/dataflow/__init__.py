"""The streaming dataflow organisation: mapping, folding, wiring, FIFO sizing and the
organisation itself."""
