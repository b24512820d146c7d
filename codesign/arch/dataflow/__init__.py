"""The streaming dataflow chain organisation: mapping, folding and the organisation itself."""
