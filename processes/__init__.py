"""What runs where: the settings of a process (settings), the runtime it starts (runtime: store, writer, scheduler,
collectors, live service), the collector child of `python app.py` (collector_process) with its own /metrics
(collector_http), and the demo plant's child processes (plant_process, demo)."""
