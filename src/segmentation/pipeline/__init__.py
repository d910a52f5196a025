"""The ML core: ingest, schema, features, search, models, fit, explain, profile, lineage.

scipy, scikit-learn and fastcluster are imported inside the functions that use them, never
when a module is: the server process imports these modules (to read stored analyses, and in
the threads that answer fields, charts and reports) but fits nothing, and the libraries would
cost it 90 MB of memory (tests/e2e/test_failures_http.py checks that a running server maps
none of them).
"""
