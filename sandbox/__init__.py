"""Stand-ins for the channel systems the gateway connects to, for the demo, tests and benchmarks.

Nothing here imports the project: each channel is its own ASGI app with its own contract.
"""
