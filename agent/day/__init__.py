"""Close of day (issue 13): a day's totals, the reconciliation sweep's findings, exports.

Everything here only reads the journal (through a `JournalReader`), except the sweep,
which asks the engine to ask Paytm and keeps its result with `Journal.record_sweep`.
"""
