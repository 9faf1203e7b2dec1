"""Observability: Prometheus metrics, CloudWatch EMF, JSON logs, request ids, tracing, probes.

The request path only adds to plain numbers kept in ``counters`` (no locks: the frontend is one
thread); everything else (rendering a scrape, an EMF line) reads those numbers when asked.
"""
