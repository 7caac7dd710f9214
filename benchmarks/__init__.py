"""Measured figures of retro-ftms (not pass/fail tests): run each as `python -m benchmarks.<name>`.

Every script prints one JSON object with its figures and the machine they were measured on; see
`benchmarks/README.md` for the commands and the last measured table.
"""
