"""TX and RX chains: framing, pulse shaping, synchronization, and the loopback channel."""
