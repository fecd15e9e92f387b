"""The learning core: transmitter LUT, neural receiver, differentiable channels, training,
evaluation, baselines, model files and fine-tuning."""
