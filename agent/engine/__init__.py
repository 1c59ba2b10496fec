"""The engine (money-safety rules, transaction state machine) and the lanes it serves."""
