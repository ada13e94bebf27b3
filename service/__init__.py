"""OMATrust reputation service over x402 payments."""

__version__ = "0.1.0"
