"""Latency and throughput of every CRI operation (``critest --benchmark``); suites come later."""
