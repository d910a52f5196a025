"""Benchmark of the segmentation service against the plain approach a user would write."""
