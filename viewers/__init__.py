"""What a person reads of a run, from its files alone (config, checkpoints read-only, trace.jsonl, items/, report.json):
the trace timeline (trace_view), the learner state at any checkpoint (state_view) and the HTML page (html_report).
Viewers never load a model and never write into a run (the HTML page is the one file `ioa report` writes)."""
