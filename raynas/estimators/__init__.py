"""Performance estimators: zero-cost proxies, learning curves, training speed."""
