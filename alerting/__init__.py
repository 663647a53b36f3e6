"""Alert rules at work: the evaluator (evaluator.py) and the notifications it sends (notify.py).

Both run in the process that collects: the evaluator reads the collector's latest machine states, its
connections' health and its writer, never a PLC; notifications go out on a thread of their own.
"""
