"""The engine: money-safety rules, the transaction state machine, and the Paytm flows."""
