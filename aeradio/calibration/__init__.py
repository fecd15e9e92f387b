"""Estimators and corrections for what the hardware does: CFO, clock, IQ, DC, SNR, gain."""
