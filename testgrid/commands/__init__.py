"""One module per testgrid command."""
