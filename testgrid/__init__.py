"""Publish critest JUnit results in TestGrid's bucket layout, and view them."""
