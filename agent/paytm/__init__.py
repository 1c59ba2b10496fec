"""Paytm cloud side: checksum, API clients, result codes and the offline emulator."""
