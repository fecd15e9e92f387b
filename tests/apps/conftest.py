"""Shared pieces of the command tests."""

#: A tiny link (QPSK-sized, 64 blocks per frame) that trains in seconds.
TINY = {
    "name": "tiny",
    "model": {"k": 2, "n": 1, "hidden_width": 16, "hidden_layers": 1},
    "training": {"steps": 300, "batch_size": 256, "ebn0_db_min": 6.0, "ebn0_db_max": 8.0},
    "frame": {"blocks_per_frame": 64},
}
