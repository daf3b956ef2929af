"""The critest --benchmark specs: upstream's five, timed with pytest-benchmark against any CRI endpoint."""
