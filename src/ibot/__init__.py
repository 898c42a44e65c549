"""ibot: futures-first automated trading for Interactive Brokers."""

__version__ = "0.1.0"
