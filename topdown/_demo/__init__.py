"""The ``topdown demo`` pipeline: a simulated multi-sample study, end to end, with a report."""
