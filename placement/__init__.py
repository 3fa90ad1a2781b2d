"""placement: a workload-to-silicon placement optimizer.

Decides, with a mixed-integer program, which model variant serves which slice of demand on which
accelerator and capacity pool, at least cost, under latency SLOs, context limits, quality floors and
supply caps.
"""

__version__ = "0.1.0"
