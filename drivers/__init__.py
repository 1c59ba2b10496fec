"""Byte pipes to registers: serial, USB bulk and TCP. They never parse what flows."""
