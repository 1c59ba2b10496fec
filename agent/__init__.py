"""edc-agent: connects cash registers to Paytm EDC terminals and payment links."""

__version__ = "0.1.0"
